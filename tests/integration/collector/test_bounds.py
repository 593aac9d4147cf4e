"""What a visitor may not make Cohortly store: absurd times and amounts, blank ids, deep nesting, and more
bytes than the request limits (a batch's context copied into every message)."""

import gzip
import json

import pytest

from collector import store
from tests.helpers.collector import basic, counts, stored, track
from tests.integration.collector.test_rejections import assert_error

MAX_REQUEST_BYTES = 500 * 1024


def post_batch(client, site, batch, **envelope):
    response = client.post("/v1/batch", json={"batch": batch, **envelope}, headers=basic(site["write_key"]))
    assert response.status_code == 200, response.data
    return response.json


def bad_rows(engine, site):
    return store.recent_bad_rows(engine, site["site_id"])


# --- times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"timestamp": "0001-01-01T00:00:00+14:00"}, "timestamp"),  # year 0 in UTC
        ({"timestamp": "1999-12-31T23:59:59Z"}, "timestamp"),
        ({"timestamp": "9999-12-31T23:59:59-14:00"}, "timestamp"),
        ({"timestamp": "2100-01-01T00:00:00Z"}, "timestamp"),
        ({"originalTimestamp": "0001-01-01T00:00:00Z"}, "originalTimestamp"),
        ({"timestamp": "2026-01-15T10:00:00Z", "sentAt": "9999-12-31T23:59:59Z"}, "sentAt"),
        ({"timestamp": "2026-01-15T10:00:00Z", "sentAt": "0001-01-01T00:00:00+14:00"}, "sentAt"),
        # Both in range, but the skew correction moves the event to 1928.
        ({"timestamp": "2001-01-01T00:00:00Z", "sentAt": "2099-01-01T00:00:00Z"}, "timestamp"),
    ],
)
def test_a_time_out_of_range_rejects_the_message(client, engine, site, fields, field):
    answer = post_batch(client, site, [track(messageId="good"), track(messageId="bad", **fields)])
    assert answer["accepted"] == 1
    [fault] = answer["rejected"]
    assert (fault["index"], fault["code"]) == (1, "invalid_timestamp")
    assert field in fault["fields"] and "2000-01-01" in fault["message"]
    assert [row["message_id"] for row in stored(engine)] == ["good"]
    [bad] = bad_rows(engine, site)
    assert bad["reason"]["code"] == "invalid_timestamp"
    assert json.loads(bad["payload"])["messageId"] == "bad"


@pytest.mark.parametrize("sent_at", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_an_absurd_batch_sent_at_rejects_its_messages(client, engine, site, sent_at):
    answer = post_batch(
        client, site, [track(messageId="a", timestamp="2026-01-15T10:00:00Z"), track(messageId="b")], sentAt=sent_at
    )
    assert answer["accepted"] == 0
    assert [(fault["code"], list(fault["fields"])) for fault in answer["rejected"]] == [
        ("invalid_timestamp", ["sentAt"])
    ] * 2
    assert counts(engine)["events"] == 0
    assert counts(engine)["bad_rows"] == 2


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_time_out_of_range_to_a_single_endpoint_is_a_400(client, engine, site, timestamp):
    response = client.post("/v1/track", json=track(timestamp=timestamp), headers=basic(site["write_key"]))
    error = assert_error(response, 400, "invalid_timestamp")
    assert "timestamp" in error["fields"]
    assert counts(engine)["events"] == 0


def test_times_at_the_bounds_are_kept(client, engine, site):
    answer = post_batch(
        client,
        site,
        [
            track(messageId="first", timestamp="2000-01-01T00:00:00Z"),
            track(messageId="last", timestamp="2099-12-31T23:59:59Z"),
        ],
    )
    assert (answer["accepted"], answer["rejected"]) == (2, [])
    first, last = stored(engine)
    assert first["timestamp"] == 946_684_800_000
    assert last["timestamp"] == last["received_at"]  # the future is clamped to the time received


# --- amounts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "properties, field",
    [
        ({"price": 999999999999, "quantity": 1000000}, "properties.price"),
        ({"price": 10, "quantity": 1000000}, "properties.quantity"),
        ({"price": 10, "quantity": -1}, "properties.quantity"),
        ({"price": -1e12}, "properties.price"),
        ({"revenue": 1e300}, "properties.revenue"),
        ({"total": 2**70}, "properties.total"),
        ({"value": 1_000_000_001}, "properties.value"),
        ({"products": [{"price": 5}, {"price": 1e10}]}, "properties.products[1].price"),
        ({"products": [{"quantity": 10001}]}, "properties.products[0].quantity"),
    ],
)
def test_an_amount_the_rollup_sums_is_bounded(client, engine, site, properties, field):
    answer = post_batch(
        client, site, [track(messageId="good"), track("Product Added", messageId="bad", properties=properties)]
    )
    assert answer["accepted"] == 1
    [fault] = answer["rejected"]
    assert (fault["code"], list(fault["fields"])) == ("out_of_range", [field])
    assert [row["message_id"] for row in stored(engine)] == ["good"]
    assert [bad["reason"]["code"] for bad in bad_rows(engine, site)] == ["out_of_range"]


def test_amounts_in_range_and_non_numbers_are_kept(client, engine, site):
    kept = [
        {"price": 1_000_000_000, "quantity": 10_000},
        {"price": -1_000_000_000, "quantity": 0, "revenue": 12.5},
        {"price": "999999999999", "quantity": "1000000"},  # strings are stored, never summed
        {"products": [{"price": 19.99, "quantity": 2}, "not an object", {"price": None}]},
        {"price": True, "note": 10**30},
    ]
    answer = post_batch(
        client, site, [track("Order Completed", messageId=str(i), properties=p) for i, p in enumerate(kept)]
    )
    assert (answer["accepted"], answer["rejected"]) == (len(kept), [])
    assert counts(engine)["events"] == len(kept)


# --- blank ids -----------------------------------------------------------------------------------


def test_a_blank_id_is_absent(client, engine, site):
    answer = post_batch(
        client,
        site,
        [
            track(messageId="empty-user", userId="", anonymousId="anon-1"),
            track(messageId="blank-user", userId="  ", anonymousId="anon-2"),
            {"type": "identify", "messageId": "no-id", "userId": "", "anonymousId": " \t"},
            {"type": "alias", "messageId": "alias", "previousId": "", "userId": "u1"},
            {"type": "group", "messageId": "group", "groupId": " ", "anonymousId": "anon-3"},
        ],
    )
    assert answer["accepted"] == 2
    assert [(fault["index"], fault["code"], list(fault["fields"])) for fault in answer["rejected"]] == [
        (2, "invalid_message", ["userId"]),
        (3, "invalid_message", ["previousId"]),
        (4, "invalid_message", ["groupId"]),
    ]
    rows = stored(engine)
    assert [(row["message_id"], row["user_id"], row["anonymous_id"]) for row in rows] == [
        ("empty-user", None, "anon-1"),
        ("blank-user", None, "anon-2"),
    ]
    assert counts(engine)["bad_rows"] == 3


def test_a_blank_user_id_alone_is_the_missing_id_case(client, engine, site):
    response = client.post(
        "/v1/identify", json={"userId": "", "traits": {"email": "a@example.com"}}, headers=basic(site["write_key"])
    )
    error = assert_error(response, 400, "invalid_message")
    assert "userId" in error["fields"]
    assert counts(engine)["events"] == 0


# --- depth ---------------------------------------------------------------------------------------


def nested(depth):
    """JSON text of objects nested `depth` levels deep."""
    return '{"a": ' * depth + "1" + "}" * depth


def message_text(properties_text, **fields):
    fields = {"type": "track", "event": "E", "anonymousId": "a", **fields}
    return json.dumps(fields)[:-1] + ', "properties": ' + properties_text + "}"


@pytest.mark.parametrize(
    "path", ["/v1/batch", "/v1/track", "/v1/page", "/v1/identify", "/v1/alias", "/v1/group", "/v1/screen"]
)
def test_json_nested_5000_deep_is_a_400_on_every_route(client, engine, site, path):
    body = message_text(nested(5000))
    if path == "/v1/batch":
        body = '{"batch": [' + body + "]}"
    response = client.post(path, data=body, headers=basic(site["write_key"]), content_type="application/json")
    assert_error(response, 400, "invalid_json")
    assert counts(engine) == {"events": 0, "bad_rows": 0, "sites": 1}


@pytest.mark.parametrize("depth", [33, 100, 900, 990])
def test_a_message_nested_deeper_than_32_is_rejected(client, engine, site, depth):
    body = (
        '{"batch": [' + message_text(nested(depth), messageId="deep") + ", " + json.dumps(track(messageId="ok")) + "]}"
    )
    response = client.post("/v1/batch", data=body, headers=basic(site["write_key"]), content_type="application/json")
    if response.status_code == 400:  # too deep for this worker's stack to parse at all
        assert_error(response, 400, "invalid_json")
        assert counts(engine)["events"] == 0
        return
    assert response.status_code == 200, response.data
    [fault] = response.json["rejected"]
    assert (fault["index"], fault["code"]) == (0, "too_deep")
    assert [row["message_id"] for row in stored(engine)] == ["ok"]
    [bad] = bad_rows(engine, site)
    assert json.loads(bad["payload"]) == {"type": "track", "event": "E", "anonymousId": "a", "messageId": "deep"}


def test_a_single_message_nested_deeper_than_32_is_a_400(client, engine, site):
    response = client.post(
        "/v1/track", data=message_text(nested(40)), headers=basic(site["write_key"]), content_type="application/json"
    )
    error = assert_error(response, 400, "too_deep")
    assert "properties" in error["fields"]
    assert counts(engine)["events"] == 0


def test_32_levels_are_kept(client, engine, site):
    deep_list = '{"a": ' + "[" * 31 + "]" * 31 + "}"
    body = '{"batch": [' + message_text(nested(32)) + ", " + message_text(deep_list) + "]}"
    response = client.post("/v1/batch", data=body, headers=basic(site["write_key"]), content_type="application/json")
    assert (response.json["accepted"], response.json["rejected"]) == (2, [])


def test_a_batch_context_nested_deeper_than_32_is_a_400(client, engine, site):
    body = '{"batch": [' + json.dumps(track()) + '], "context": ' + nested(40) + "}"
    response = client.post("/v1/batch", data=body, headers=basic(site["write_key"]), content_type="application/json")
    assert_error(response, 400, "invalid_payload")
    assert counts(engine) == {"events": 0, "bad_rows": 0, "sites": 1}


# --- what one request may store ------------------------------------------------------------------


def stored_bytes(engine):
    return sum(len(json.dumps(row["context"])) + len(json.dumps(row["properties"])) for row in stored(engine))


def test_a_batch_context_cannot_amplify_what_one_request_stores(client, engine, site):
    context = {"page": {"url": "https://shop.example/"}, "pad": "x" * 20_000}
    batch = [track(messageId=str(i)) for i in range(500)]
    body = gzip.compress(json.dumps({"batch": batch, "context": context}).encode())
    assert len(body) < 10_000  # a small request, 10 MB once the context is copied into each message
    response = client.post("/v1/batch", data=body, headers={**basic(site["write_key"]), "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.data
    accepted, rejected = response.json["accepted"], response.json["rejected"]
    assert 0 < accepted < 60
    assert accepted + len(rejected) == 500
    assert {fault["code"] for fault in rejected} == {"request_too_large"}
    assert [fault["index"] for fault in rejected] == list(range(accepted, 500))
    assert counts(engine)["events"] == accepted
    assert stored_bytes(engine) <= 2 * MAX_REQUEST_BYTES


def test_an_ordinary_full_request_is_stored_whole(client, engine, site):
    batch = [track(messageId=str(i), properties={"pad": "x" * 1020}) for i in range(450)]
    body = json.dumps({"batch": batch}, separators=(",", ":"))
    assert MAX_REQUEST_BYTES - 20_000 < len(body) <= MAX_REQUEST_BYTES
    response = client.post("/v1/batch", data=body, headers=basic(site["write_key"]), content_type="application/json")
    assert (response.json["accepted"], response.json["rejected"]) == (450, [])
