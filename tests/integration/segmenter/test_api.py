"""The segment API: one test per route, auth failures and cross-site isolation."""

import csv
import io
import json

import pytest

from core import sites
from segmenter.rollup.chunks import run_rollup
from segmenter.rules.definitions import HOUR as HOUR_MS
from tests.helpers.segmenter import T0, bearer, identify, page, store, track

NOW = T0 + 3 * HOUR_MS


@pytest.fixture
def shop(engine, site):
    """Site `shop` rolled up at NOW: anon-1 browses (2 views), anon-2 abandons a cart, user-3 (a verified
    identify) buys once."""
    store(
        engine,
        site["site_id"],
        [
            page(at=T0, anon="anon-1"),
            track(
                "Product Viewed", at=T0, anon="anon-1", product_id="p1", name="Trail Shoe", category="Shoes", price=89
            ),
            track(
                "Product Viewed",
                at=T0 + 60_000,
                anon="anon-1",
                product_id="p2",
                name="Rain Jacket",
                category="Jackets",
                price=120,
            ),
            track("Product Added", at=T0, anon="anon-2", product_id="p1", name="Trail Shoe", price=89, quantity=2),
            {**identify("user-3", anon="anon-3", at=T0, email="ann@example.com"), "user_verified": True},
            track("Order Completed", at=T0 + 1000, anon="anon-3", user="user-3", order_id="o1", revenue=50),
        ],
    )
    run_rollup(engine, now=NOW, site_id=site["site_id"])
    return site


@pytest.fixture
def other(engine):
    """A second site with a browser of its own, rolled up at NOW."""
    site = sites.create_site(engine, "other", [])
    store(
        engine,
        site["site_id"],
        [
            track("Product Viewed", at=T0, anon="b-1", product_id="x"),
            track("Product Viewed", at=T0 + 1, anon="b-1", product_id="y"),
        ],
    )
    run_rollup(engine, now=NOW, site_id=site["site_id"])
    return site


ROUTES = [
    "/api/v1/segments",
    "/api/v1/segments/browsers",
    "/api/v1/segments/browsers/members",
    "/api/v1/segments/browsers/members.csv",
    "/api/v1/segments/browsers/members.ndjson",
    "/api/v1/segments/browsers/changes",
    "/api/v1/profiles/anon-1",
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "headers, status, code",
    [
        ({}, 401, "missing_api_key"),
        ({"Authorization": "Bearer sk_wrong"}, 401, "invalid_api_key"),
        ({"Authorization": "Basic c2tfd3Jvbmc6"}, 401, "missing_api_key"),
    ],
)
def test_every_route_needs_an_api_key(client, shop, route, headers, status, code):
    response = client.get(route, headers=headers)
    assert response.status_code == status
    assert response.json == {"error": {"code": code, "message": response.json["error"]["message"]}}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("route", ROUTES)
def test_a_write_key_never_reads(client, shop, route):
    response = client.get(route, headers=bearer(shop["write_key"]))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "write_key_cannot_read"


def test_segments_list(client, shop):
    response = client.get("/api/v1/segments", headers=bearer(shop["api_key"]))
    assert response.status_code == 200
    segments = {s["name"]: s for s in response.json["segments"]}
    assert set(segments) == {
        "browsers",
        "cart_abandoners",
        "checkout_abandoners",
        "active",
        "dormant",
        "new_buyers",
        "repeat_buyers",
        "email_engaged",
        "email_unengaged",
    }
    browsers = segments["browsers"]
    assert browsers["size"] == 1
    assert browsers["too_small"] is True and browsers["min_size"] == 10
    assert browsers["thresholds"] == {"browse_window": "7d"} or "browse_window" in browsers["thresholds"]
    assert browsers["definition"]["context"] == "browsing"
    assert browsers["definition"]["conditions"][0]["op"] == "within"
    assert browsers["last_computed_at"].endswith("Z")
    assert segments["new_buyers"]["size"] == 1
    assert segments["cart_abandoners"]["size"] == 1


def test_segment_sizes_follow_an_erasure_before_the_next_rollup(client, shop):
    """Sizes are the members the API lists now, not the last rollup's (an erasure changes them in between)."""

    def sizes():
        return {
            s["name"]: s["size"]
            for s in client.get("/api/v1/segments", headers=bearer(shop["api_key"])).json["segments"]
        }

    assert (sizes()["new_buyers"], sizes()["active"]) == (1, 3)
    assert client.delete("/api/v1/profiles/user-3", headers=bearer(shop["api_key"])).status_code == 200
    assert (sizes()["new_buyers"], sizes()["active"]) == (0, 2)
    assert client.get("/api/v1/segments/new_buyers", headers=bearer(shop["api_key"])).json["size"] == 0
    listed = client.get("/api/v1/segments/active/members", headers=bearer(shop["api_key"])).json["members"]
    assert len(listed) == 2


def test_thresholds_follow_the_site_settings(client, engine, shop):
    from segmenter.reads.catalog import configure_site

    configure_site(engine, shop["site_id"], {"cart_abandon_after": "2h"})
    response = client.get("/api/v1/segments/cart_abandoners", headers=bearer(shop["api_key"]))
    assert response.json["thresholds"]["cart_abandon_after"] == "2h"
    assert "2h" in response.json["description"]


def test_unknown_segment(client, shop):
    for route in (
        "/api/v1/segments/vips",
        "/api/v1/segments/vips/members",
        "/api/v1/segments/vips/changes",
        "/api/v1/segments/vips/members.csv",
    ):
        response = client.get(route, headers=bearer(shop["api_key"]))
        assert response.status_code == 404
        assert response.json["error"]["code"] == "unknown_segment"


def test_members_carry_the_message_context(client, shop):
    response = client.get("/api/v1/segments/browsers/members", headers=bearer(shop["api_key"]))
    assert response.status_code == 200
    [member] = response.json["members"]
    assert member["profile_id"] == "a:anon-1"
    assert member["anonymous_ids"] == ["anon-1"]
    assert member["context"]["last_product"]["name"] == "Rain Jacket"
    assert member["context"]["last_product"]["viewed_at"].endswith("Z")
    assert member["entered_at"].endswith("Z")
    assert response.json["next_cursor"] is None

    carts = client.get("/api/v1/segments/cart_abandoners/members", headers=bearer(shop["api_key"])).json["members"]
    assert carts[0]["context"]["cart_value"] == 178
    assert carts[0]["context"]["cart"][0]["product_id"] == "p1"

    buyers = client.get("/api/v1/segments/new_buyers/members", headers=bearer(shop["api_key"])).json["members"]
    assert (buyers[0]["user_id"], buyers[0]["email"]) == ("user-3", "ann@example.com")
    assert buyers[0]["anonymous_ids"] == ["anon-3"]


@pytest.mark.parametrize("segment", ["browsers", "cart_abandoners", "new_buyers", "active"])
def test_member_pages_are_what_the_member_schema_dumps(client, engine, shop, segment):
    """Pages are dumped by exports.member_record; the OpenAPI document promises MemberPageSchema."""
    from flask import jsonify

    from segmenter.reads import members
    from segmenter.serving.schemas import MemberPageSchema

    response = client.get(
        f"/api/v1/segments/{segment}/members", query_string={"limit": 2}, headers=bearer(shop["api_key"])
    )
    with engine.connect() as conn:
        page = members.member_page(conn, shop["site_id"], segment, limit=2)
    with client.application.app_context():
        expected = jsonify(MemberPageSchema().dump({"members": page, "next_cursor": response.json["next_cursor"]}))
    assert response.json["members"]
    assert response.get_data() == expected.get_data()


def test_member_pages_walk_every_member_once(client, engine, site):
    rows = []
    for i in range(25):
        rows += [
            track("Product Viewed", at=T0, anon=f"v{i:02d}", product_id="a"),
            track("Product Viewed", at=T0 + 1, anon=f"v{i:02d}", product_id="b"),
        ]
    store(engine, site["site_id"], rows)
    run_rollup(engine, now=NOW, site_id=site["site_id"])
    seen, cursor = [], None
    while True:
        query = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/segments/browsers/members", query_string=query, headers=bearer(site["api_key"])).json
        seen += [m["profile_id"] for m in body["members"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(f"a:v{i:02d}" for i in range(25))


def test_entered_since_filters(client, shop):
    later = "2030-01-01T00:00:00Z"
    body = client.get(
        "/api/v1/segments/browsers/members", query_string={"entered_since": later}, headers=bearer(shop["api_key"])
    ).json
    assert body["members"] == []
    body = client.get(
        "/api/v1/segments/browsers/members",
        query_string={"entered_since": "2020-01-01T00:00:00Z"},
        headers=bearer(shop["api_key"]),
    ).json
    assert len(body["members"]) == 1


@pytest.mark.parametrize(
    "query, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"entered_since": "yesterday"}, "entered_since"),
        ({"cursor": "%%%"}, "cursor"),
    ],
)
def test_bad_member_query(client, shop, query, field):
    response = client.get("/api/v1/segments/browsers/members", query_string=query, headers=bearer(shop["api_key"]))
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_request"
    assert field in response.json["error"]["fields"]


def test_csv_export(client, shop):
    response = client.get("/api/v1/segments/new_buyers/members.csv", headers=bearer(shop["api_key"]))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="new_buyers.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["profile_id"], r["email"], r["anonymous_ids"]) for r in rows] == [
        ("u:user-3", "ann@example.com", "anon-3")
    ]
    assert json.loads(rows[0]["context"])["order_count"] == 1


def test_ndjson_export(client, shop):
    response = client.get("/api/v1/segments/browsers/members.ndjson", headers=bearer(shop["api_key"]))
    assert response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [line["profile_id"] for line in lines] == ["a:anon-1"]
    assert lines[0]["context"]["last_product"]["id"] == "p2"


def test_changes_feed_with_cursor(client, engine, shop):
    first = client.get("/api/v1/segments/active/changes", headers=bearer(shop["api_key"])).json
    assert {c["profile_id"] for c in first["changes"]} == {"a:anon-1", "a:anon-2", "u:user-3"}
    assert all(c["change"] == "enter" for c in first["changes"])
    cursor = first["next_cursor"]
    again = client.get(
        "/api/v1/segments/active/changes", query_string={"since": cursor}, headers=bearer(shop["api_key"])
    ).json
    assert again == {"changes": [], "next_cursor": cursor}
    run_rollup(engine, now=NOW + 8 * 24 * HOUR_MS, site_id=shop["site_id"])  # everyone goes quiet
    later = client.get(
        "/api/v1/segments/active/changes", query_string={"since": cursor}, headers=bearer(shop["api_key"])
    ).json
    assert {(c["profile_id"], c["change"]) for c in later["changes"]} == {
        ("a:anon-1", "exit"),
        ("a:anon-2", "exit"),
        ("u:user-3", "exit"),
    }
    assert later["next_cursor"] > cursor


def test_profile_by_any_id(client, shop):
    for any_id in ("user-3", "u:user-3", "anon-3"):
        response = client.get(f"/api/v1/profiles/{any_id}", headers=bearer(shop["api_key"]))
        assert response.status_code == 200, any_id
        body = response.json
        assert body["profile_id"] == "u:user-3"
        assert body["anonymous_ids"] == ["anon-3"]
        assert body["facts"]["order_count"] == 1
        assert {s["segment"] for s in body["segments"]} == {"active", "new_buyers"}
        assert {h["segment"] for h in body["history"]} == {"active", "new_buyers"}


def test_unknown_profile(client, shop):
    response = client.get("/api/v1/profiles/nobody", headers=bearer(shop["api_key"]))
    assert response.status_code == 404
    assert response.json["error"]["code"] == "unknown_profile"


def test_sites_are_isolated(client, shop, other):
    own = client.get("/api/v1/segments/browsers/members", headers=bearer(other["api_key"])).json["members"]
    assert [m["profile_id"] for m in own] == ["a:b-1"]
    assert client.get("/api/v1/profiles/anon-1", headers=bearer(other["api_key"])).status_code == 404
    assert client.get("/api/v1/profiles/b-1", headers=bearer(shop["api_key"])).status_code == 404
    exported = client.get("/api/v1/segments/browsers/members.ndjson", headers=bearer(other["api_key"])).get_data(
        as_text=True
    )
    assert "anon-1" not in exported
    feed = client.get("/api/v1/segments/browsers/changes", headers=bearer(other["api_key"])).json["changes"]
    assert {c["profile_id"] for c in feed} == {"a:b-1"}


def test_visitor_sees_only_their_segment_names(client, shop, other):
    response = client.get(
        "/v1/segments/me",
        query_string={"anonymousId": "anon-1", "writeKey": shop["write_key"]},
        headers={"Origin": "https://shop.example"},
    )
    assert response.status_code == 200
    assert response.json == {"segments": ["active", "browsers"]}
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    linked = client.get("/v1/segments/me", query_string={"anonymousId": "anon-3", "writeKey": shop["write_key"]})
    assert linked.json == {"segments": ["active", "new_buyers"]}
    nobody = client.get("/v1/segments/me", query_string={"anonymousId": "ghost", "writeKey": shop["write_key"]})
    assert nobody.json == {"segments": []}
    cross = client.get("/v1/segments/me", query_string={"anonymousId": "anon-1", "writeKey": other["write_key"]})
    assert cross.json == {"segments": []}


def test_visitor_endpoint_needs_a_write_key_and_an_id(client, shop):
    assert client.get("/v1/segments/me", query_string={"anonymousId": "anon-1"}).status_code == 401
    bad = client.get("/v1/segments/me", query_string={"writeKey": shop["write_key"]})
    assert bad.status_code == 422
    assert "anonymousId" in bad.json["error"]["fields"]
    evil = client.get(
        "/v1/segments/me",
        query_string={"anonymousId": "anon-1", "writeKey": shop["write_key"]},
        headers={"Origin": "https://evil.example"},
    )
    assert evil.status_code == 403


def test_openapi_document_and_docs_page(client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["info"]["title"] == "Cohortly"
    assert {
        "/api/v1/segments",
        "/api/v1/segments/{name}/members",
        "/api/v1/segments/{name}/members.csv",
        "/api/v1/segments/{name}/members.ndjson",
        "/api/v1/segments/{name}/changes",
        "/api/v1/profiles/{profile_id}",
        "/v1/segments/me",
    } <= set(spec["paths"])
    assert "bearerAuth" in spec["components"]["securitySchemes"]
    assert "Member" in spec["components"]["schemas"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"openapi.json" in docs.data
