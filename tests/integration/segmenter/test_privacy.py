"""Privacy and data lifecycle: erasure across linked ids, access, retention, consent and minimum export sizes."""

import json

import pytest
from sqlalchemy import func, select

from core import schema
from core.cli import main
from core.schema import BadRow, Event
from segmenter import privacy
from segmenter.reads.catalog import configure_site
from segmenter.rollup.chunks import run_rollup
from segmenter.rules.definitions import DAY, HOUR
from segmenter.webhooks import network, outbox
from tests.helpers.receiver import Receiver
from tests.helpers.segmenter import T0, bearer, identify, page, rows_naming, store, track

NOW = T0 + 2 * HOUR
ANN_IDS = ("ann-phone", "ann-laptop", "ann@example.com")


def verified(row):
    """An event row whose userId came with a valid userHash (identity verification on)."""
    return {**row, "user_verified": True}


def ann_and_bob(engine, site_id):
    """Ann browses on two devices, logs in (verified) on both and buys; Bob browses. Rolled up at NOW."""
    store(
        engine,
        site_id,
        [
            page(at=T0, anon="ann-phone"),
            track("Product Viewed", at=T0, anon="ann-phone", product_id="p1", name="Shoe"),
            track("Product Added", at=T0 + 10, anon="ann-phone", product_id="p1", price=20),
            verified(identify("ann@example.com", anon="ann-phone", at=T0 + 20, email="ann@example.com")),
            track("Product Viewed", at=T0 + 30, anon="ann-laptop", product_id="p2"),
            verified(identify("ann@example.com", anon="ann-laptop", at=T0 + 40)),
            track("Order Completed", at=T0 + 50, anon="ann-laptop", user="ann@example.com", revenue=20),
            track("Product Viewed", at=T0, anon="bob", product_id="p1"),
            track("Product Viewed", at=T0 + 1, anon="bob", product_id="p2"),
        ],
    )
    run_rollup(engine, now=NOW, site_id=site_id)


def count(engine, table, **where):
    with engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        return conn.scalar(query)


def test_erasure_leaves_no_row_anywhere(app, client, engine, site):
    app.config["WEBHOOK_ALLOW_NETWORKS"] = "127.0.0.0/8"  # the receiver's host
    receiver = Receiver()  # never started: deliveries stay pending
    client.post("/api/v1/webhooks", json={"url": receiver.url}, headers=bearer(site["api_key"]))
    ann_and_bob(engine, site["site_id"])
    outbox.deliver(engine, NOW)
    client.post(
        "/v1/batch",
        json={"batch": [{"type": "track", "anonymousId": "ann-phone"}]},
        headers={"Authorization": "Basic " + __import__("base64").b64encode(f"{site['write_key']}:".encode()).decode()},
    )
    before = rows_naming(engine, ANN_IDS)
    assert {"events", "identities", "profile_facts", "memberships", "membership_changes", "bad_rows"} <= set(before)
    pending_before = count(engine, schema.WebhookDelivery.__table__)

    response = client.delete("/api/v1/profiles/ann-phone", headers=bearer(site["api_key"]))
    assert response.status_code == 200, response.json
    erased = response.json["erased"]
    assert erased["events"] == 7 and erased["identities"] == 2 and erased["bad_rows"] == 1
    assert erased["profile_facts"] == 1 and erased["memberships"] >= 2
    assert erased["webhook_deliveries"] >= 2

    assert rows_naming(engine, ANN_IDS) == {}  # table by table: nothing mentions Ann any more
    assert count(engine, schema.WebhookDelivery.__table__) == pending_before - erased["webhook_deliveries"]
    assert rows_naming(engine, ("bob",))["profile_facts"]  # Bob is untouched
    [audit] = rows_naming(engine, ("webhook_deliveries",))["erasures"]
    assert audit["counts"] == erased
    assert client.delete("/api/v1/profiles/ann-phone", headers=bearer(site["api_key"])).status_code == 404


def test_later_events_start_a_new_empty_profile(engine, site):
    ann_and_bob(engine, site["site_id"])
    privacy.erase_profile(engine, site["site_id"], "ann@example.com", NOW)
    store(engine, site["site_id"], [track("Product Viewed", at=NOW + 1000, anon="ann-laptop", product_id="p9")])
    run_rollup(engine, now=NOW + 2000, site_id=site["site_id"])
    facts = schema.ProfileFact.__table__
    with engine.connect() as conn:
        row = conn.execute(select(facts).where(facts.c.profile_id == "a:ann-laptop")).mappings().one()
        assert (
            conn.scalar(select(func.count()).select_from(facts).where(facts.c.profile_id == "u:ann@example.com")) == 0
        )
    assert (row["event_count"], row["order_count"], row["product_views"]) == (1, 0, 1)


def test_erasure_from_the_cli(runner, engine, site):
    ann_and_bob(engine, site["site_id"])
    result = runner.invoke(main, ["profiles", "delete", "u:ann@example.com", "--site", "shop"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["erased"]["events"] == 7
    assert rows_naming(engine, ANN_IDS) == {}
    again = runner.invoke(main, ["profiles", "delete", "u:ann@example.com", "--site", "shop"])
    assert again.exit_code == 1 and "Nothing is stored" in again.output


def test_access_export_holds_everything_stored(client, engine, site, runner):
    ann_and_bob(engine, site["site_id"])
    response = client.get("/api/v1/profiles/ann@example.com/export", headers=bearer(site["api_key"]))
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    records = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    tables = {record["table"] for record in records}
    assert {"events", "identities", "profile_facts", "memberships", "membership_changes"} <= tables
    assert sum(record["table"] == "events" for record in records) == 7
    assert not any("bob" in json.dumps(record) for record in records)
    assert client.get("/api/v1/profiles/nobody/export", headers=bearer(site["api_key"])).status_code == 404
    cli = runner.invoke(main, ["profiles", "export", "ann-laptop", "--site", "shop"])
    assert cli.exit_code == 0 and len(cli.output.splitlines()) == len(records)


def test_retention_purges_old_folded_events_only_and_keeps_facts(runner, engine, site):
    old = T0 - 40 * DAY
    store(
        engine,
        site["site_id"],
        [
            track("Product Viewed", at=old, anon="old", product_id="p1"),
            track("Product Viewed", at=old + 1, anon="old", product_id="p2"),
            track("Product Viewed", at=T0, anon="new", product_id="p1"),
        ],
    )
    run_rollup(engine, now=NOW, site_id=site["site_id"])
    store(engine, site["site_id"], [track("Product Viewed", at=old + 2, anon="late", product_id="p3")])  # not folded
    configure_site(engine, site["site_id"], {"retention_days": "30"})
    facts_before = rows_naming(engine, ("a:old",))["profile_facts"]
    assert privacy.purge_events(engine, site["site_id"], NOW, batch=1) == 2
    with engine.connect() as conn:
        left = sorted(conn.scalars(select(Event.anonymous_id)))
    assert left == ["late", "new"]
    assert rows_naming(engine, ("a:old",))["profile_facts"] == facts_before  # facts and memberships stay
    result = runner.invoke(main, ["purge", "--site", "shop"])  # the wall clock: T0 is long past 30 days too
    assert result.exit_code == 0 and "purged 1 events" in result.output
    with engine.connect() as conn:
        assert list(conn.scalars(select(Event.anonymous_id))) == ["late"]  # not folded yet: kept


def test_no_retention_means_no_purge(engine, site):
    store(engine, site["site_id"], [track("Product Viewed", at=T0 - 4000 * DAY, anon="ancient")])
    run_rollup(engine, now=NOW, site_id=site["site_id"])
    assert privacy.purge_events(engine, site["site_id"], NOW) == 0
    assert count(engine, Event.__table__) == 1


def test_consent_required_keeps_members_countable_but_out_of_exports_and_webhooks(app, client, engine, site):
    app.config["WEBHOOK_ALLOW_NETWORKS"] = "127.0.0.0/8"  # the receiver's host
    receiver = Receiver()
    receiver.start()
    try:
        client.post(
            "/api/v1/webhooks", json={"url": receiver.url, "segments": ["browsers"]}, headers=bearer(site["api_key"])
        )
        store(
            engine,
            site["site_id"],
            [
                identify("yes", anon="a-yes", at=T0, marketing_consent=True),
                identify("no", anon="a-no", at=T0, marketing_consent=False),
                *[
                    track("Product Viewed", at=T0 + i, anon=anon, product_id=f"p{i}")
                    for anon in ("a-yes", "a-no")
                    for i in (1, 2)
                ],
            ],
        )
        configure_site(engine, site["site_id"], {"require_consent": "true"})
        run_rollup(engine, now=NOW, site_id=site["site_id"])
        sizes = {
            s["name"]: s["size"]
            for s in client.get("/api/v1/segments", headers=bearer(site["api_key"])).json["segments"]
        }
        assert sizes["browsers"] == 2  # both still count
        listed = client.get("/api/v1/segments/browsers/members", headers=bearer(site["api_key"])).json["members"]
        assert [m["profile_id"] for m in listed] == ["u:yes"]
        exported = client.get("/api/v1/segments/browsers/members.ndjson", headers=bearer(site["api_key"])).get_data(
            as_text=True
        )
        assert "u:yes" in exported and "u:no" not in exported
        result = outbox.deliver(engine, NOW, network.allowed_networks("127.0.0.0/8"))
        assert (result.delivered, result.skipped) == (1, 1)
        assert [body["profile_id"] for body in receiver.accepted()] == ["u:yes"]
    finally:
        receiver.stop()


def test_minimum_export_size_refuses_small_segments(client, engine, site, runner):
    store(
        engine,
        site["site_id"],
        [track("Product Viewed", at=T0 + i, anon=anon, product_id=f"p{i}") for anon in ("a1", "a2") for i in (1, 2)],
    )
    run_rollup(engine, now=NOW, site_id=site["site_id"])
    configure_site(engine, site["site_id"], {"min_export_size": "5"})
    for path in ("/members", "/members.csv", "/members.ndjson"):
        response = client.get(f"/api/v1/segments/browsers{path}", headers=bearer(site["api_key"]))
        assert response.status_code == 403
        assert response.json["error"]["code"] == "segment_too_small"
    empty = client.get("/api/v1/segments/dormant/members.csv", headers=bearer(site["api_key"]))
    assert empty.status_code == 200  # nothing to leak in an empty segment
    result = runner.invoke(main, ["segments", "export", "browsers", "--site", "shop"])
    assert result.exit_code == 1 and "at least 5" in result.output
    configure_site(engine, site["site_id"], {"min_export_size": "2"})
    assert client.get("/api/v1/segments/browsers/members.csv", headers=bearer(site["api_key"])).status_code == 200


def test_privacy_settings_are_validated(runner, site):
    bad = runner.invoke(main, ["sites", "configure", "shop", "--set", "retention_days=-1"])
    assert bad.exit_code == 1 and "retention_days" in bad.output
    good = runner.invoke(main, ["sites", "configure", "shop", "--set", "honor_dnt=false", "--set", "store_ip=no"])
    assert good.exit_code == 0, good.output
    assert "honor_dnt = False" in good.output and "store_ip = False" in good.output


def bad_rows_now(engine):
    """{bad row id: the payload's message} of every stored bad row."""
    with engine.connect() as conn:
        return {row.id: row.payload for row in conn.execute(select(BadRow.__table__))}


@pytest.mark.parametrize(
    "erased, sent, lookalikes",
    [
        ("12345", 12345, [123456, "12345 ", 1234, 12345.5]),
        ("zoë@example.com", "zoë@example.com", ["ZOË@example.com", "zoe@example.com", "zoë@example.co"]),
        ("José", "José", ["jose", "JOSÉ", "José2"]),
        ('a"b', 'a"b', ['a"bc', "a'b", 'A"B', "a\\b"]),
        ("ann@example.com", "ann@example.com", ["ANN@example.com", "ann@example_com", "xann@example.com"]),
    ],
)
def test_erasure_takes_exactly_the_rejected_messages_naming_the_id(client, engine, site, erased, sent, lookalikes):
    headers = {"Authorization": "Basic " + __import__("base64").b64encode(f"{site['write_key']}:".encode()).decode()}
    batch = [
        {"type": "track", "userId": sent},  # no event: rejected
        {"type": "track", "anonymousId": sent, "properties": {"pad": "x" * 5000}},  # cut at 4096 when kept
        {"type": "alias", "previousId": sent},  # no userId: rejected
        *({"type": "track", "userId": other} for other in lookalikes),
        {"type": "track", "anonymousId": "someone", "properties": {"note": sent}},
    ]  # named, not as an id
    answer = client.post("/v1/batch", json={"batch": batch}, headers=headers).json
    assert answer["accepted"] == 0 and len(answer["rejected"]) == len(batch)
    before = bad_rows_now(engine)
    assert len(before) == len(batch)
    cut = [payload for payload in before.values() if "pad" in payload]
    assert cut and len(cut[0]) == 4096  # the long one is kept cut: no longer JSON

    exported = [
        record for record in privacy.profile_records(engine, site["site_id"], erased) if record["table"] == "bad_rows"
    ]
    assert len(exported) == 3
    counts = privacy.erase_profile(engine, site["site_id"], erased, NOW)
    assert counts["bad_rows"] == 3
    after = bad_rows_now(engine)
    assert set(after) == set(before) - {record["row"]["id"] for record in exported}
    survivors = [json.loads(payload) for payload in after.values()]
    assert sorted(map(str, (m.get("userId", m.get("anonymousId")) for m in survivors))) == sorted(
        map(str, [*lookalikes, "someone"])
    )
