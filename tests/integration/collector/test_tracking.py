"""The Segment HTTP Tracking API: what is accepted, how it is stored and enriched."""

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from core import sites
from tests.helpers.collector import basic, counts, stored, track

UA_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
UA_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
UA_BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def test_batch_is_stored_with_every_field(client, engine, site):
    message = {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "anon-1",
        "userId": "user-1",
        "messageId": "m-1",
        "properties": {"product_id": "p1", "price": 9.5},
        "context": {
            "page": {
                "url": "https://shop.example/p/1",
                "path": "/p/1",
                "title": "Shoe",
                "referrer": "https://google.com/",
            }
        },
    }
    response = client.post("/v1/batch", json={"batch": [message]}, headers=basic(site["write_key"]))
    assert response.status_code == 200
    assert response.json == {"success": True, "accepted": 1, "rejected": []}
    [row] = stored(engine)
    assert (row["site_id"], row["message_id"], row["type"], row["event"]) == (
        site["site_id"],
        "m-1",
        "track",
        "Product Viewed",
    )
    assert (row["anonymous_id"], row["user_id"]) == ("anon-1", "user-1")
    assert row["properties"] == {"product_id": "p1", "price": 9.5}
    assert (row["url"], row["path"], row["title"], row["referrer"]) == (
        "https://shop.example/p/1",
        "/p/1",
        "Shoe",
        "https://google.com/",
    )


@pytest.mark.parametrize(
    "kind, body",
    [
        ("track", {"event": "Order Completed", "userId": "u1", "properties": {"revenue": 30}}),
        ("page", {"anonymousId": "a1", "name": "Home", "properties": {"url": "https://shop.example/?utm_source=news"}}),
        ("screen", {"anonymousId": "a1", "name": "Cart"}),
        ("identify", {"userId": "u1", "anonymousId": "a1", "traits": {"email": "ann@example.com"}}),
        ("alias", {"previousId": "a1", "userId": "u1"}),
        ("group", {"userId": "u1", "groupId": "g1", "traits": {"name": "ACME"}}),
    ],
)
def test_each_single_message_endpoint(client, engine, site, kind, body):
    response = client.post(f"/v1/{kind}", json=body, headers=basic(site["write_key"]))
    assert response.status_code == 200, response.json
    assert response.json["success"] is True
    [row] = stored(engine)
    assert row["type"] == kind
    assert row["message_id"]  # assigned when missing


def test_page_url_gives_utm_and_campaign_context_wins(client, engine, site):
    batch = [
        {
            "type": "page",
            "anonymousId": "a",
            "properties": {"url": "https://shop.example/?utm_source=news&utm_campaign=spring"},
        },
        {
            "type": "track",
            "event": "E",
            "anonymousId": "a",
            "context": {
                "campaign": {"name": "fall", "source": "ads", "medium": "cpc"},
                "page": {"url": "https://shop.example/?utm_source=ignored"},
            },
        },
    ]
    assert client.post("/v1/batch", json={"batch": batch, "writeKey": site["write_key"]}).status_code == 200
    page, tracked = stored(engine)
    assert (page["utm_source"], page["utm_campaign"], page["utm_medium"]) == ("news", "spring", None)
    assert (tracked["utm_source"], tracked["utm_campaign"], tracked["utm_medium"]) == ("ads", "fall", "cpc")


def test_write_key_in_query_string_for_beacons(client, engine, site):
    response = client.post(
        f"/v1/batch?writeKey={site['write_key']}",
        data=json.dumps({"batch": [track()]}),
        content_type="text/plain;charset=UTF-8",
    )
    assert response.status_code == 200
    assert len(stored(engine)) == 1


def test_gzip_body(client, engine, site):
    body = gzip.compress(json.dumps({"batch": [track(), track("Product Added")]}).encode())
    response = client.post(
        "/v1/batch",
        data=body,
        headers={**basic(site["write_key"]), "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert [row["event"] for row in stored(engine)] == ["Product Viewed", "Product Added"]


def test_batch_context_and_integrations_merge_into_each_message(client, engine, site):
    body = {
        "batch": [track(context={"locale": "fr-FR"}), track()],
        "context": {"locale": "en-US", "app": {"name": "shop"}},
        "integrations": {"All": True},
        "writeKey": site["write_key"],
    }
    assert client.post("/v1/batch", json=body).status_code == 200
    first, second = stored(engine)
    assert first["context"] == {"locale": "fr-FR", "app": {"name": "shop"}}
    assert second["context"] == {"locale": "en-US", "app": {"name": "shop"}}


def test_clock_skew_is_corrected_from_sent_at(client, engine, site):
    # The client's clock runs one hour fast: the event happened 10 s before it was sent.
    client_now = datetime.now(UTC) + timedelta(hours=1)
    message = track(timestamp=iso(client_now - timedelta(seconds=10)))
    before = datetime.now(UTC)
    client.post("/v1/batch", json={"batch": [message], "sentAt": iso(client_now), "writeKey": site["write_key"]})
    [row] = stored(engine)
    assert row["timestamp"] == row["received_at"] - 10_000
    assert abs(row["received_at"] - before.timestamp() * 1000) < 5_000


def test_future_timestamp_without_sent_at_is_clamped_to_received_at(client, engine, site):
    # 2099: times from 2100 on are rejected (test_bounds.py).
    message = track(timestamp="2099-01-01T00:00:00Z")
    assert client.post("/v1/batch", json={"batch": [message], "writeKey": site["write_key"]}).status_code == 200
    [row] = stored(engine)
    assert row["timestamp"] == row["received_at"]


def test_past_timestamp_is_kept(client, engine, site):
    message = track(timestamp="2024-03-01T12:00:00.250Z")
    client.post("/v1/batch", json={"batch": [message], "writeKey": site["write_key"]})
    [row] = stored(engine)
    assert row["timestamp"] == int(datetime(2024, 3, 1, 12, 0, 0, 250000, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    "user_agent, browser, os_name, device, is_bot",
    [
        (UA_CHROME, "Chrome", "Windows", "desktop", False),
        (UA_IPHONE, "Mobile Safari", "iOS", "mobile", False),
        (UA_BOT, "Googlebot", "Other", "bot", True),
    ],
)
def test_user_agent_is_described(client, engine, site, user_agent, browser, os_name, device, is_bot):
    client.post("/v1/batch", json={"batch": [track(context={"userAgent": user_agent})], "writeKey": site["write_key"]})
    [row] = stored(engine)
    assert (row["browser"], row["os"], row["device"], row["is_bot"]) == (browser, os_name, device, is_bot)
    assert "userAgent" not in (row["context"] or {})


@pytest.mark.parametrize(
    "ip, kept",
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        # 6to4 holds the client's IPv4 (203.0.113.77) in bits 16-48; Teredo holds it, inverted, in the last 32
        # bits (here 192.0.2.45: ~c000:022d = 3fff:fdd2) and its server's IPv4 (65.54.227.120) in bits 32-64.
        ("2002:cb00:714d:1:2:3:4:5", "203.0.113.0"),
        ("2002:cb00:714d::", "203.0.113.0"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.0"),
        ("not an ip", "127.0.0.0"),
    ],
)
def test_ip_is_truncated_before_it_is_stored(client, engine, site, ip, kept):
    client.post("/v1/batch", json={"batch": [track(context={"ip": ip})], "writeKey": site["write_key"]})
    [row] = stored(engine)
    assert row["ip"] == kept
    assert ip not in json.dumps(row, default=str) or ip == kept


def test_request_ip_is_truncated_too(client, engine, site):
    client.post(
        "/v1/batch",
        json={"batch": [track()], "writeKey": site["write_key"]},
        environ_base={"REMOTE_ADDR": "198.51.100.23"},
    )
    [row] = stored(engine)
    assert row["ip"] == "198.51.100.0"


def test_numeric_ids_are_stored_as_strings(client, engine, site):
    client.post("/v1/batch", json={"batch": [{"type": "identify", "userId": 42}], "writeKey": site["write_key"]})
    assert stored(engine)[0]["user_id"] == "42"


def test_retried_batch_stores_nothing_twice(client, engine, site):
    body = {
        "batch": [track(messageId="m-1"), track(messageId="m-2"), track(messageId="m-1")],
        "writeKey": site["write_key"],
    }
    assert client.post("/v1/batch", json=body).status_code == 200
    assert client.post("/v1/batch", json=body).status_code == 200
    assert sorted(row["message_id"] for row in stored(engine)) == ["m-1", "m-2"]


def test_same_message_id_on_two_sites_is_two_events(client, engine, site):

    other = sites.create_site(engine, "other", [])
    for key in (site["write_key"], other["write_key"]):
        client.post("/v1/batch", json={"batch": [track(messageId="same")], "writeKey": key})
    assert sorted(row["site_id"] for row in stored(engine)) == sorted([site["site_id"], other["site_id"]])


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_snippet_is_served(client):
    response = client.get("/c.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"


def test_snippet_at_a_neutral_path(database_url):
    from core.app import create_app

    app = create_app({"DATABASE_URL": database_url, "SNIPPET_PATH": "/assets/site.js"})
    response = app.test_client().get("/assets/site.js")
    assert response.status_code == 200
    assert response.data == app.test_client().get("/c.js").data
    app.extensions["cohortly_engine"].dispose()


def test_counts_are_untouched_by_reads(client, engine, site):
    before = counts(engine)
    client.get("/healthz")
    assert counts(engine) == before
