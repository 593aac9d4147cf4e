"""Every way a request or message is refused: the status, the one error shape, and nothing stored."""

import gzip
import json

import pytest

from core.app import create_app
from tests.helpers.collector import basic, counts, stored, track

NOTHING = {"events": 0, "bad_rows": 0, "sites": 1}


def assert_error(response, status, code):
    assert response.status_code == status, response.data
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert set(body["error"]) <= {"code", "message", "fields"}
    return body["error"]


# --- whole-request faults: 4xx, nothing stored at all ------------------------------------------


@pytest.mark.parametrize(
    "data, code",
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'"a string"', "invalid_json"),
        (b'{"batch": [{"type": "track", "event": "\xff\xfe", "anonymousId": "a"}]}', "invalid_json"),
        (b"NaN-ish garbage \x00\x01", "invalid_json"),
    ],
)
def test_malformed_body(client, engine, site, data, code):
    response = client.post("/v1/batch", data=data, headers=basic(site["write_key"]), content_type="application/json")
    assert_error(response, 400, code)
    assert counts(engine) == NOTHING


@pytest.mark.parametrize(
    "headers, body, code",
    [
        ({}, {"batch": [track()]}, "missing_write_key"),
        ({"Authorization": "Basic !!!notbase64"}, {"batch": [track()]}, "invalid_write_key"),
        ({}, {"batch": [track()], "writeKey": "wk_unknown"}, "invalid_write_key"),
        ({}, {"batch": [track()], "writeKey": 12345}, "missing_write_key"),
    ],
)
def test_missing_or_bad_write_key(client, engine, site, headers, body, code):
    response = client.post("/v1/batch", json=body, headers=headers)
    assert_error(response, 401, code)
    assert counts(engine) == NOTHING


def test_unknown_basic_user(client, engine, site):
    assert_error(
        client.post("/v1/batch", json={"batch": [track()]}, headers=basic("wk_nope")), 401, "invalid_write_key"
    )
    assert counts(engine) == NOTHING


@pytest.mark.parametrize(
    "body, field",
    [
        ({"batch": "not a list"}, "batch"),
        ({"batch": [track()], "sentAt": "yesterday"}, "sentAt"),
        ({"batch": [track()], "context": ["not", "a", "dict"]}, "context"),
        ({"batch": [track()], "surprise": 1}, "surprise"),
        ({"messages": [track()]}, "batch"),
    ],
)
def test_invalid_envelope(client, engine, site, body, field):
    error = assert_error(client.post("/v1/batch", json=body, headers=basic(site["write_key"])), 400, "invalid_payload")
    assert field in error["fields"]
    assert counts(engine) == NOTHING


def test_request_over_500_kb(client, engine, site):
    big = [track(properties={"blob": "x" * 20_000}, messageId=str(i)) for i in range(30)]
    response = client.post("/v1/batch", json={"batch": big}, headers=basic(site["write_key"]))
    assert_error(response, 413, "payload_too_large")
    assert counts(engine) == NOTHING


def test_gzip_bomb_over_the_limit(client, engine, site):
    body = json.dumps({"batch": [track(properties={"pad": " " * 2_000_000})]}).encode()
    response = client.post(
        "/v1/batch", data=gzip.compress(body), headers={**basic(site["write_key"]), "Content-Encoding": "gzip"}
    )
    assert_error(response, 413, "payload_too_large")
    assert counts(engine) == NOTHING


def test_broken_gzip(client, engine, site):
    response = client.post(
        "/v1/batch", data=b"\x1f\x8bnot gzip at all", headers={**basic(site["write_key"]), "Content-Encoding": "gzip"}
    )
    assert_error(response, 400, "invalid_body")
    assert counts(engine) == NOTHING


@pytest.mark.parametrize("cut", ["truncated", "trailing bytes", "second member"])
def test_gzip_must_be_one_whole_stream(client, engine, site, cut):
    body = gzip.compress(json.dumps({"batch": [track()]}).encode())
    data = {"truncated": body[:-6], "trailing bytes": body + b"junk", "second member": body + body}[cut]
    response = client.post("/v1/batch", data=data, headers={**basic(site["write_key"]), "Content-Encoding": "gzip"})
    assert_error(response, 400, "invalid_body")
    assert counts(engine) == NOTHING


def test_more_than_2500_messages(client, engine, site):
    batch = [{"type": "page", "anonymousId": "a"}] * 2501
    assert_error(
        client.post("/v1/batch", json={"batch": batch}, headers=basic(site["write_key"])), 413, "payload_too_large"
    )
    assert counts(engine) == NOTHING


def test_origin_not_allowed(client, engine, site):
    response = client.post(
        "/v1/batch", json={"batch": [track()]}, headers={**basic(site["write_key"]), "Origin": "https://evil.example"}
    )
    assert_error(response, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert counts(engine) == NOTHING


def test_rate_limit_gives_429_with_retry_after(database_url, engine, site):
    app = create_app({"DATABASE_URL": database_url, "RATE_LIMIT": 0.001, "RATE_BURST": 2, "RETRY_AFTER": 7})
    client = app.test_client()
    ok = [
        client.post("/v1/batch", json={"batch": [track(messageId=str(i))]}, headers=basic(site["write_key"]))
        for i in range(2)
    ]
    assert [r.status_code for r in ok] == [200, 200]
    limited = client.post("/v1/batch", json={"batch": [track(messageId="third")]}, headers=basic(site["write_key"]))
    assert_error(limited, 429, "rate_limited")
    assert limited.headers["Retry-After"] == "7"
    assert [row["message_id"] for row in stored(engine)] == ["0", "1"]
    app.extensions["cohortly_engine"].dispose()


def test_unknown_route_and_method_use_the_error_shape(client):
    assert_error(client.get("/nothing-here"), 404, "not_found")
    assert_error(client.get("/v1/batch"), 405, "method_not_allowed")


# --- message faults inside a valid batch: the rest is stored, the bad one goes to bad_rows ---------

BAD_MESSAGES = [
    ("not an object", "invalid_message", None),
    ({"event": "E", "anonymousId": "a"}, "invalid_message", "type"),
    ({"type": "bogus", "anonymousId": "a"}, "invalid_message", "type"),
    ({"type": "track", "anonymousId": "a"}, "invalid_message", "event"),
    ({"type": "track", "event": "E"}, "invalid_message", "userId"),
    ({"type": "alias", "userId": "u"}, "invalid_message", "previousId"),
    ({"type": "group", "userId": "u"}, "invalid_message", "groupId"),
    ({"type": "track", "event": 5, "anonymousId": "a"}, "invalid_message", "event"),
    ({"type": "track", "event": "E", "anonymousId": ["a"]}, "invalid_message", "anonymousId"),
    ({"type": "track", "event": "E", "anonymousId": True}, "invalid_message", "anonymousId"),
    ({"type": "track", "event": "E", "anonymousId": "a", "properties": [1, 2]}, "invalid_message", "properties"),
    ({"type": "track", "event": "E", "anonymousId": "a", "timestamp": "soon"}, "invalid_message", "timestamp"),
    ({"type": "track", "event": "E", "anonymousId": "a", "timestamp": 1700000000}, "invalid_message", "timestamp"),
    ({"type": "track", "event": "E", "anonymousId": "a", "unknownKey": 1}, "invalid_message", "unknownKey"),
    ({"type": "track", "event": "E" * 201, "anonymousId": "a"}, "invalid_message", "event"),
    ({"type": "track", "event": "E", "anonymousId": "a" * 201}, "invalid_message", "anonymousId"),
    ({"type": "track", "event": "E", "anonymousId": "a", "properties": {"s": "x" * 40_000}}, "message_too_large", None),
    ({"type": "track", "event": "E\ud800", "anonymousId": "a"}, "invalid_message", None),
    ({"type": "track", "event": "E\u0000", "anonymousId": "a"}, "invalid_message", None),
]


@pytest.mark.parametrize("bad, code, field", BAD_MESSAGES)
def test_bad_message_in_a_batch_is_rejected_alone(client, engine, site, bad, code, field):
    body = json.dumps({"batch": [track(messageId="good-1"), bad, track(messageId="good-2")]})
    response = client.post("/v1/batch", data=body, headers=basic(site["write_key"]), content_type="application/json")
    assert response.status_code == 200
    assert response.json["accepted"] == 2
    [fault] = response.json["rejected"]
    assert fault["index"] == 1
    assert fault["code"] == code
    if field:
        assert field in fault["fields"]
    assert [row["message_id"] for row in stored(engine)] == ["good-1", "good-2"]
    assert counts(engine)["bad_rows"] == 1


@pytest.mark.parametrize(
    "bad, code, field",
    [m for m in BAD_MESSAGES if isinstance(m[0], dict) and "type" in m[0] and m[0]["type"] == "track"],
)
def test_bad_message_to_a_single_endpoint_gets_400(client, engine, site, bad, code, field):
    response = client.post(
        "/v1/track", data=json.dumps(bad), headers=basic(site["write_key"]), content_type="application/json"
    )
    error = assert_error(response, 400, code)
    if field:
        assert field in error["fields"]
    assert counts(engine)["events"] == 0


def test_single_endpoint_refuses_another_type(client, engine, site):
    response = client.post(
        "/v1/page", json={"type": "track", "event": "E", "anonymousId": "a"}, headers=basic(site["write_key"])
    )
    assert_error(response, 400, "invalid_message")
    assert counts(engine) == NOTHING


def test_bad_rows_are_bounded(database_url, engine, site):
    app = create_app({"DATABASE_URL": database_url, "BAD_ROWS_KEEP": 3})
    client = app.test_client()
    for _ in range(3):
        client.post("/v1/batch", json={"batch": [{"type": "nope"}, {"type": "nope"}]}, headers=basic(site["write_key"]))
    assert counts(engine)["bad_rows"] == 3
    app.extensions["cohortly_engine"].dispose()


def test_bad_rows_cli_shows_the_reason(client, runner, site):
    from core.cli import main

    client.post("/v1/batch", json={"batch": [{"type": "track", "anonymousId": "a"}]}, headers=basic(site["write_key"]))
    result = runner.invoke(main, ["bad-rows", "shop"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.splitlines()[0])
    assert line["reason"]["code"] == "invalid_message"
    assert "event" in line["reason"]["fields"]


def test_text_that_spells_a_nul_escape_is_not_a_nul(client, engine, site):
    message = track(properties={"note": "C:\\u0000 is a path, not a NUL"}, messageId="spelled")
    response = client.post("/v1/batch", json={"batch": [message]}, headers=basic(site["write_key"]))
    assert response.json["accepted"] == 1
    assert stored(engine)[0]["properties"]["note"] == "C:\\u0000 is a path, not a NUL"


def test_bad_rows_keep_no_user_agent_string(client, engine, site):
    from collector import store

    agent = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0 uniq-7f3a"
    bad = [
        {"type": "track", "anonymousId": "a", "context": {"userAgent": agent, "locale": "fr-FR", "ip": "203.0.113.9"}},
        {"type": "track", "event": "E", "anonymousId": "a", "userAgent": agent, "ip": "203.0.113.9"},
    ]
    response = client.post("/v1/batch", json={"batch": bad}, headers={**basic(site["write_key"]), "User-Agent": agent})
    assert [fault["code"] for fault in response.json["rejected"]] == ["invalid_message"] * 2
    rows = store.recent_bad_rows(engine, site["site_id"])
    assert len(rows) == 2
    assert not any(
        "uniq-7f3a" in json.dumps(row, default=str) or "203.0.113.9" in json.dumps(row, default=str) for row in rows
    )
    assert json.loads(rows[-1]["payload"])["context"] == {"locale": "fr-FR"}
    assert counts(engine)["events"] == 0
