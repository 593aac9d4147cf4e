"""Webhooks against a real local HTTP receiver: signatures, outages, retries, idempotency keys, resync, API."""

import functools
import threading
import time

import pytest

from core import sites
from segmenter.rollup.chunks import run_rollup
from segmenter.rules.definitions import DAY, HOUR
from segmenter.webhooks import network, outbox
from tests.helpers.receiver import HOLD_SECONDS
from tests.helpers.segmenter import T0, bearer, store, track

NOW = T0 + 2 * HOUR
LOOPBACK = "127.0.0.0/8"  # the receivers run on this host: allowed explicitly, as an operator would
deliver = functools.partial(outbox.deliver, allowed=network.allowed_networks(LOOPBACK))


@pytest.fixture
def app(app):
    """The app, with COHORTLY_WEBHOOK_ALLOW_NETWORKS allowing receivers on this host."""
    app.config["WEBHOOK_ALLOW_NETWORKS"] = LOOPBACK
    return app


def browse(engine, site_id, anon, at=T0):
    store(
        engine,
        site_id,
        [
            track("Product Viewed", at=at, anon=anon, product_id="p1", name="Shoe"),
            track("Product Viewed", at=at + 1, anon=anon, product_id="p2", name="Hat"),
        ],
    )


def register(client, site, receiver, **extra):
    response = client.post("/api/v1/webhooks", json={"url": receiver.url, **extra}, headers=bearer(site["api_key"]))
    assert response.status_code == 201, response.json
    return response.json


def test_changes_arrive_signed_with_what_a_message_needs(client, engine, site, receiver):
    hook = register(client, site, receiver, segments=["browsers"], changes=["enter"])
    assert hook["secret"].startswith("whsec_")
    browse(engine, site["site_id"], "anon-1")
    run_rollup(engine, now=NOW)
    result = deliver(engine, NOW)
    assert (result.queued, result.delivered, result.failed) == (1, 1, 0)
    [item] = receiver.received
    body = item["json"]
    assert (body["segment"], body["change"], body["profile_id"]) == ("browsers", "enter", "a:anon-1")
    assert body["context"]["last_product"]["name"] == "Hat"
    assert body["idempotency_key"] == item["headers"]["Idempotency-Key"] == f"{hook['id']}-{body['change_id']}"
    signature = item["headers"]["X-Cohortly-Signature"]
    assert outbox.verify(hook["secret"], signature, item["body"], NOW // 1000)
    assert not outbox.verify("whsec_wrong", signature, item["body"], NOW // 1000)
    assert not outbox.verify(hook["secret"], signature, item["body"] + b" ", NOW // 1000)
    assert not outbox.verify(hook["secret"], signature, item["body"], NOW // 1000 + 3600)  # too old
    assert deliver(engine, NOW).delivered == 0  # nothing twice


def test_a_receiver_down_for_a_while_gets_every_change_once_back(client, engine, site, receiver):
    hook = register(client, site, receiver)
    receiver.stop()
    for i in range(5):
        browse(engine, site["site_id"], f"anon-{i}")
    run_rollup(engine, now=NOW)
    now = NOW
    for _ in range(3):  # three passes while it is down: each fails once and backs off
        result = deliver(engine, now)
        assert result.delivered == 0 and result.failed == 1
        now += 2 * HOUR
    assert deliver(engine, now - 2 * HOUR + 1).failed == 0  # still backing off: nothing sent
    receiver.start()
    result = deliver(engine, now)
    assert result.delivered == 10  # 5 browsers + 5 active
    keys = [body["idempotency_key"] for body in receiver.accepted()]
    assert len(keys) == len(set(keys)) == 10
    change_ids = [body["change_id"] for body in receiver.accepted()]
    assert change_ids == sorted(change_ids)
    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=bearer(site["api_key"])).json["deliveries"]
    assert {d["status"] for d in log} == {"delivered"}
    first = min(log, key=lambda d: d["change_id"])
    assert first["attempts"] == 4 and first["last_status"] == 200


def test_a_retried_delivery_carries_the_same_idempotency_key(client, engine, site, receiver):
    register(client, site, receiver, segments=["browsers"])
    browse(engine, site["site_id"], "anon-1")
    run_rollup(engine, now=NOW)
    receiver.statuses = [500]
    assert deliver(engine, NOW).failed == 1
    assert deliver(engine, NOW + HOUR).delivered == 1
    first, second = receiver.received
    assert (first["status"], second["status"]) == (500, 200)
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]
    assert second["headers"]["X-Cohortly-Attempt"] == "2"


def test_resync_replays_from_a_cursor_with_the_same_keys(client, engine, site, receiver):
    hook = register(client, site, receiver, segments=["active"])
    browse(engine, site["site_id"], "anon-1")
    browse(engine, site["site_id"], "anon-2")
    run_rollup(engine, now=NOW)
    deliver(engine, NOW)
    first_keys = [b["idempotency_key"] for b in receiver.accepted()]
    assert len(first_keys) == 2
    since = min(b["change_id"] for b in receiver.accepted())
    response = client.post(
        f"/api/v1/webhooks/{hook['id']}/resync", json={"since": since}, headers=bearer(site["api_key"])
    )
    assert response.status_code == 202 and response.json == {"queued": 1}
    deliver(engine, NOW)
    replayed = receiver.accepted()[2:]
    assert [b["idempotency_key"] for b in replayed] == first_keys[1:]
    everything = client.post(
        f"/api/v1/webhooks/{hook['id']}/resync", json={"since": 0}, headers=bearer(site["api_key"])
    )
    assert everything.json == {"queued": 2}


def test_exits_arrive_when_a_window_closes(client, engine, site, receiver):
    register(client, site, receiver, segments=["browsers"], changes=["exit"])
    browse(engine, site["site_id"], "anon-1")
    run_rollup(engine, now=NOW)
    assert deliver(engine, NOW).delivered == 0  # only exits wanted
    run_rollup(engine, now=T0 + 8 * DAY)
    deliver(engine, T0 + 8 * DAY)
    [body] = receiver.accepted()
    assert (body["change"], body["segment"]) == ("exit", "browsers")


def test_a_slow_receiver_cannot_hold_a_pass_past_its_budget(client, engine, site, receiver):
    register(client, site, receiver)
    for i in range(4):
        browse(engine, site["site_id"], f"anon-{i}")
    run_rollup(engine, now=NOW)
    receiver.delay = threading.Event()  # the receiver hangs until the pass is over (or HOLD_SECONDS)
    started = time.monotonic()
    result = deliver(engine, NOW, budget_seconds=1.0)
    took = time.monotonic() - started
    receiver.delay.set()
    # The 1 s budget is the whole pass's, the answer's wait included: the pass ends before even one delivery's
    # own deadline would have (the rest is its database work, seconds on a busy machine).
    assert took < outbox.DELIVERY_SECONDS < HOLD_SECONDS
    assert (result.delivered, result.failed) == (0, 1)
    receiver.delay = None
    assert deliver(engine, NOW + HOUR).delivered == 8  # retried later


def test_an_unreachable_url_is_recorded_not_raised(client, engine, site):
    response = client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/nowhere"}, headers=bearer(site["api_key"])
    )
    hook_id = response.json["id"]
    browse(engine, site["site_id"], "anon-1")
    run_rollup(engine, now=NOW)
    result = deliver(engine, NOW)
    assert result.failed == 1
    [failed] = [d for d in outbox.delivery_log(engine, site["site_id"], hook_id) if d["attempts"]]
    assert failed["status"] == "pending" and failed["last_status"] is None
    assert failed["last_error"] == "connection_refused"  # a short class, never the exception's text


def test_after_max_attempts_a_delivery_is_failed_and_the_rest_go_on(client, engine, site, receiver):
    register(client, site, receiver, segments=["browsers"])
    browse(engine, site["site_id"], "anon-1")
    browse(engine, site["site_id"], "anon-2")
    run_rollup(engine, now=NOW)
    receiver.statuses = [500] * outbox.MAX_ATTEMPTS
    now = NOW
    for _ in range(outbox.MAX_ATTEMPTS):
        deliver(engine, now)
        now += 2 * HOUR
    result = deliver(engine, now)
    assert result.delivered == 1
    statuses = sorted(d["status"] for d in outbox.delivery_log(engine, site["site_id"], 1))
    assert statuses == ["delivered", "failed"]


# --- the API -------------------------------------------------------------------------------------


def test_webhook_crud(client, site, receiver):
    created = register(client, site, receiver, segments=["cart_abandoners"], secret="s" * 20)
    assert created["secret"] == "s" * 20
    listed = client.get("/api/v1/webhooks", headers=bearer(site["api_key"])).json["webhooks"]
    assert [(h["id"], h["url"], h["segments"]) for h in listed] == [(created["id"], receiver.url, ["cart_abandoners"])]
    assert "secret" not in listed[0]
    one = client.get(f"/api/v1/webhooks/{created['id']}", headers=bearer(site["api_key"]))
    assert one.json["deliveries"] == {"pending": 0, "delivered": 0, "failed": 0, "skipped": 0}
    assert client.delete(f"/api/v1/webhooks/{created['id']}", headers=bearer(site["api_key"])).status_code == 204
    assert client.get(f"/api/v1/webhooks/{created['id']}", headers=bearer(site["api_key"])).status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://example.com", "changes": ["joined"]}, "changes"),
        ({"url": "https://example.com", "changes": []}, "changes"),
        ({"url": "https://example.com", "segments": ["vips"]}, "segments"),
        ({"url": "https://example.com", "secret": "short"}, "secret"),
        ({"url": "https://example.com", "surprise": 1}, "surprise"),
    ],
)
def test_bad_registration(client, engine, site, body, field):
    response = client.post("/api/v1/webhooks", json=body, headers=bearer(site["api_key"]))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_request"
    assert field in response.json["error"]["fields"]
    assert outbox.list_webhooks(engine, site["site_id"]) == []


def test_webhooks_are_isolated_between_sites(client, engine, site, receiver):
    hook = register(client, site, receiver)
    other = sites.create_site(engine, "other", [])
    for method, path in (
        ("get", f"/api/v1/webhooks/{hook['id']}"),
        ("delete", f"/api/v1/webhooks/{hook['id']}"),
        ("get", f"/api/v1/webhooks/{hook['id']}/deliveries"),
    ):
        assert getattr(client, method)(path, headers=bearer(other["api_key"])).status_code == 404
    resync = client.post(f"/api/v1/webhooks/{hook['id']}/resync", json={"since": 0}, headers=bearer(other["api_key"]))
    assert resync.status_code == 404
    assert client.get("/api/v1/webhooks", headers=bearer(other["api_key"])).json == {"webhooks": []}
    browse(engine, other["site_id"], "theirs")
    run_rollup(engine, now=NOW)
    deliver(engine, NOW)
    assert receiver.received == []  # the other site's changes never reach this site's webhook


def test_webhooks_need_the_api_key(client, site):
    assert client.get("/api/v1/webhooks").status_code == 401
    assert (
        client.post(
            "/api/v1/webhooks", json={"url": "https://x.example"}, headers=bearer(site["write_key"])
        ).status_code
        == 403
    )


@pytest.mark.parametrize("path", ["/api/v1/webhooks/9223372036854775808", "/api/v1/webhooks/2147483648/deliveries"])
def test_ids_past_the_column_range_are_unknown_not_errors(client, site, path):
    response = client.get(path, headers=bearer(site["api_key"]))
    assert response.status_code == 404
    assert client.delete("/api/v1/webhooks/9223372036854775808", headers=bearer(site["api_key"])).status_code == 404


def test_cursor_past_the_column_range_is_refused(client, site):
    response = client.get(
        "/api/v1/segments/browsers/changes", query_string={"since": 2**63}, headers=bearer(site["api_key"])
    )
    assert response.status_code == 422
