"""Stored values a visitor (or an old database, or a direct insert) can put in `events` that once broke
rollups and reads: absurd times and numbers. Every rollup succeeds and every read answers 2xx."""

import json

import pytest
from sqlalchemy import BigInteger, Integer, select, update

from core import schema, sites, sql
from core.schema import Event
from core.times import TIME_MAX_MS, TIME_MIN_MS, iso
from segmenter.rollup.chunks import run_rollup
from segmenter.rules.definitions import DAY, HOUR
from segmenter.webhooks import network, outbox
from tests.helpers.segmenter import T0, bearer, facts, identify, members, page, roll, sign_in, store, track, watermark

NOW = T0 + 2 * HOUR
HOURS_14 = 14 * HOUR
ABSURD_TIMES = {
    "year 0": TIME_MIN_MS - HOURS_14,  # "0001-01-01T00:00:00+14:00"
    "year -7973": -313_666_000_000_000,  # sentAt 9999-12-31 skew-corrected
    "year 10000": TIME_MAX_MS + 1,
    "bigint min": -(2**63),
    "bigint max": 2**63 - 1,
}


LOOPBACK = "127.0.0.0/8"  # the receiver's host, allowed explicitly


@pytest.fixture
def app(app):
    """The app, allowing webhook receivers on this host."""
    app.config["WEBHOOK_ALLOW_NETWORKS"] = LOOPBACK
    return app


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

    assert sign_in(client, site["api_key"]).status_code == 303
    dashboard = client.get("/dashboard/")
    assert dashboard.status_code == 200
    assert "0001-01-31 00:00:00 UTC" in dashboard.get_data(as_text=True)  # exits 30 days after year 1 began

    result = outbox.deliver(engine, NOW + 40 * DAY, network.allowed_networks(LOOPBACK))
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
        conn.execute(update(schema.ProfileFact.__table__).values(first_seen_at=low, last_seen_at=high))
        conn.execute(
            update(schema.Membership.__table__).values(
                entered_at=low, context={"last_seen_at": high, "cart": {"added_at": low}}
            )
        )
        conn.execute(
            update(schema.MembershipChange.__table__).values(at=low, detected_at=high, context={"viewed_at": low})
        )
    for route in (
        "segments/active/members",
        "segments/active/members.ndjson",
        "segments/active/members.csv",
        "segments/active/changes",
        "profiles/old",
    ):
        response = client.get(f"/api/v1/{route}", headers=headers)
        assert response.status_code == 200, route
        assert "0001-01-01T00:00:00.000Z" in response.get_data(as_text=True), route
    assert client.get("/api/v1/profiles/old/export", headers=headers).status_code == 200  # raw stored rows
    assert sign_in(client, site["api_key"]).status_code == 303
    dashboard = client.get("/dashboard/")
    assert dashboard.status_code == 200
    assert "0001-01-01 00:00:00 UTC" in dashboard.get_data(as_text=True)
    result = outbox.deliver(engine, NOW, network.allowed_networks(LOOPBACK))
    assert (result.failed, result.delivered) == (0, len(receiver.accepted()))
    assert {body["at"] for body in receiver.accepted()} == {"0001-01-01T00:00:00.000Z"}
    assert {body["detected_at"] for body in receiver.accepted()} == {"9999-12-31T23:59:59.999Z"}


# --- numbers -------------------------------------------------------------------------------

BIGINT_MAX = 2**63 - 1
INTEGER_COLUMNS = [
    column.name for column in schema.ProfileFact.__table__.columns if isinstance(column.type, (Integer, BigInteger))
]


def _carts_and_orders():
    """Numbers that overflowed a fold: a cart line past BIGINT, lines whose sum is, revenue sums."""
    huge = 10**400  # a JSON number of 400 digits: past float8 on PostgreSQL
    return [
        track("Product Added", anon="cart", product_id="a", price=999_999_999_999, quantity=1_000_000),
        track("Product Added", anon="cart", product_id="b", price=huge, quantity=huge),
        track("Product Added", anon="cart", product_id="c", price=-999_999_999_999, quantity=7),
        *(
            track("Product Added", anon="lines", product_id=f"p{n}", price=90_000_000_000, quantity=1_000_000)
            for n in range(3)
        ),  # each line's value fits BIGINT, their sum does not
        *(track("Order Completed", at=T0 + n, anon="buyer", revenue=999_999_999_999.99) for n in range(12)),
        track("Order Completed", anon="buyer", revenue=huge),
        track("Order Completed", anon="refund", revenue=-huge),
        track("Order Completed", anon="refund", total=-999_999_999_999),
    ]


def _integers_in_range(engine, site_id):
    stored = facts(engine, site_id)
    for profile, row in stored.items():
        for name in (name for name in INTEGER_COLUMNS if name in row):
            value = row[name]
            assert value is None or (isinstance(value, int) and -BIGINT_MAX - 1 <= value <= BIGINT_MAX), (profile, name)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            kinds = conn.exec_driver_sql(
                "SELECT DISTINCT typeof(cart_value_cents), typeof(revenue_cents) FROM profile_facts"
            ).all()
        assert set(kinds) == {("integer", "integer")}
    return stored


def test_no_number_a_visitor_sends_stops_a_rollup(client, engine, site):
    site_id = site["site_id"]
    store(engine, site_id, _carts_and_orders())
    roll(engine, NOW)
    stored = _integers_in_range(engine, site_id)
    money = sql.MONEY_MAX_CENTS
    assert stored["a:cart"]["cart_value_cents"] == money  # 10**20 - 7 * 10**14: past the bound
    assert stored["a:cart"]["cart_items"] == 3
    assert stored["a:lines"]["cart_value_cents"] == money
    assert (stored["a:buyer"]["order_count"], stored["a:buyer"]["revenue_cents"]) == (13, money)
    assert stored["a:refund"]["revenue_cents"] == -99_999_999_999_900
    store(
        engine, site_id, [page(at=T0 + 5, anon="cart"), track("Order Completed", at=T0 + 20, anon="buyer", revenue=1)]
    )
    roll(engine, NOW)  # later events still fold
    after = _integers_in_range(engine, site_id)
    assert after["a:cart"]["event_count"] == stored["a:cart"]["event_count"] + 1
    assert (after["a:buyer"]["order_count"], after["a:buyer"]["revenue_cents"]) == (14, money)
    members = client.get("/api/v1/segments/cart_abandoners/members", headers=bearer(site["api_key"]))
    assert members.status_code == 200
    assert {member["profile_id"] for member in members.json["members"]} == {"a:cart", "a:lines"}


def test_sums_an_older_version_stored_past_the_bounds_still_fold(engine, site):
    site_id = site["site_id"]
    store(engine, site_id, [track("Order Completed", anon="buyer", revenue=5)])
    roll(engine, NOW)
    with engine.begin() as conn:
        conn.execute(
            update(schema.ProfileFact.__table__).values(
                revenue_cents=BIGINT_MAX, order_count=2**31 - 1, event_count=2**31 - 1
            )
        )
    store(engine, site_id, [track("Order Completed", at=T0 + 1, anon="buyer", revenue=999_999_999_999)])
    roll(engine, NOW)
    buyer = _integers_in_range(engine, site_id)["a:buyer"]
    assert (buyer["revenue_cents"], buyer["order_count"], buyer["event_count"]) == (
        sql.MONEY_MAX_CENTS,
        2**31 - 1,
        2**31 - 1,
    )


# --- a chunk that cannot be folded ---------------------------------------------------------


@pytest.fixture
def poison(engine):
    """A trigger that makes folding a `Product Viewed` of product "poison" fail, as a bad row would."""
    if engine.dialect.name == "sqlite":
        statements = [
            "CREATE TRIGGER poison BEFORE INSERT ON profile_views WHEN NEW.product_id = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
        ]
        undo = ["DROP TRIGGER IF EXISTS poison"]
    else:
        statements = [
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.product_id = 'poison' "
            "THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER poison BEFORE INSERT ON profile_views FOR EACH ROW EXECUTE FUNCTION poison()",
        ]
        undo = ["DROP TRIGGER IF EXISTS poison ON profile_views", "DROP FUNCTION IF EXISTS poison()"]

    def remove():
        with engine.begin() as conn:
            for statement in undo:
                conn.exec_driver_sql(statement)

    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    yield remove
    remove()


def _event_ids(engine, site_id):
    with engine.connect() as conn:
        return conn.scalars(select(Event.id).where(Event.site_id == site_id).order_by(Event.id)).all()


def test_a_failing_event_is_named_the_events_before_it_fold_and_other_sites_go_on(engine, site, poison, runner):
    from core.cli import main

    site_id = site["site_id"]
    other = sites.create_site(engine, "other", [])["site_id"]
    store(engine, site_id, [page(anon="early-1"), page(anon="early-2")])
    store(engine, site_id, [track("Product Viewed", anon="bad", product_id="poison")])
    store(engine, other, [page(anon="elsewhere")])
    store(engine, site_id, [page(anon="late-1"), page(anon="late-2")])
    ids = _event_ids(engine, site_id)
    bad = ids[2]

    shop, elsewhere = run_rollup(engine, now=NOW)
    assert (shop.status, elsewhere.status) == ("failed", "done"), elsewhere.error
    assert f"event {bad} could not be folded (chunk {ids[0]}..{ids[-1]})" in shop.error
    assert "poisoned row" in shop.error and "INSERT" not in shop.error  # the database's message, not the SQL
    assert watermark(engine, site_id) == ids[1]  # the events before it are folded, nothing after
    assert set(facts(engine, site_id)) == {"a:early-1", "a:early-2"}
    assert members(engine, site_id) == {}  # not judged on facts that miss later events
    assert "a:elsewhere" in members(engine, other)["active"]
    with engine.connect() as conn:
        run = conn.execute(
            select(schema.RollupRun.status, schema.RollupRun.error).where(schema.RollupRun.id == shop.run_id)
        ).one()
    assert run == ("failed", shop.error)

    result = runner.invoke(main, ["rollup", "--now", "2026-01-05T14:00:00Z"])
    assert result.exit_code == 1
    assert f"shop: rollup failed: event {bad} could not be folded" in result.output
    assert watermark(engine, site_id) == ids[1]  # stuck there, never past it

    poison()  # the row is fixed
    roll(engine, NOW)
    assert watermark(engine, site_id) == ids[-1]
    assert set(facts(engine, site_id)) == {"a:early-1", "a:early-2", "a:bad", "a:late-1", "a:late-2"}
