"""What Segment's analytics.js 2.0 and RudderStack's JavaScript SDK send, as they send it (their real runs in
Chromium are in tests/e2e/test_browser_sdks.py): analytics.js's short paths, RudderStack's identify traits."""

import json

import pytest

from tests.helpers.collector import basic, counts, stored

ORIGIN = {"Origin": "https://shop.example"}


def analytics_js(message, write_key):
    """A message as analytics.js 2.0 posts it: with its writeKey, sentAt and _metadata, as text/plain."""
    return json.dumps(
        {
            **message,
            "writeKey": write_key,
            "sentAt": "2026-01-02T03:04:05.678Z",
            "timestamp": "2026-01-02T03:04:05.600Z",
            "integrations": {"Segment.io": True},
            "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
        }
    )


@pytest.mark.parametrize(
    "path, message",
    [
        (
            "t",
            {
                "type": "track",
                "event": "Product Added",
                "anonymousId": "a1",
                "userId": None,
                "properties": {"product_id": "p1", "price": 19.99},
            },
        ),
        (
            "p",
            {
                "type": "page",
                "name": "Home",
                "anonymousId": "a1",
                "properties": {"path": "/", "url": "https://shop.example/"},
            },
        ),
        ("s", {"type": "screen", "name": "Cart", "anonymousId": "a1"}),
        ("i", {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "ann@example.com"}}),
        ("a", {"type": "alias", "previousId": "a1", "userId": "u1"}),
        ("g", {"type": "group", "groupId": "g1", "anonymousId": "a1", "traits": {"name": "ACME"}}),
    ],
)
def test_analytics_js_short_paths_store_the_message(client, engine, site, path, message):
    response = client.post(
        f"/v1/{path}",
        data=analytics_js(message, site["write_key"]),
        content_type="text/plain",
        headers={**basic(site["write_key"]), **ORIGIN},
    )
    assert response.status_code == 200, response.json
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    [row] = stored(engine)
    assert row["type"] == message["type"]
    assert (row["anonymous_id"], row["user_id"]) == (message.get("anonymousId"), message.get("userId"))
    assert row["properties"] == message.get("properties")
    assert row["traits"] == message.get("traits")


def test_a_short_path_takes_its_own_type_only(client, engine, site):
    message = {"type": "page", "anonymousId": "a1"}
    response = client.post("/v1/t", data=analytics_js(message, site["write_key"]), content_type="text/plain")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_message"
    assert counts(engine)["events"] == 0


def test_analytics_js_batches_to_v1_b(client, engine, site):
    batch = [
        {"type": "page", "anonymousId": "a1", "messageId": "m1"},
        {"type": "track", "event": "Viewed", "anonymousId": "a1", "messageId": "m2"},
    ]
    body = json.dumps({"writeKey": site["write_key"], "batch": batch, "sentAt": "2026-01-02T03:04:05.678Z"})
    response = client.post("/v1/b", data=body, content_type="text/plain", headers=basic(site["write_key"]))
    assert response.json == {"success": True, "accepted": 2, "rejected": []}
    assert [row["message_id"] for row in stored(engine)] == ["m1", "m2"]


def test_rudderstack_identify_traits_in_context_are_its_traits(client, engine, site):
    """RudderStack's SDK (v3) sends an identify's traits as context.traits, and every later message carries them
    there too: an identify takes them as its traits, other messages do not get traits from them."""
    context = {"traits": {"email": "ann@example.com"}, "library": {"name": "RudderLabs JavaScript SDK"}}
    batch = [
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "channel": "web",
            "context": context,
            "rudderId": "r1",
            "messageId": "m1",
        },
        {"type": "track", "event": "After", "userId": "u1", "anonymousId": "a1", "context": context, "messageId": "m2"},
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "traits": {"email": "top@example.com"},
            "context": context,
            "messageId": "m3",
        },
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "context": {"traits": "not an object"},
            "messageId": "m4",
        },
    ]
    response = client.post("/v1/batch", json={"batch": batch}, headers=basic(site["write_key"]))
    assert response.json == {"success": True, "accepted": 4, "rejected": []}
    rows = {row["message_id"]: row for row in stored(engine)}
    assert rows["m1"]["traits"] == {"email": "ann@example.com"}
    assert rows["m1"]["context"]["traits"] == {"email": "ann@example.com"}
    assert rows["m2"]["traits"] is None
    assert rows["m3"]["traits"] == {"email": "top@example.com"}  # the message's own traits win
    assert rows["m4"]["traits"] is None


def test_rudderstack_beacons_to_beacon_v1_batch(client, engine, site):
    """RudderStack's SDK with useBeacon posts {batch, sentAt} as text/plain to /beacon/v1/batch?writeKey=."""
    body = json.dumps(
        {
            "batch": [
                {
                    "type": "track",
                    "event": "Viewed",
                    "anonymousId": "a1",
                    "userId": "",
                    "channel": "web",
                    "messageId": "m1",
                    "originalTimestamp": "2026-01-02T03:04:05Z",
                    "integrations": {"All": True},
                    "sentAt": "2026-01-02T03:04:05Z",
                }
            ],
            "sentAt": "2026-01-02T03:04:05Z",
        }
    )
    response = client.post(
        f"/beacon/v1/batch?writeKey={site['write_key']}", data=body, content_type="text/plain", headers=ORIGIN
    )
    assert response.json == {"success": True, "accepted": 1, "rejected": []}
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert [row["message_id"] for row in stored(engine)] == ["m1"]
    refused = client.post("/beacon/v1/batch?writeKey=wk_nobody", data=body, content_type="text/plain")
    assert refused.status_code == 401 and refused.json["error"]["code"] == "invalid_write_key"
    assert counts(engine)["events"] == 1
