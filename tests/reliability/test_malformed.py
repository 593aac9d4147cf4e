"""Over a thousand generated malformed requests: never a 5xx, always the one error shape, and nothing stored
from what was rejected (a rejected request stores no event; a rejected message of a batch is a bad row only)."""

import base64
import gzip
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from sqlalchemy import func, insert, select

from collector import messages as quick
from collector.schemas import TYPES, load_message, message_schema
from core import sites
from core.app import create_app
from core.db import make_engine
from core.schema import BadRow, Event, Site
from tests.helpers.collector import basic, counts

EXAMPLES = 1100
FIELDS = (
    "type",
    "messageId",
    "userId",
    "anonymousId",
    "previousId",
    "groupId",
    "event",
    "name",
    "category",
    "properties",
    "traits",
    "context",
    "integrations",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "receivedAt",
    "writeKey",
    "channel",
    "version",
    "options",
    "_metadata",
    "rudderId",
)
ODD_STRINGS = (
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "x" * 201,
    "x" * 40_000,
    "2026-13-45T99:99:99Z",
    "2026-01-15T10:00:00",
    "not a date",
    "1e400",
    "NaN",
    "\u202e",
    "𝔘𝔫𝔦",
    "null",
    "track",
    "https://shop.example/?utm_source=\x00",
    "../../etc/passwd",
    "<script>",
    "'; DROP TABLE events;--",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1999-12-31T23:59:59Z",
    " ",
)
ODD_NUMBERS = (0, -1, 2**63, -(2**63) - 1, 10**30, 1e308, -0.0, float("nan"), float("inf"), float("-inf"))

leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(ODD_STRINGS)
    | st.sampled_from(ODD_NUMBERS)
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(FIELDS) | st.text(max_size=12)
#: The codes of a message's faults (kept as a bad row), as against a whole request's.
MESSAGE_FAULTS = ("invalid_message", "message_too_large", "invalid_timestamp", "out_of_range", "too_deep")


def valid_message(kind):
    """A valid message of `kind`; mutations then make it invalid (or, by chance, leave it valid)."""
    message = {
        "type": kind,
        "anonymousId": "anon-1",
        "timestamp": "2026-01-15T10:00:00Z",
        "properties": {"price": 10},
        "context": {"page": {"url": "https://shop.example/p/1"}},
    }
    message.update(
        {
            "track": {"event": "Product Viewed"},
            "group": {"groupId": "g1"},
            "alias": {"previousId": "anon-1", "userId": "u1"},
        }.get(kind, {})
    )
    return message


@st.composite
def messages(draw):
    """A message with 1-3 fields set to odd values or removed, or something that is not an object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values.filter(lambda value: not isinstance(value, dict)))
    message = valid_message(draw(st.sampled_from(TYPES)))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(field_names)
        if draw(st.booleans()):
            message.pop(name, None)
        else:
            message[name] = draw(json_values)
    return message


@st.composite
def envelopes(draw):
    """A /v1/batch body: a few mutated messages among valid ones, or a broken envelope."""
    batch = [
        draw(messages()) if draw(st.booleans()) else valid_message("track") for _ in range(draw(st.integers(1, 4)))
    ]
    body = {"batch": batch}
    fault = draw(st.sampled_from(["messages", "messages", "messages", "envelope", "batch", "too_many"]))
    if fault == "envelope":
        body[
            draw(st.sampled_from(["sentAt", "context", "integrations", "timestamp", "metadata", "writeKey", "extra"]))
        ] = draw(json_values)
    elif fault == "batch":
        body["batch"] = draw(json_values.filter(lambda value: not isinstance(value, list)))
    elif fault == "too_many":
        body["batch"] = [valid_message("track")] * 2501
    return body


@st.composite
def bodies(draw):
    """(path, body bytes, the messages the body holds or None when it is not a valid JSON object)."""
    shape = draw(st.sampled_from(["batch"] * 6 + ["single"] * 2 + ["bytes", "not_object", "truncated"]))
    if shape == "batch":
        envelope = draw(envelopes())
        batch = envelope["batch"] if isinstance(envelope["batch"], list) else None
        return "/v1/batch", envelope, batch
    if shape == "single":
        kind = draw(st.sampled_from(TYPES))
        message = draw(messages())
        return f"/v1/{kind}", message, [message] if isinstance(message, dict) else None
    if shape == "bytes":
        return "/v1/batch", draw(st.binary(max_size=64)), None
    if shape == "not_object":
        return "/v1/batch", draw(json_values.filter(lambda value: not isinstance(value, dict))), None
    text = json.dumps({"batch": [valid_message("track")]})
    return "/v1/batch", text[: draw(st.integers(0, len(text) - 1))].encode(), None


@st.composite
def requests_(draw):
    """A whole request: path, body, headers, query string, and the messages it holds."""
    path, body, batch = draw(bodies())
    if not isinstance(body, bytes):
        body = json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    headers = {
        "Content-Type": draw(
            st.sampled_from(
                [
                    "application/json",
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "application/json; charset=latin-1",
                ]
            )
        )
    }
    auth = draw(st.sampled_from(["basic", "basic", "basic", "none", "unknown", "garbage", "query"]))
    encoding = draw(st.sampled_from([None, None, None, None, "gzip", "bad_gzip", "deflate"]))
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "bad_gzip":
        body = b"\x1f\x8b" + body
    if encoding:
        headers["Content-Encoding"] = "gzip" if encoding == "bad_gzip" else encoding
    extra = draw(
        st.sampled_from(
            [
                {},
                {},
                {"Origin": "https://evil.example"},
                {"Origin": "https://shop.example"},
                {"DNT": "1"},
                {"Origin": "null"},
            ]
        )
    )
    headers.update(extra)
    return path, body, headers, auth, batch


def error_shape(body):
    """True for {"error": {"code": str, "message": str, ["fields": ...]}} and nothing else."""
    return (
        set(body) == {"error"}
        and {"code", "message"} <= set(body["error"]) <= {"code", "message", "fields"}
        and isinstance(body["error"]["code"], str)
        and isinstance(body["error"]["message"], str)
    )


def expected_ids(batch, rejected):
    """(explicit messageIds, how many get an assigned one) of the messages a 200 accepted."""
    explicit, assigned = set(), 0
    for index, message in enumerate(batch):
        if index in rejected:
            continue
        message_id = message.get("messageId")
        message_id = message_id if message_id is None or isinstance(message_id, str) else str(message_id)
        if message_id:
            explicit.add(message_id)
        else:
            assigned += 1
    return explicit, assigned


def test_malformed_requests_never_5xx_and_store_nothing_rejected(database_url):
    app = create_app({"DATABASE_URL": database_url, "RATE_LIMIT": 0})
    client = app.test_client()
    engine = make_engine(database_url)
    sites = iter(_fresh_sites(engine, EXAMPLES + 200))  # a site per example, so messageIds never collide
    seen = Counter()

    @settings(settings.get_profile("reliability"), max_examples=EXAMPLES)
    @given(request=requests_())
    def check(request):
        path, body, headers, auth, batch = request
        site = next(sites)
        key, query = site["write_key"], {}
        if auth == "basic":
            headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        elif auth == "unknown":
            headers["Authorization"] = "Basic " + base64.b64encode(b"wk_nobody:").decode()
        elif auth == "garbage":
            headers["Authorization"] = "Basic %%%not-base64"
        elif auth == "query":
            query = {"writeKey": key}

        response = client.post(path, data=body, headers=headers, query_string=query)
        seen["sent"] += 1
        seen[response.status_code] += 1
        assert response.status_code < 500, response.data[:500]
        answer = response.get_json(silent=True)
        assert isinstance(answer, dict), response.data[:200]

        events, bad = _counts(engine, site["site_id"])
        if response.status_code >= 400:
            seen["rejected"] += 1
            assert error_shape(answer), answer
            assert events == 0, f"{events} events stored from a rejected request {answer}"
            # The single-message endpoints keep an invalid message as a bad row (and answer 400); nothing else does.
            single_message_fault = path != "/v1/batch" and answer["error"]["code"] in MESSAGE_FAULTS
            assert bad <= (1 if single_message_fault else 0)
            return
        assert answer["success"] is True
        rejected = {fault["index"] for fault in answer["rejected"]}
        if rejected:
            seen["rejected"] += 1
        assert all(
            error_shape({"error": {k: v for k, v in fault.items() if k != "index"}}) for fault in answer["rejected"]
        )
        assert bad == len(rejected)
        if answer.get("dropped"):
            assert events == answer["accepted"] == 0
            return
        explicit, assigned = expected_ids(batch, rejected)
        stored = _message_ids(engine, site["site_id"])
        assert answer["accepted"] == len(batch) - len(rejected)
        assert len(stored) == len(explicit) + assigned, (stored, explicit, assigned)
        assert explicit <= set(stored)

    try:
        check()
    finally:
        engine.dispose()
        app.extensions["cohortly_engine"].dispose()
    print(dict(seen))
    assert seen["sent"] >= 1000
    assert seen["rejected"] >= 800  # most of what is generated is indeed malformed


def _fresh_sites(engine, count):
    """`count` sites allowing https://shop.example, made in one transaction: [{"site_id", "write_key"}]."""
    rows = [
        {
            "name": f"fuzz-{n}",
            "write_key": f"wk_fuzz_{n}",
            "api_key_hash": sites.hash_key(f"sk_fuzz_{n}"),
            "origins": ["https://shop.example"],
            "settings": {},
            "created_at": 0,
        }
        for n in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Site), rows)
        found = conn.execute(select(Site.id, Site.write_key).where(Site.name.like("fuzz-%")).order_by(Site.id))
        return [{"site_id": site_id, "write_key": key} for site_id, key in found]


def _counts(engine, site_id):
    with engine.connect() as conn:
        events = conn.scalar(select(func.count()).select_from(Event).where(Event.site_id == site_id))
        bad = conn.scalar(select(func.count()).select_from(BadRow).where(BadRow.site_id == site_id))
    return events, bad


def _message_ids(engine, site_id):
    with engine.connect() as conn:
        return conn.scalars(select(Event.message_id).where(Event.site_id == site_id)).all()


TRACK = {"type": "track", "event": "Product Viewed", "anonymousId": "a"}


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"batch": [dict(TRACK, properties={"price": float("nan")})]}, 200, "invalid_message"),
        ({"batch": [dict(TRACK, properties={"price": float("inf")})]}, 200, "invalid_message"),
        ({"batch": [dict(TRACK, traits={"x": float("-inf")})]}, 200, "invalid_message"),
        ({"batch": [TRACK], "context": {"page": {"url": "https://shop.example/\x00"}}}, 400, "invalid_payload"),
        ({"batch": [TRACK], "context": {"page": {"title": "\ud800"}}}, 400, "invalid_payload"),
        ({"batch": [TRACK], "integrations": {"a\x00": True}}, 400, "invalid_payload"),
        ({"batch": [TRACK], "context": {"pad": "x" * 40_000}}, 200, "message_too_large"),  # merged into every message
    ],
    ids=[
        "nan",
        "infinity",
        "minus-infinity",
        "nul-in-batch-context",
        "surrogate-in-batch-context",
        "nul-in-batch-integrations",
        "batch-context-over-message-limit",
    ],
)
def test_what_no_database_can_store_is_rejected_on_both(client, site, engine, body, status, code):
    """Found by the fuzzing above on PostgreSQL (500s): NaN/Infinity, and NUL, lone surrogates or size hidden in a
    batch's shared context, which is merged into each message after the message's own checks."""
    response = client.post(
        "/v1/batch", data=json.dumps(body), headers={**basic(site["write_key"]), "Content-Type": "application/json"}
    )
    assert response.status_code == status, response.data
    answer = response.get_json()
    found = answer["rejected"][0]["code"] if status == 200 else answer["error"]["code"]
    assert found == code
    assert counts(engine)["events"] == 0


@settings(settings.get_profile("reliability"), max_examples=500)
@given(raw=messages())
def test_the_partial_load_judges_every_message_as_the_full_load_does(raw):
    """`load_message` skips absent fields for speed; it must accept, reject and explain exactly as a full load."""

    def judge(load):
        try:
            return "valid", load(raw)
        except ValidationError as err:
            return "invalid", err.messages

    assert judge(load_message) == judge(message_schema.load)


# --- The fast path (collector.messages) against marshmallow. ---------------------------------------------
ID_EDGES = st.sampled_from(
    [
        "",
        " ",
        "\t\n",
        "\u3000",
        " x ",
        "x" * 200,
        "x" * 201,
        "\x00",
        "\ud800",
        10**199,
        10**200,
        -(10**199),
        1e300,
        True,
        0,
        -0.0,
    ]
)
TEXT_EDGES = st.sampled_from(["", "x" * 50, "x" * 51, "x" * 200, "x" * 201, b"bytes", 0, True])
ids = ID_EDGES | ID_EDGES | st.none() | st.text(max_size=8) | st.integers() | st.floats() | json_values
texts = TEXT_EDGES | TEXT_EDGES | st.none() | st.text(max_size=8) | json_values
offsets = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-23, minutes=59))]
)
TIME_EDGES = st.sampled_from(
    [
        "2026-01-15T10:00:00Z",
        "2026-01-15T10:00:00.123+01:00",
        "2026-01-15",
        "20260115T100000",
        "2026-W03-4",
        "9999-12-31T23:59:59Z",
        "2999-01-01T00:00:00Z",
        "2026-01-15T24:00:00",
        "2026-01-15T10:00:00+25:00",
        "2026-13-45T99:99:99Z",
        "not a date",
        "",
        "1736935200000",
        1736935200000,
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
    ]
)
moments = (
    TIME_EDGES
    | TIME_EDGES
    | st.none()
    | json_values
    | st.datetimes(timezones=offsets).map(datetime.isoformat)
    | st.datetimes().map(lambda moment: moment.isoformat(sep=" ", timespec="milliseconds"))
)
mappings = st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=4) | json_values
VALUES = {
    "type": st.sampled_from(TYPES) | st.sampled_from(["Track", "page ", "", None]) | json_values,
    "event": texts,
    "name": texts,
    "category": texts,
    "channel": texts,
    "writeKey": texts,
    "properties": mappings,
    "traits": mappings,
    "context": mappings,
    "integrations": mappings,
    "options": mappings,
    "_metadata": mappings,
    "timestamp": moments,
    "originalTimestamp": moments,
    "sentAt": moments,
    "receivedAt": json_values,
    "version": json_values,
}
VALUES.update(dict.fromkeys(("messageId", "userId", "anonymousId", "previousId", "groupId", "rudderId"), ids))


@st.composite
def edgy_messages(draw):
    """A message whose fields each get a value near the edge of what the schema allows, on either side."""
    if draw(st.integers(0, 19)) == 0:
        return draw(json_values)
    message = valid_message(draw(st.sampled_from(TYPES))) if draw(st.integers(0, 4)) else {}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=draw(st.sampled_from([2, 2, 8])), unique=True)):
        if draw(st.integers(0, 4)) == 0:
            message.pop(name, None)
        else:
            message[name] = draw(VALUES[name])
    if draw(st.integers(0, 9)) == 0:
        message[draw(st.text(max_size=8))] = draw(json_values)
    return message


def test_the_fast_path_has_a_check_for_every_field_of_the_schema():
    assert set(quick.CHECKS) | {"type"} == {field.data_key or name for name, field in message_schema.fields.items()}


def _judge(load, raw):
    """What `load` makes of `raw`: its loaded value (with types and offsets), its error messages, or its exception."""
    try:
        return "valid", repr(sorted(load(raw).items()))
    except ValidationError as err:
        return "invalid", err.messages
    except Exception as err:  # noqa: BLE001 - whatever marshmallow raises, the fast path must raise too
        return "error", type(err).__name__


EDGES = (
    [None, True, 0, -0.0, 1e300, 10**199, 10**200, float("nan"), float("inf"), [], {}, {"a": [1]}, b"bytes"]
    + ["", "\x00", "\ud800", "x" * 50, "x" * 51, "x" * 200, "x" * 201, "track", "alias", "Track"]
    + list(TIME_EDGES.elements)
)


@pytest.mark.parametrize("kind", TYPES)
def test_the_fast_path_agrees_on_every_edge_value_of_every_field(kind):
    """Each field of a valid message set to each edge value (and removed), judged by both."""
    for name in FIELDS + ("unknown",):
        for value in EDGES + ["removed"]:
            raw = valid_message(kind)
            if value == "removed":
                raw.pop(name, None)
            else:
                raw[name] = value
            assert _judge(quick.load, raw) == _judge(message_schema.load, raw), (name, value)


def test_the_fast_path_judges_and_loads_every_message_as_marshmallow_does():
    """`messages.load` accepts what it can without marshmallow: same verdicts, errors and loaded values as a
    full marshmallow load (datetimes compared with their offsets, values with their types)."""
    taken = Counter()

    @settings(settings.get_profile("reliability"), max_examples=3000)
    @given(raw=edgy_messages() | messages())
    def check(raw):
        verdict = _judge(quick.load, raw)
        assert verdict == _judge(message_schema.load, raw)
        taken[verdict[0], quick.quick_load(raw) is not None, _from_json(raw)] += 1

    check()
    print(dict(taken))
    assert taken["valid", True, True] >= 300 and taken["invalid", False, True] >= 300
    # Every valid message a JSON body can hold takes the fast path (only bytes, which JSON has not, do not).
    assert taken["valid", False, True] == 0


def _from_json(value):
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True
