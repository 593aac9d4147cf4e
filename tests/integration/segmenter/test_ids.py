"""Ids are never handed out twice: not after an erasure, a purge or a delete, and not after migrating."""

import uuid

import pytest
from sqlalchemy import MetaData, delete, func, insert, inspect, select, update

from core import schema, sites
from core.db import make_engine, upgrade
from core.schema import BadRow, Event
from segmenter import privacy
from segmenter.rules.definitions import HOUR
from segmenter.webhooks import network, outbox
from tests.conftest import BACKEND
from tests.helpers.segmenter import T0, bearer, event, facts, page, roll, store, track, watermark

NOW = T0 + 2 * HOUR
LOOPBACK = "127.0.0.0/8"  # the receiver's host, allowed explicitly


@pytest.fixture
def app(app):
    """The app, allowing webhook receivers on this host."""
    app.config["WEBHOOK_ALLOW_NETWORKS"] = LOOPBACK
    return app


def browse(engine, site_id, anon):
    store(
        engine,
        site_id,
        [
            track("Product Viewed", anon=anon, product_id="p1"),
            track("Product Viewed", at=T0 + 1, anon=anon, product_id="p2"),
        ],
    )


def test_an_event_stored_after_the_top_events_were_erased_is_folded(engine, site):
    site_id = site["site_id"]
    store(engine, site_id, [page(anon="kept"), page(anon="leaving"), page(anon="leaving")])
    roll(engine, NOW)
    folded_up_to = watermark(engine, site_id)
    privacy.erase_profile(engine, site_id, "leaving", NOW)  # the events with the largest ids go
    store(engine, site_id, [page(anon="newcomer")])
    roll(engine, NOW)
    assert watermark(engine, site_id) > folded_up_to
    assert set(facts(engine, site_id)) == {"a:kept", "a:newcomer"}


def test_a_change_made_after_the_top_changes_were_erased_reaches_the_webhook(client, engine, site, receiver):
    site_id = site["site_id"]
    response = client.post(
        "/api/v1/webhooks", json={"url": receiver.url, "segments": ["browsers"]}, headers=bearer(site["api_key"])
    )
    assert response.status_code == 201
    browse(engine, site_id, "first")
    browse(engine, site_id, "leaving")
    roll(engine, NOW)
    assert outbox.deliver(engine, NOW, network.allowed_networks(LOOPBACK)).delivered == 2
    privacy.erase_profile(engine, site_id, "leaving", NOW)  # its enter was the newest change: past the cursor
    browse(engine, site_id, "newcomer")
    roll(engine, NOW)
    assert outbox.deliver(engine, NOW, network.allowed_networks(LOOPBACK)).delivered == 1
    assert [body["profile_id"] for body in receiver.accepted()] == ["a:first", "a:leaving", "a:newcomer"]
    keys = [body["idempotency_key"] for body in receiver.accepted()]
    assert len(set(keys)) == 3


def test_a_new_webhook_never_takes_the_id_of_a_deleted_one(client, site, receiver):
    def register():
        response = client.post("/api/v1/webhooks", json={"url": receiver.url}, headers=bearer(site["api_key"]))
        assert response.status_code == 201
        return response.json["id"]

    first = register()
    assert client.delete(f"/api/v1/webhooks/{first}", headers=bearer(site["api_key"])).status_code == 204
    assert register() > first  # its idempotency keys ("<hook>-<change>") can never come back


def _rows(site_id, conn):
    """A minimal new row for each table whose ids must never be reused (a delivery of the newest change)."""
    change = conn.scalar(select(func.max(schema.MembershipChange.id)))
    hook = conn.scalar(select(func.max(schema.Webhook.id)))
    return {
        "events": {**event("page", None, message_id=uuid.uuid4().hex), "site_id": site_id},
        "bad_rows": {"site_id": site_id, "received_at": T0, "reason": {}, "payload": "{}"},
        "membership_changes": {
            "site_id": site_id,
            "segment": "active",
            "profile_id": "a:x",
            "change": "enter",
            "at": T0,
            "detected_at": T0,
            "reason": "seen",
        },
        "rollup_runs": {
            "site_id": site_id,
            "status": "done",
            "started_at": T0,
            "watermark_from": 0,
            "watermark_to": 0,
            "events_folded": 0,
            "events_read": 0,
            "profiles_evaluated": 0,
            "enters": 0,
            "exits": 0,
        },
        "webhooks": {
            "site_id": site_id,
            "url": "https://hooks.example/",
            "changes": ["enter"],
            "secret": "s",
            "cursor": 0,
            "created_at": T0,
        },
        "webhook_deliveries": {
            "webhook_id": hook,
            "change_id": change,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": T0,
            "created_at": T0,
        },
        "erasures": {"site_id": site_id, "erased_at": T0, "counts": {}},
    }


TABLES = {
    table.name: table
    for table in (
        Event.__table__,
        BadRow.__table__,
        schema.MembershipChange.__table__,
        schema.RollupRun.__table__,
        schema.Webhook.__table__,
        schema.WebhookDelivery.__table__,
        schema.Erasure.__table__,
    )
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_id_of_a_deleted_top_row_is_never_given_again(engine, site, name):
    table = TABLES[name]
    # A delivery needs a webhook, and a change of its own (one delivery per change and webhook).
    parents = {"webhook_deliveries": ("webhooks", "membership_changes")}.get(name, ())

    def add(*names):
        with engine.begin() as conn:
            for each in names:
                made = conn.execute(insert(TABLES[each]).values(_rows(site["site_id"], conn)[each]))
        return made.inserted_primary_key[0]

    add(*parents, name)
    top = add(*parents[1:], name)
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.id == top))
    assert add(*parents[1:], name) > top


# --- the migration of an existing database -------------------------------------------------


def test_migrating_an_old_database_keeps_its_rows_and_never_reuses_their_ids(blank_database_url):
    engine = make_engine(blank_database_url)
    try:
        _migrate_and_check(engine)
    finally:
        engine.dispose()


def _migrate_and_check(engine):

    upgrade(engine, "0004")  # the schema before ids were kept from reuse
    site_id = sites.create_site(engine, "old", [])["site_id"]
    old = MetaData()
    old.reflect(engine)  # rows as that schema holds them: later migrations add columns the models know
    events, changes_, deliveries = (old.tables[name] for name in ("events", "membership_changes", "webhook_deliveries"))

    def fit(table, row):
        return {key: value for key, value in row.items() if key in table.c}

    with engine.begin() as conn:
        conn.execute(
            insert(events), [fit(events, {**event("page", None, anon=f"v{n}"), "site_id": site_id}) for n in range(9)]
        )
        change_rows = _rows(site_id, conn)["membership_changes"]
        conn.execute(insert(old.tables["rollup_state"]).values(site_id=site_id, watermark=9))
        conn.execute(delete(events).where(events.c.id > 5))  # purged after they were folded
        for _ in range(3):
            conn.execute(insert(changes_).values(change_rows))
        conn.execute(
            insert(old.tables["webhooks"]).values(fit(old.tables["webhooks"], _rows(site_id, conn)["webhooks"]))
        )
        rows = _rows(site_id, conn)
        conn.execute(update(old.tables["webhooks"]).values(cursor=3))  # sent up to change 3
        conn.execute(insert(deliveries).values({**rows["webhook_deliveries"], "change_id": 2}))
        conn.execute(delete(changes_).where(changes_.c.id == 3))
        conn.execute(insert(old.tables["bad_rows"]).values(rows["bad_rows"]))
        before = {name: conn.execute(select(old.tables[name]).order_by(old.tables[name].c.id)).all() for name in TABLES}

    upgrade(engine, "0005")
    with engine.connect() as conn:
        after = {name: conn.execute(select(old.tables[name]).order_by(old.tables[name].c.id)).all() for name in TABLES}
    assert after == before
    upgrade(engine)  # and the later migrations keep that

    with engine.connect() as conn:
        after = {name: conn.execute(select(table).order_by(table.c.id)).all() for name, table in TABLES.items()}
        indexes = {name: {index["name"] for index in inspect(conn).get_indexes(name)} for name in TABLES}
    assert {name: [row.id for row in rows] for name, rows in after.items()} == {
        name: [row.id for row in rows] for name, rows in before.items()
    }
    assert [row.id for row in after["events"]] == [1, 2, 3, 4, 5]
    assert [(row.change_id, row.status) for row in after["webhook_deliveries"]] == [(2, "pending")]
    assert {"ux_events_site_message", "ix_events_site_id", "ix_events_site_anon"} <= indexes["events"]
    assert "ux_webhook_deliveries_change" in indexes["webhook_deliveries"]
    store(engine, site_id, [page(anon="newcomer")])
    with engine.begin() as conn:
        assert conn.scalar(select(func.max(events.c.id))) == 10  # above the watermark, never 6
        assert conn.execute(insert(changes_).values(change_rows)).inserted_primary_key[0] == 4  # above the cursor
    roll(engine, NOW, site_id=site_id)
    assert "a:newcomer" in facts(engine, site_id)


@pytest.mark.skipif(BACKEND != "sqlite", reason="PostgreSQL sequences never go back")
def test_after_every_migration_each_table_that_asks_for_it_still_autoincrements(engine):
    """A later migration that copies a table in batch mode would silently drop AUTOINCREMENT."""
    from core.schema import Base

    wanted = {table.name for table in Base.metadata.sorted_tables if table.kwargs.get("sqlite_autoincrement")}
    with engine.connect() as conn:
        made = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all())
    assert wanted >= {"events", "bad_rows", "membership_changes", "webhooks", "webhook_deliveries"}
    assert {name for name in wanted if "AUTOINCREMENT" not in made[name]} == set()
