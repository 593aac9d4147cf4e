"""Stored values a visitor (or an old database, or a direct insert) can put in `events` that once broke
rollups and reads: absurd times and numbers. Every rollup succeeds and every read answers 2xx."""
import json

import pytest
from sqlalchemy import update

from collector.times import TIME_MAX_MS, TIME_MIN_MS, iso
from segmenter import models, webhooks
from segmenter.rules import DAY, HOUR
from tests.receiver import Receiver
from tests.segmenter.helpers import T0, facts, identify, page, roll, store, track

NOW = T0 + 2 * HOUR
HOURS_14 = 14 * HOUR
ABSURD_TIMES = {
    "year 0": TIME_MIN_MS - HOURS_14,  # "0001-01-01T00:00:00+14:00"
    "year -7973": -313_666_000_000_000,  # sentAt 9999-12-31 skew-corrected
    "year 10000": TIME_MAX_MS + 1,
    "bigint min": -(2**63),
    "bigint max": 2**63 - 1,
}


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def receiver():
    """A running webhook receiver, stopped after the test."""
    found = Receiver()
    found.start()
    yield found
    found.stop()


@pytest.mark.parametrize("ms, shown", [
    (None, None),
    (0, "1970-01-01T00:00:00.000Z"),
    (T0 + 1, "2026-01-05T12:00:00.001Z"),
    (-1, "1969-12-31T23:59:59.999Z"),
    (TIME_MIN_MS, "0001-01-01T00:00:00.000Z"),
    (TIME_MIN_MS - 1, "0001-01-01T00:00:00.000Z"),
    (-(2**63), "0001-01-01T00:00:00.000Z"),
    (-(10**400), "0001-01-01T00:00:00.000Z"),
    (TIME_MAX_MS, "9999-12-31T23:59:59.999Z"),
    (2**63 - 1, "9999-12-31T23:59:59.999Z"),
    (float("inf"), "9999-12-31T23:59:59.999Z"),
])
def test_every_stored_time_renders(ms, shown):
    assert iso(ms) == shown


def _visits(anon, at):
    """A visitor who does everything that keeps a time: views, cart, checkout, order, identify, email."""
    return [
        page(at=at, anon=anon),
        track("Product Viewed", at=at, anon=anon, product_id="p1", category="c"),
        track("Product Viewed", at=at, anon=anon, product_id="p2", category="c"),
        track("Product Added", at=at, anon=anon, product_id="p1", price=5),
        track("Checkout Started", at=at, anon=anon),
        track("Email Opened", at=at, anon=anon),
        identify(f"user-{anon}", anon=anon, at=at, email=f"{anon}@example.com"),
        track("Order Completed", at=at, anon=anon, revenue=5),
        track("Product Added", at=at, anon=anon, product_id="p2", price=7),
    ]


def test_absurd_stored_times_break_no_rollup_and_no_read(client, engine, site, receiver):
    site_id, headers = site["site_id"], bearer(site["api_key"])
    hook = client.post("/api/v1/webhooks", json={"url": receiver.url}, headers=headers)
    assert hook.status_code == 201
    rows = [row for n, at in enumerate(ABSURD_TIMES.values()) for row in _visits(f"v{n}", at)]
    rows += [page(at=at, anon="mixed") for at in ABSURD_TIMES.values()] + [page(at=T0, anon="mixed")]
    store(engine, site_id, rows)
    roll(engine, NOW)
    roll(engine, NOW + 40 * DAY)  # windows close: exits at times computed from the stored ones
    stored = facts(engine, site_id)
    assert stored["u:user-v3"]["first_seen_at"] == TIME_MIN_MS  # clamped when folded
    assert stored["u:user-v4"]["last_seen_at"] == TIME_MAX_MS
    assert (stored["a:mixed"]["first_seen_at"], stored["a:mixed"]["last_seen_at"]) == (TIME_MIN_MS, TIME_MAX_MS)

    segments = client.get("/api/v1/segments", headers=headers)
    assert segments.status_code == 200
    names = [segment["name"] for segment in segments.json["segments"]]
    shown = []
    for name in names:
        for route in ("members", "members.ndjson", "members.csv", "changes"):
            response = client.get(f"/api/v1/segments/{name}/{route}", headers=headers)
            shown.append(response.get_data(as_text=True))
            assert response.status_code == 200, (name, route)
    for anon in ["mixed", *(f"v{n}" for n in range(len(ABSURD_TIMES)))]:
        for route in ("", "/export"):
            response = client.get(f"/api/v1/profiles/{anon}{route}", headers=headers)
            shown.append(response.get_data(as_text=True))
            assert response.status_code == 200, (anon, route)
    assert client.get("/api/v1/profiles/v3", headers=headers).json["facts"]["first_seen_at"] == iso(TIME_MIN_MS)
    assert "0001-01-01T00:00:00.000Z" in "".join(shown) and "9999-12-31T23:59:59.999Z" in "".join(shown)

    assert client.post("/dashboard/login", data={"api_key": site["api_key"]}).status_code == 302
    dashboard = client.get("/dashboard/")
    assert dashboard.status_code == 200
    assert "0001-01-31 00:00:00 UTC" in dashboard.get_data(as_text=True)  # exits 30 days after year 1 began

    result = webhooks.deliver(engine, NOW + 40 * DAY)
    assert result.failed == 0 and result.delivered > 0
    bodies = receiver.accepted()
    assert len(bodies) == result.delivered
    sent = json.dumps(bodies)
    assert "0001-01-01T00:00:00.000Z" in sent and "9999-12-31T23:59:59.999Z" in sent


def test_absurd_times_folded_by_an_older_rollup_still_render(client, engine, site, receiver):
    """Facts, memberships and changes an older version wrote from absurd times: every read shows them."""
    site_id, headers = site["site_id"], bearer(site["api_key"])
    assert client.post("/api/v1/webhooks", json={"url": receiver.url}, headers=headers).status_code == 201
    store(engine, site_id, _visits("old", T0))
    roll(engine, NOW)
    low, high = -(2**63), 2**63 - 1
    with engine.begin() as conn:
        conn.execute(update(models.ProfileFact.__table__).values(first_seen_at=low, last_seen_at=high))
        conn.execute(update(models.Membership.__table__).values(
            entered_at=low, context={"last_seen_at": high, "cart": {"added_at": low}}))
        conn.execute(update(models.MembershipChange.__table__).values(
            at=low, detected_at=high, context={"viewed_at": low}))
    for route in ("segments/active/members", "segments/active/members.ndjson", "segments/active/members.csv",
                  "segments/active/changes", "profiles/old"):
        response = client.get(f"/api/v1/{route}", headers=headers)
        assert response.status_code == 200, route
        assert "0001-01-01T00:00:00.000Z" in response.get_data(as_text=True), route
    assert client.get("/api/v1/profiles/old/export", headers=headers).status_code == 200  # raw stored rows
    assert client.post("/dashboard/login", data={"api_key": site["api_key"]}).status_code == 302
    dashboard = client.get("/dashboard/")
    assert dashboard.status_code == 200
    assert "0001-01-01 00:00:00 UTC" in dashboard.get_data(as_text=True)
    result = webhooks.deliver(engine, NOW)
    assert (result.failed, result.delivered) == (0, len(receiver.accepted()))
    assert {body["at"] for body in receiver.accepted()} == {"0001-01-01T00:00:00.000Z"}
    assert {body["detected_at"] for body in receiver.accepted()} == {"9999-12-31T23:59:59.999Z"}
