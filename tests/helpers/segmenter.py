"""Helpers of the segmenter tests (every layer): stored events without HTTP, facts and memberships as dicts."""

import itertools
import json
import re
from datetime import UTC, datetime

from sqlalchemy import insert, select

from core import schema
from core.schema import Base, Event

#: Seconds a webhook pass may take past its budget in a test: its own database work on a machine whose cores
#: are busy with other work (measured up to ~3 s with three test suites at once); far below any receiver's hang.
PASS_SLACK = 8.0
T0 = int(datetime(2026, 1, 5, 12, 0, tzinfo=UTC).timestamp() * 1000)
_ids = itertools.count(1)


def event(kind="track", name=None, anon="anon-1", user=None, at=T0, props=None, **extra):
    """An `events` row (without site_id) as the collector would store it."""
    row = {
        "message_id": extra.pop("message_id", f"m-{next(_ids):08d}"),
        "type": kind,
        "event": name if kind == "track" else None,
        "name": name if kind in ("page", "screen") else None,
        "anonymous_id": anon,
        "user_id": user,
        "previous_id": extra.pop("previous_id", None),
        "group_id": None,
        "url": extra.pop("url", None),
        "path": None,
        "referrer": None,
        "title": None,
        "properties": props,
        "traits": extra.pop("traits", None),
        "context": None,
        "browser": None,
        "os": None,
        "device": None,
        "is_bot": extra.pop("is_bot", False),
        "ip": None,
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
        "utm_term": None,
        "utm_content": None,
        "timestamp": at,
        "received_at": extra.pop("received_at", at),
        "user_verified": extra.pop("user_verified", False),
    }
    assert not extra, extra
    return row


def track(name, /, at=T0, anon="anon-1", user=None, **props):
    """A track event row with `props` as its properties."""
    return event("track", name, anon=anon, user=user, at=at, props=props or None)


def page(at=T0, anon="anon-1", user=None, url="https://shop.example/"):
    """A page event row."""
    return event("page", None, anon=anon, user=user, at=at, url=url)


def identify(user, anon="anon-1", at=T0, **traits):
    """An identify event row linking `anon` to `user`."""
    return event("identify", None, anon=anon, user=user, at=at, traits=traits or None)


def store(engine, site_id, rows):
    """Insert event rows for a site (in the given order: ids follow it)."""
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(Event.__table__), [{**row, "site_id": site_id} for row in rows])


def facts(engine, site_id, drop=("next_check_at",)):
    """{profile_id: facts dict} of a site."""
    table = schema.ProfileFact.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table).where(table.c.site_id == site_id)).mappings().all()
    return {row["profile_id"]: {k: v for k, v in row.items() if k not in drop} for row in rows}


def members(engine, site_id, with_time=False):
    """{segment: {profile_id: context}} of a site (or (entered_at, context) with_time)."""
    table = schema.Membership.__table__
    found = {}
    with engine.connect() as conn:
        for row in conn.execute(select(table).where(table.c.site_id == site_id)).mappings():
            value = (row["entered_at"], row["context"]) if with_time else row["context"]
            found.setdefault(row["segment"], {})[row["profile_id"]] = value
    return found


def changes(engine, site_id):
    """Every membership change of a site, oldest first, as dicts."""
    table = schema.MembershipChange.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table).where(table.c.site_id == site_id).order_by(table.c.id)).mappings().all()
    return [dict(row) for row in rows]


def roll(engine, now, **options):
    """One rollup of every site at `now`; returns the first site's RunSummary (asserting success)."""
    from segmenter.rollup.chunks import run_rollup

    summaries = run_rollup(engine, now=now, **options)
    for summary in summaries:
        assert summary.status == "done", summary.error
    return summaries[0]


def shop_traffic(count, seed=7):
    """A deterministic mix of `count` shop events over 100 visitors, 30 of whom log in."""
    import random

    rng = random.Random(seed)
    rows = []
    for n in range(count):
        visitor = rng.randrange(100)
        anon, at = f"v{visitor}", T0 + n * 7_000 + rng.randrange(-3_600_000, 3_600_000)
        kind = rng.random()
        product = f"p{rng.randrange(12)}"
        props = {"product_id": product, "category": f"c{int(product[1:]) % 4}", "price": 5 + int(product[1:])}
        if kind < 0.35:
            rows.append(page(at=at, anon=anon))
        elif kind < 0.7:
            rows.append(track("Product Viewed", at=at, anon=anon, **props))
        elif kind < 0.82:
            rows.append(track("Product Added", at=at, anon=anon, **props))
        elif kind < 0.87:
            rows.append(track("Checkout Started", at=at, anon=anon))
        elif kind < 0.92:
            rows.append(track("Order Completed", at=at, anon=anon, revenue=rng.randrange(10, 200)))
        elif kind < 0.97 and visitor < 30:
            rows.append(identify(f"user{visitor}", anon=anon, at=at, email=f"user{visitor}@example.com"))
        else:
            rows.append(track("Product Removed", at=at, anon=anon, **props))
    return rows


def cohortly(*args):
    """The argv of a `cohortly` command of this virtualenv."""
    import os
    import sys

    return [os.path.join(os.path.dirname(sys.executable), "cohortly"), *args]


def watermark(engine, site_id):
    """The site's rollup watermark (0 before the first chunk)."""
    table = schema.RollupState.__table__
    with engine.connect() as conn:
        return conn.scalar(select(table.c.watermark).where(table.c.site_id == site_id)) or 0


def change_log(engine, site_id):
    """The site's changes without ids and run ids (comparable across sites)."""
    keep = ("segment", "profile_id", "change", "at", "detected_at", "reason", "context")
    return [{key: change[key] for key in keep} for change in changes(engine, site_id)]


def form_token(html):
    """The CSRF token of a dashboard form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client, api_key, token=None):
    """Open the dashboard's sign-in page, then post the form with its CSRF token (or `token`)."""
    page = client.get("/dashboard/")
    assert page.status_code == 200 and b'id="sign-in"' in page.data
    return client.post("/dashboard/login", data={"api_key": api_key, "csrf_token": token or form_token(page.text)})


def bearer(key):
    """The Authorization header of an API key."""
    return {"Authorization": f"Bearer {key}"}


def rows_naming(engine, needles):
    """{table: rows} whose text mentions any needle, over every table of the schema."""
    found = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                text = json.dumps(dict(row), default=str)
                if any(needle in text for needle in needles):
                    found.setdefault(table.name, []).append(dict(row))
    return found
