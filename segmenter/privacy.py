"""Privacy requests and data lifecycle: erasure across linked ids, access exports, retention purges.
(What may leave in member lists, exports, feeds and webhooks is `segmenter.policy`.)

Erasures and purges take the site's rollup lock, so a rollup never folds rows that are being removed.
"""

import json
import re
import time
from contextlib import contextmanager

from sqlalchemy import delete, insert, or_, select

from core import locks, schema, sites
from core.db import write_engine
from core.schema import BadRow, Event
from segmenter.rules.settings import load_settings

events = Event.__table__
bad_rows = BadRow.__table__
identities = schema.Identity.__table__
facts = schema.ProfileFact.__table__
changes = schema.MembershipChange.__table__
deliveries = schema.WebhookDelivery.__table__
state = schema.RollupState.__table__
erasures = schema.Erasure.__table__
#: Every table keyed by profile id, in the order an erasure empties them.
PROFILE_TABLES = (
    schema.BehaviourCount.__table__,
    schema.ProfileSession.__table__,
    schema.ProfileView.__table__,
    schema.CartLine.__table__,
    schema.Membership.__table__,
    changes,
    facts,
)
PURGE_BATCH = 5_000
LOCK_WAIT_SECONDS = 60


class Busy(Exception):
    """The site's rollup lock could not be had in time."""


class UnknownProfile(LookupError):
    """Nothing is stored under that id."""


@contextmanager
def site_lock(engine, site_id, wait_seconds=LOCK_WAIT_SECONDS):
    """Hold the site's rollup lock, polling for it up to `wait_seconds`; Busy if a rollup keeps it."""
    deadline = time.monotonic() + wait_seconds
    while True:
        with locks.rollup_lock(engine, site_id) as held:
            if held:
                yield
                return
        if time.monotonic() > deadline:
            raise Busy(f"Site {site_id} is being rolled up; try again.")
        time.sleep(0.2)


def linked_ids(conn, site_id, any_id):
    """(user ids, anonymous ids) of the person behind `any_id`: the id itself taken both ways,
    a `u:`/`a:` profile id, and every anonymous id linked to their user id.

    From an anonymous id only a verified link is followed to a user id: anyone can claim any user id
    for their own anonymous id (see PRIVACY.md, identity verification)."""
    users, anonymous = set(), set()
    if any_id.startswith("u:"):
        users.add(any_id[2:])
    elif any_id.startswith("a:"):
        anonymous.add(any_id[2:])
    else:
        users.add(any_id)
        anonymous.add(any_id)
    users |= set(
        conn.scalars(
            select(identities.c.user_id).where(
                identities.c.site_id == site_id,
                identities.c.anonymous_id.in_(anonymous),
                identities.c.verified.is_(True),
            )
        )
    )
    anonymous |= set(
        conn.scalars(
            select(identities.c.anonymous_id).where(identities.c.site_id == site_id, identities.c.user_id.in_(users))
        )
    )
    return users, anonymous


def _event_filter(users, anonymous):
    return or_(
        events.c.user_id.in_(users), events.c.anonymous_id.in_(anonymous), events.c.previous_id.in_(users | anonymous)
    )


def _profile_ids(users, anonymous):
    return [f"u:{user}" for user in users] + [f"a:{anon}" for anon in anonymous]


ID_FIELDS = ("userId", "anonymousId", "previousId")


def _bad_row_ids(conn, site_id, users, anonymous):
    """Ids of the site's bad rows whose message names one of the ids (its userId, anonymousId or previousId,
    compared exactly as text; a number counts as its JSON spelling).

    Matched in Python over the site's bad rows (at most BAD_ROWS_KEEP): SQL LIKE is case-insensitive on SQLite,
    and the stored JSON escapes non-ASCII and quotes, so no pattern matches exactly on both databases.
    """
    wanted = users | anonymous
    if not wanted:
        return []
    # A cheap exact pre-check: a stored payload that names an id holds its JSON spelling (ASCII-escaped).
    needles = [json.dumps(ident, ensure_ascii=True)[1:-1] for ident in wanted]
    query = select(bad_rows.c.id, bad_rows.c.payload).where(bad_rows.c.site_id == site_id).order_by(bad_rows.c.id)
    found = []
    for row_id, payload in conn.execute(query.execution_options(yield_per=500)):
        if any(needle in payload for needle in needles) and _names_any(payload, wanted):
            found.append(row_id)
    return found


def _names_any(payload, wanted):
    try:
        message = json.loads(payload)
    except ValueError:  # cut at PAYLOAD_KEEP (or not JSON): read the id fields it still holds
        return any(_as_id(_loaded(value)) in wanted for value in _ID_VALUE.findall(payload))
    return isinstance(message, dict) and any(_as_id(message.get(name)) in wanted for name in ID_FIELDS)


# `"userId": <a JSON string or number>` as json.dumps writes it.
_ID_VALUE = re.compile(r'"(?:userId|anonymousId|previousId)": ("(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*)(?=[,}])')


def _loaded(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def _as_id(value):
    """An id field's value as the text an accepted message would store (numbers as their JSON spelling)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    return None


def _bad_row_filter(conn, site_id, users, anonymous):
    return bad_rows.c.id.in_(_bad_row_ids(conn, site_id, users, anonymous))


def erase_profile(engine, site_id, any_id, now):
    """Delete everything stored about a person across their linked ids; returns rows deleted per table.

    Keeps one audit line (`erasures`) with the time and the counts, nothing personal. Events from
    the same ids arriving later start a new, empty profile.
    """
    with site_lock(engine, site_id), write_engine(engine).begin() as conn:
        users, anonymous = linked_ids(conn, site_id, any_id)
        profiles = _profile_ids(users, anonymous)
        counts = {
            "events": conn.execute(
                delete(events).where(events.c.site_id == site_id, _event_filter(users, anonymous))
            ).rowcount
        }
        changed = select(changes.c.id).where(changes.c.site_id == site_id, changes.c.profile_id.in_(profiles))
        counts["webhook_deliveries"] = conn.execute(
            delete(deliveries).where(deliveries.c.change_id.in_(changed))
        ).rowcount
        for table in PROFILE_TABLES:
            counts[table.name] = conn.execute(
                delete(table).where(table.c.site_id == site_id, table.c.profile_id.in_(profiles))
            ).rowcount
        counts["identities"] = conn.execute(
            delete(identities).where(
                identities.c.site_id == site_id,
                or_(identities.c.user_id.in_(users), identities.c.anonymous_id.in_(anonymous)),
            )
        ).rowcount
        counts["bad_rows"] = conn.execute(
            delete(bad_rows).where(bad_rows.c.site_id == site_id, _bad_row_filter(conn, site_id, users, anonymous))
        ).rowcount
        if not any(counts.values()):
            raise UnknownProfile(any_id)
        conn.execute(insert(erasures).values(site_id=site_id, erased_at=now, counts=counts))
    return counts


def profile_records(engine, site_id, any_id):
    """Everything stored about a person, as ({"table": name, "row": {...}}) records; UnknownProfile if none."""
    with engine.connect() as conn:
        users, anonymous = linked_ids(conn, site_id, any_id)
        profiles = _profile_ids(users, anonymous)
        queries = [
            (identities, or_(identities.c.user_id.in_(users), identities.c.anonymous_id.in_(anonymous))),
            *((table, table.c.profile_id.in_(profiles)) for table in reversed(PROFILE_TABLES)),
            (bad_rows, _bad_row_filter(conn, site_id, users, anonymous)),
        ]
        found = 0
        for table, where in queries:
            for row in conn.execute(select(table).where(table.c.site_id == site_id, where)).mappings():
                found += 1
                yield {"table": table.name, "row": dict(row)}
        # Events last and in pages: they are the many.
        after = 0
        while True:
            page = (
                conn.execute(
                    select(events)
                    .where(events.c.site_id == site_id, events.c.id > after, _event_filter(users, anonymous))
                    .order_by(events.c.id)
                    .limit(1000)
                )
                .mappings()
                .all()
            )
            for row in page:
                found += 1
                yield {"table": "events", "row": dict(row)}
            if len(page) < 1000:
                break
            after = page[-1]["id"]
    if not found:
        raise UnknownProfile(any_id)


def purge_events(engine, site_id, now, batch=PURGE_BATCH, wait_seconds=LOCK_WAIT_SECONDS):
    """Delete the site's events older than its `retention_days`, in bounded batches; returns how many.

    Only events already folded into facts (at or below the rollup watermark) are purged, so facts and
    memberships stay as they are; each batch is its own short transaction, so ingestion goes on.
    """
    site = sites.find_site(engine, site_id=site_id)
    days = load_settings(site["settings"])["retention_days"]
    if not days:
        return 0
    cutoff = now - days * 86_400_000
    purged = 0
    with site_lock(engine, site_id, wait_seconds):
        with engine.connect() as conn:
            watermark = conn.scalar(select(state.c.watermark).where(state.c.site_id == site_id)) or 0
        while True:
            with engine.begin() as conn:
                ids = (
                    select(events.c.id)
                    .where(
                        events.c.site_id == site_id,
                        events.c.id <= watermark,
                        events.c.timestamp < cutoff,
                    )
                    .order_by(events.c.id)
                    .limit(batch)
                )
                deleted = conn.execute(delete(events).where(events.c.id.in_(ids.scalar_subquery()))).rowcount
            purged += deleted
            if deleted < batch:
                return purged
