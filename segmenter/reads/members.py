"""Reading segment members for the API and exports: keyset pages, filters, and flat-memory streams."""

import base64
import json

from sqlalchemy import Text, and_, cast, func, select

from core import schema
from segmenter import policy
from segmenter.reads import catalog

memberships = schema.Membership.__table__
facts = schema.ProfileFact.__table__
identities = schema.Identity.__table__
changes = schema.MembershipChange.__table__
STREAM_PAGE = 1000


def member_page(conn, site_id, segment, after=None, limit=100, entered_since=None):
    """Up to `limit` members ordered by profile id, after the profile id `after`.

    Ordering by the primary key makes pages stable while rollups change the segment: a member
    present for the whole walk is seen exactly once.
    """
    m, f = memberships, facts
    # Tuples, and the JSON columns as text decoded here: psycopg's and SQLAlchemy's JSON decoding cost an
    # export more per member than json.loads on the text.
    query = (
        select(m.c.profile_id, f.c.user_id, f.c.email, cast(f.c.traits, Text), m.c.entered_at, cast(m.c.context, Text))
        .select_from(m.outerjoin(f, and_(f.c.site_id == m.c.site_id, f.c.profile_id == m.c.profile_id)))
        .where(m.c.site_id == site_id, m.c.segment == segment)
        .order_by(m.c.profile_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(m.c.profile_id > after)
    if entered_since is not None:
        query = query.where(m.c.entered_at >= entered_since)
    rows = [
        {
            "profile_id": profile_id,
            "user_id": user_id,
            "email": email,
            "traits": _decoded(traits),
            "entered_at": entered_at,
            "context": _decoded(context),
        }
        for profile_id, user_id, email, traits, entered_at, context in conn.execute(query)
    ]
    add_anonymous_ids(conn, site_id, rows)
    return rows


def _decoded(text):
    return None if text is None else json.loads(text)


def add_anonymous_ids(conn, site_id, rows):
    """Each member's anonymous ids: its own for an anonymous profile, the linked ones for a user."""
    users = {row["profile_id"][2:] for row in rows if row["profile_id"].startswith("u:")}
    linked = {}
    if users:
        query = (
            select(identities.c.user_id, identities.c.anonymous_id)
            .where(identities.c.site_id == site_id, identities.c.user_id.in_(users))
            .order_by(identities.c.user_id, identities.c.anonymous_id)
        )
        for user_id, anonymous_id in conn.execute(query):
            linked.setdefault(user_id, []).append(anonymous_id)
    for row in rows:
        kind, ident = row["profile_id"][:2], row["profile_id"][2:]
        row["anonymous_ids"] = linked.get(ident, []) if kind == "u:" else [ident]


def stream_members(engine, site_id, segment, entered_since=None, page_size=STREAM_PAGE):
    """Every member, one page of `page_size` in memory at a time (a short transaction per page)."""
    after = None
    while True:
        with engine.connect() as conn:
            page = member_page(conn, site_id, segment, after, page_size, entered_since)
        yield from page
        if len(page) < page_size:
            return
        after = page[-1]["profile_id"]


def change_page(conn, site_id, since=0, limit=100, segment=None, profile_id=None):
    """Enters and exits with an id above `since`, oldest first."""
    query = (
        select(changes).where(changes.c.site_id == site_id, changes.c.id > since).order_by(changes.c.id).limit(limit)
    )
    if segment is not None:
        query = query.where(changes.c.segment == segment)
    if profile_id is not None:
        query = query.where(changes.c.profile_id == profile_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def shown_changes(conn, site_id, settings, page):
    """The changes of `page` the site's policy lets out (see `segmenter.policy`): counts each segment up to k
    and reads the profiles' traits only when the policy needs them."""
    names = {change["segment"] for change in page}
    up_to = policy.sizes_needed(settings)
    sizes = {name: catalog.count_members(conn, site_id, name, up_to) if up_to > 1 else up_to for name in names}
    traits = traits_of(conn, site_id, {change["profile_id"] for change in page}) if settings["require_consent"] else {}
    return policy.shown_changes(settings, page, sizes, traits)


def size_counter(engine, site_id, settings):
    """segment -> its member count up to k (what `policy.withheld` needs), each counted once per counter."""
    up_to, counted = policy.sizes_needed(settings), {}

    def size(segment):
        if segment not in counted:
            with engine.connect() as conn:
                counted[segment] = catalog.count_members(conn, site_id, segment, up_to) if up_to > 1 else up_to
        return counted[segment]

    return size


def traits_of(conn, site_id, profile_ids):
    """{profile_id: latest traits} of the given profiles (those without facts are left out)."""
    found = {}
    profile_ids = list(profile_ids)
    for start in range(0, len(profile_ids), 500):
        query = select(facts.c.profile_id, cast(facts.c.traits, Text)).where(
            facts.c.site_id == site_id, facts.c.profile_id.in_(profile_ids[start : start + 500])
        )
        found.update((profile_id, _decoded(traits)) for profile_id, traits in conn.execute(query))
    return found


def segments_of(conn, site_id, profile_ids):
    """The segment names each of the given profiles is in: {profile_id: [names]}."""
    query = (
        select(memberships.c.profile_id, memberships.c.segment)
        .where(memberships.c.site_id == site_id, memberships.c.profile_id.in_(profile_ids))
        .order_by(memberships.c.segment)
    )
    found = {}
    for profile_id, segment in conn.execute(query):
        found.setdefault(profile_id, []).append(segment)
    return found


def profile_history(conn, site_id, profile_id, limit):
    """A profile's newest enters and exits, newest first."""
    query = (
        select(changes)
        .where(changes.c.site_id == site_id, changes.c.profile_id == profile_id)
        .order_by(changes.c.id.desc())
        .limit(limit)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def last_computed(conn, site_id):
    """When the site's segments were last computed (the newest finished rollup's end), or None."""
    runs = schema.RollupRun.__table__
    return conn.scalar(select(func.max(runs.c.finished_at)).where(runs.c.site_id == site_id, runs.c.status == "done"))


def encode_cursor(profile_id):
    """An opaque cursor for the member after `profile_id`."""
    return base64.urlsafe_b64encode(profile_id.encode()).decode().rstrip("=")


def decode_cursor(cursor):
    """The profile id inside a cursor; None when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
