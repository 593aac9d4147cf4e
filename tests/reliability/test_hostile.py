"""Hostile traffic with the public write key: extreme times, numbers, depths and strings in otherwise
well-formed messages. Never a 5xx; after every accepted request a rollup pass (fold, judge, webhooks, purge)
and every read of the site (API pages, exports, changes, profiles, /v1/segments/me, the dashboard) answer 2xx."""

import base64
import json
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core import schema, sites, times
from core.app import create_app
from core.db import make_engine
from segmenter.rollup import job
from segmenter.webhooks import network
from tests.helpers.receiver import Receiver

EXAMPLES = 120
TIMES = (
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59+14:00",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "1900-01-01T00:00:00Z",
    "2100-01-01T00:00:00Z",
    "2026-12-03T10:00:00Z",
    "2026-12-03T10:00:00.123456+05:45",
    None,
)
NUMBERS = (
    0,
    -1,
    1,
    89,
    0.5,
    -0.0,
    999999999999,
    1000000,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**30,
    10**308,
    1e308,
    -1e308,
    5e-324,
    "89",
    "1e400",
    "NaN",
    "-",
    True,
    None,
    [],
    {"x": 1},
)
STRINGS = (
    "a",
    "",
    " ",
    "u:",
    "a:",
    "x" * 200,
    "zoë@example.com",
    "José",
    'a"b',
    '=HYPERLINK("x")',
    "+1",
    "-1",
    "@a",
    "\tx",
    "\rx",
    "\u202e",
    "𝔘𝔫𝔦",
    "<script>alert(1)</script>",
    "'; DROP TABLE events;--",
    "%00",
    "../..",
    "%",
    "_",
    "a%b_c",
    "\\",
    "null",
    12345,
    1.5,
    -7,
)
EVENTS = (
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Checkout Started",
    "Order Completed",
    "Email Delivered",
    "Email Opened",
    "Email Link Clicked",
    "Signed Up",
)
DEPTHS = (1, 3, 31, 32, 33, 100, 1000, 5000)
PLAIN_TIMES, PLAIN_NUMBERS, PLAIN_STRINGS = (
    ("2026-12-03T10:00:00Z", None),
    (1, 89, 999999999, 10000),
    ("a", "p1", "Shoes"),
)


def hostile(values, plain):
    """A hostile value a third of the time, else a plain one: most requests are then accepted and reach the rollup."""
    return st.one_of(st.sampled_from(values), st.sampled_from(plain), st.sampled_from(plain))


DEEP = "__deep__"
LOOPBACK = network.allowed_networks("127.0.0.0/8")  # the test's webhook receiver


def nested(depth):
    """JSON text of objects nested `depth` deep (written by hand: json.dumps would hit Python's recursion limit)."""
    return '{"a":' * depth + "1" + "}" * depth


@st.composite
def properties(draw):
    """Ecommerce properties with hostile numbers and strings."""
    props = {}
    for name in draw(
        st.sets(
            st.sampled_from(
                (
                    "price",
                    "quantity",
                    "revenue",
                    "value",
                    "total",
                    "product_id",
                    "name",
                    "category",
                    "url",
                    "order_id",
                    "products",
                )
            ),
            max_size=6,
        )
    ):
        if name == "products":
            props[name] = [
                {
                    "product_id": draw(hostile(STRINGS, PLAIN_STRINGS)),
                    "price": draw(hostile(NUMBERS, PLAIN_NUMBERS)),
                    "quantity": draw(hostile(NUMBERS, PLAIN_NUMBERS)),
                }
                for _ in range(draw(st.integers(0, 3)))
            ]
        elif name in ("product_id", "name", "category", "url", "order_id"):
            props[name] = draw(hostile(STRINGS, PLAIN_STRINGS))
        else:
            props[name] = draw(hostile(NUMBERS, PLAIN_NUMBERS))
    if draw(st.integers(0, 5)) == 0:
        props["deep"] = DEEP
    return props


@st.composite
def messages(draw, anon_ids):
    """A message of a plausible kind whose ids, times, numbers and nesting are hostile."""
    kind = draw(st.sampled_from(("track", "track", "track", "page", "identify", "alias")))
    message = {"type": kind, "anonymousId": draw(st.sampled_from(anon_ids + ("", 12345)))}
    if draw(st.booleans()):
        message["userId"] = draw(st.sampled_from(STRINGS))
    if kind == "track":
        message["event"] = draw(st.sampled_from(EVENTS))
        message["properties"] = draw(properties())
    elif kind == "page":
        message["properties"] = {"url": draw(st.sampled_from(STRINGS)), "title": draw(st.sampled_from(STRINGS))}
    elif kind == "identify":
        message["traits"] = {"email": draw(st.sampled_from(STRINGS)), "marketing_consent": draw(st.booleans())}
    else:
        message["previousId"] = draw(st.sampled_from(anon_ids))
        message["userId"] = draw(st.sampled_from(STRINGS))
    stamp = draw(hostile(TIMES, PLAIN_TIMES))
    if stamp is not None:
        message[draw(st.sampled_from(("timestamp", "originalTimestamp")))] = stamp
    if draw(st.integers(0, 7)) == 0:
        message["context"] = {"deep": DEEP}
    return message


@st.composite
def requests_(draw):
    """(path, body bytes, the anonymous ids it names): a batch, or a single message."""
    anon_ids = tuple(f"anon-{n}" for n in range(4))
    batch = [draw(messages(anon_ids)) for _ in range(draw(st.integers(1, 4)))]
    depth = draw(st.sampled_from(DEPTHS))
    if draw(st.integers(0, 3)) == 0:
        path, body = f"/v1/{batch[0]['type']}", batch[0]
    else:
        path, body = "/v1/batch", {"batch": batch}
        if draw(st.booleans()):
            body["sentAt"] = draw(hostile(TIMES, PLAIN_TIMES))
        if draw(st.integers(0, 4)) == 0:
            body["context"] = {"page": {"url": "https://shop.example/" + "x" * draw(st.sampled_from((1, 1000, 30000)))}}
    text = json.dumps(body, ensure_ascii=False).replace(json.dumps(DEEP), nested(depth))
    return path, text.encode("utf-8"), anon_ids


def test_hostile_requests_never_break_a_rollup_or_a_read(database_url):
    app = create_app({"DATABASE_URL": database_url, "RATE_LIMIT": 0, "WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"})
    client = app.test_client()
    engine = make_engine(database_url)
    site = sites.create_site(engine, "shop", ["https://shop.example"])
    auth = {"Authorization": "Basic " + base64.b64encode(f"{site['write_key']}:".encode()).decode()}
    api = {"Authorization": f"Bearer {site['api_key']}"}
    receiver = Receiver()
    receiver.start()
    hook = client.post("/api/v1/webhooks", json={"url": receiver.url}, headers=api)
    assert hook.status_code == 201, hook.get_json()
    dashboard = app.test_client()
    sign_in(dashboard, site["api_key"])
    accepted_requests = []

    @settings(settings.get_profile("reliability"), max_examples=EXAMPLES)
    @given(request=requests_())
    def check(request):
        path, body, anon_ids = request
        response = client.post(path, data=body, headers={**auth, "Content-Type": "application/json"})
        assert response.status_code < 500, response.data[:500]
        answer = response.get_json()
        if response.status_code >= 400 or not answer.get("accepted"):
            return
        accepted_requests.append(path)
        done = job.run_pass(engine, now=times.now_ms(), allowed=LOOPBACK)
        assert not done.failed and done.webhook_error is None, (done.summaries, done.webhook_error)
        assert done.webhooks.failed == 0, receiver.received[-1:]
        for url in reads(engine, site["site_id"], site["write_key"], client, api, anon_ids):
            got = client.get(url, headers=api)
            assert 200 <= got.status_code < 300, (url, got.status_code, got.data[:500])
            got.close()
        page = dashboard.get("/dashboard/")
        assert page.status_code == 200 and b'id="segments"' in page.data, page.data[:500]

    try:
        check()
        for url in hostile_arguments(site["write_key"]):  # over everything the hostile requests stored
            got = client.get(url, headers=api)
            assert got.status_code < 500, (url, got.status_code, got.data[:500])
            got.close()
    finally:
        receiver.stop()
        engine.dispose()
        app.extensions["cohortly_engine"].dispose()
    assert len(accepted_requests) >= EXAMPLES // 4, f"only {len(accepted_requests)} requests were accepted"


def reads(engine, site_id, write_key, client, api, anon_ids):
    """Every read of a site: segments, members, exports, changes, profiles and the visitor's own segments."""
    yield "/api/v1/segments"
    for segment in client.get("/api/v1/segments", headers=api).get_json()["segments"]:
        name = segment["name"]
        for tail in ("", "/members", "/members.ndjson", "/members.csv", "/changes"):
            yield f"/api/v1/segments/{name}{tail}"
    with engine.connect() as conn:
        profiles = conn.scalars(
            select(schema.ProfileFact.profile_id)
            .where(schema.ProfileFact.site_id == site_id)
            .order_by(schema.ProfileFact.profile_id)
            .limit(8)
        ).all()
    for profile_id in profiles:
        yield f"/api/v1/profiles/{quote(profile_id, safe='')}"
        yield f"/api/v1/profiles/{quote(profile_id, safe='')}/export"
    for anon in anon_ids[:2]:
        yield f"/v1/segments/me?anonymousId={anon}&writeKey={write_key}"


ARGUMENTS = (
    "0",
    "-1",
    "1",
    "1000",
    "1001",
    str(2**63),
    str(-(2**63) - 1),
    "1e400",
    "NaN",
    "",
    "%00",
    "%ED%A0%80",
    "x" * 5000,
    "%5B%5D",
    "eyJ9",
    "MTIzOjQ1Ng",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
)


def hostile_arguments(write_key):
    """API reads whose query and path arguments are extreme numbers, times and strings."""
    for value in ARGUMENTS[::3] + ARGUMENTS[1::3]:
        yield f"/api/v1/segments/active/members?limit={value}&cursor={value}"
        yield f"/api/v1/segments/active/members.ndjson?limit={value}"
        yield f"/api/v1/segments/active/changes?since={value}&limit={value}"
        yield f"/api/v1/segments/{value}/members"
        yield f"/api/v1/profiles/{value}"
        yield f"/v1/segments/me?anonymousId={value}&writeKey={write_key}"


def sign_in(client, api_key):
    """Signs the dashboard client in through its form."""
    form = client.get("/dashboard/")
    token = form.data.split(b'name="csrf_token" value="', 1)[-1].split(b'"', 1)[0].decode()
    signed = client.post("/dashboard/login", data={"api_key": api_key, "csrf_token": token})
    assert signed.status_code in (302, 303), signed.data[:300]
