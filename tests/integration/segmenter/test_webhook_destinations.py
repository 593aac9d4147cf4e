"""Where webhooks may go (public addresses only, unless the operator allows a network), how a failure is
recorded (a short class), and registration input that must be a clear 4xx storing nothing."""

import functools

import pytest
from sqlalchemy import func, select

from core import schema, sites
from segmenter.reads import members
from segmenter.rollup.chunks import run_rollup
from segmenter.rules.definitions import HOUR
from segmenter.webhooks import network, outbox
from tests.helpers.receiver import Receiver
from tests.helpers.segmenter import T0, bearer, store, track

NOW = T0 + 2 * HOUR
LOOPBACK = "127.0.0.0/8"
deliver_allowing_loopback = functools.partial(outbox.deliver, allowed=network.allowed_networks(LOOPBACK))


def browse(engine, site_id, anon):
    store(
        engine,
        site_id,
        [
            track("Product Viewed", at=T0, anon=anon, product_id="p1"),
            track("Product Viewed", at=T0 + 1, anon=anon, product_id="p2"),
        ],
    )


def stored(engine, model):
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model.__table__))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.0.0.7/",
        "http://192.168.0.10:3000/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://224.0.0.1/",
        "http://0.0.0.0:9200/",
        "http://[::]/",
        "http://240.0.0.1/",
        "https://100.100.100.200/",
        "http://2130706433/",
        "http://0x7f.1/",
    ],
)
def test_registration_refuses_the_instances_own_network(client, engine, site, url):
    response = client.post("/api/v1/webhooks", json={"url": url}, headers=bearer(site["api_key"]))
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "invalid_request"
    [why] = response.json["error"]["fields"]["url"]
    assert "WEBHOOK_ALLOW_NETWORKS" in why or why == "Not a valid URL."  # some spellings are not URLs at all
    assert stored(engine, schema.Webhook) == 0


def test_the_allow_setting_lets_a_local_receiver_register(app, client, engine, site, receiver):
    app.config["WEBHOOK_ALLOW_NETWORKS"] = LOOPBACK
    response = client.post("/api/v1/webhooks", json={"url": receiver.url}, headers=bearer(site["api_key"]))
    assert response.status_code == 201
    refused = client.post("/api/v1/webhooks", json={"url": "http://169.254.169.254/"}, headers=bearer(site["api_key"]))
    assert refused.status_code == 422
    assert stored(engine, schema.Webhook) == 1


def test_delivery_checks_the_address_again_after_its_own_lookup(engine, site, receiver):
    # Registered while loopback was allowed, by name; delivered without the allowance: refused at connect
    # time, after DNS, and the receiver never sees a byte.
    hook = outbox.create_webhook(engine, site["site_id"], f"http://localhost:{receiver.port}/hook")
    browse(engine, site["site_id"], "anon-1")
    run_rollup(engine, now=NOW)
    result = outbox.deliver(engine, NOW)
    assert (result.delivered, result.failed) == (0, 1)
    assert receiver.received == []
    [first, *_] = outbox.delivery_log(engine, site["site_id"], hook["id"])[::-1]
    assert (first["status"], first["last_error"], first["last_status"]) == ("pending", "refused_destination", None)
    assert deliver_allowing_loopback(engine, NOW + HOUR).delivered == 2
    assert receiver.received[0]["headers"]["Host"] == f"localhost:{receiver.port}"  # the name, not the address


def test_a_redirect_is_a_failed_delivery_never_followed(engine, site, receiver):
    target = Receiver()
    target.start()
    try:
        hook = outbox.create_webhook(engine, site["site_id"], receiver.url, segments=["browsers"])
        receiver.statuses = [302]
        receiver.location = target.url
        browse(engine, site["site_id"], "anon-1")
        run_rollup(engine, now=NOW)
        assert deliver_allowing_loopback(engine, NOW).failed == 1
        assert target.received == []  # no GET (nor POST) to where it pointed
        [item] = outbox.delivery_log(engine, site["site_id"], hook["id"])
        assert (item["status"], item["last_status"], item["last_error"]) == ("pending", 302, "http_302")
    finally:
        target.stop()


def test_a_tls_failure_is_a_class_not_a_message(engine, site, receiver):
    hook = outbox.create_webhook(
        engine, site["site_id"], f"https://127.0.0.1:{receiver.port}/hook", segments=["browsers"]
    )  # the receiver speaks plain HTTP
    browse(engine, site["site_id"], "anon-1")
    run_rollup(engine, now=NOW)
    assert deliver_allowing_loopback(engine, NOW).failed == 1
    [item] = outbox.delivery_log(engine, site["site_id"], hook["id"])
    assert item["last_error"] == "tls_error"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/closed", "http://127.0.0.1:1/closed"])
def test_a_closed_port_reads_the_same_as_any_refusal(engine, site, url):
    hook = outbox.create_webhook(engine, site["site_id"], url, segments=["browsers"])
    browse(engine, site["site_id"], "anon-1")
    run_rollup(engine, now=NOW)
    deliver_allowing_loopback(engine, NOW)
    [item] = outbox.delivery_log(engine, site["site_id"], hook["id"])
    assert item["last_error"] == "connection_refused"


# --- input that must be a clear 4xx ---------------------------------------------------------------

DEEP = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        b'{"url": "https://crm.example/hook", "segments": ' + DEEP + b"}",
        b'{"url": "https://crm.example/\\ud800"}',
        b'{"url": "https://crm.example/hook", "secret": "\\udfff-sixteen-or-more"}',
        b'{"url": "https://crm.example/hook", "secret": "\\u0000-sixteen-or-more"}',
        b'{"url": "https://crm.example/\\u0000"}',
        b'{"url": "https://crm.example/hook", "segments": ["\\ud800"]}',
    ],
)
def test_bad_registration_bodies_are_4xx_and_store_nothing(client, engine, site, body):
    response = client.post(
        "/api/v1/webhooks", data=body, content_type="application/json", headers=bearer(site["api_key"])
    )
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "invalid_request"
    assert stored(engine, schema.Webhook) == 0


def test_a_deep_resync_body_is_4xx_and_changes_nothing(client, engine, site, receiver):
    hook = outbox.create_webhook(engine, site["site_id"], receiver.url)
    browse(engine, site["site_id"], "anon-1")
    run_rollup(engine, now=NOW)
    deliver_allowing_loopback(engine, NOW)
    before = outbox.delivery_log(engine, site["site_id"], hook["id"])
    assert {item["status"] for item in before} == {"delivered"}
    response = client.post(
        f"/api/v1/webhooks/{hook['id']}/resync",
        data=DEEP,
        content_type="application/json",
        headers=bearer(site["api_key"]),
    )
    assert response.status_code == 422
    assert outbox.delivery_log(engine, site["site_id"], hook["id"]) == before


def test_a_members_cursor_holding_a_nul_is_refused(client, site):
    cursor = members.encode_cursor("a:\x00")
    response = client.get(
        "/api/v1/segments/browsers/members", query_string={"cursor": cursor}, headers=bearer(site["api_key"])
    )
    assert response.status_code == 422
    assert response.json["error"]["fields"] == {"cursor": ["Not a cursor of this API."]}


def test_the_upgrade_keeps_only_a_class_of_old_errors(blank_database_url):
    from core.db import make_engine, upgrade

    engine = make_engine(blank_database_url)
    upgrade(engine, "0004")
    site = sites.create_site(engine, "shop", [])
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO webhooks (id, site_id, url, changes, secret, cursor, created_at) "
            f"VALUES (1, {site['site_id']}, 'http://x.example/', '[\"enter\"]', 's', 0, 0)"
        )
        conn.exec_driver_sql(
            "INSERT INTO membership_changes (id, site_id, segment, profile_id, change, at, detected_at, reason) "
            f"VALUES (1, {site['site_id']}, 'active', 'a:1', 'enter', 0, 0, 'r'), "
            f"(2, {site['site_id']}, 'active', 'a:2', 'enter', 0, 0, 'r'), "
            f"(3, {site['site_id']}, 'active', 'a:3', 'enter', 0, 0, 'r')"
        )
        conn.exec_driver_sql(
            "INSERT INTO webhook_deliveries (webhook_id, change_id, status, attempts, next_attempt_at, "
            "last_status, last_error, created_at) VALUES "
            "(1, 1, 'pending', 1, 0, NULL, 'URLError: <urlopen error [Errno 111] Connection refused>', 0), "
            "(1, 2, 'pending', 1, 0, 500, 'HTTP 500', 0), "
            "(1, 3, 'skipped', 0, 0, NULL, 'no marketing consent (the site requires it)', 0)"
        )
    upgrade(engine)
    with engine.connect() as conn:
        errors = conn.exec_driver_sql("SELECT last_error FROM webhook_deliveries ORDER BY change_id").scalars().all()
    engine.dispose()
    assert errors == ["delivery_error", "http_500", "no marketing consent (the site requires it)"]
