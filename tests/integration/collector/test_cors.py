"""Browsers may send from a site's allowed origins only; server-side SDKs send no Origin."""

import pytest

from core import sites
from tests.helpers.collector import basic, counts, track


def test_allowed_origin_gets_cors_headers(client, engine, site):
    response = client.post(
        f"/v1/batch?writeKey={site['write_key']}",
        data='{"batch": [{"type": "page", "anonymousId": "a"}]}',
        content_type="text/plain",
        headers={"Origin": "https://shop.example"},
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers.get_all("Vary")
    assert counts(engine)["events"] == 1


def test_errors_to_an_allowed_origin_are_readable(client, site):
    response = client.post(
        f"/v1/track?writeKey={site['write_key']}",
        data='{"type": "track"}',
        content_type="text/plain",
        headers={"Origin": "https://shop.example"},
    )
    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"


def test_no_origin_is_a_server_side_sdk(client, engine, site):
    response = client.post("/v1/batch", json={"batch": [track()]}, headers=basic(site["write_key"]))
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_origin_of_another_site_is_refused(client, engine, site):
    other = sites.create_site(engine, "other", ["https://other.example"])
    response = client.post(
        "/v1/batch", json={"batch": [track()]}, headers={**basic(site["write_key"]), "Origin": "https://other.example"}
    )
    assert response.status_code == 403
    assert counts(engine)["events"] == 0
    ok = client.post(
        "/v1/batch", json={"batch": [track()]}, headers={**basic(other["write_key"]), "Origin": "https://other.example"}
    )
    assert ok.status_code == 200


def test_wildcard_origin(client, engine):
    site = sites.create_site(engine, "anywhere", ["*"])
    response = client.post(
        "/v1/batch",
        json={"batch": [track()]},
        headers={**basic(site["write_key"]), "Origin": "https://whatever.example"},
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://whatever.example"


def test_preflight_for_a_known_origin(client, site):
    response = client.options(
        "/v1/batch",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("query", ["", "?writeKey={key}", "?writeKey=wk_unknown"])
@pytest.mark.parametrize("origin", ["https://shop.example", "https://other.example", "https://unknown.example"])
def test_preflight_answers_every_origin_alike(client, engine, site, query, origin):
    # No oracle of which origins the instance serves: a preflight from an origin no site allows gets the same
    # answer as one from an allowed origin (it used to be 403). The POST itself is what checks the origin.
    sites.create_site(engine, "other", ["https://other.example"])
    response = client.options(
        "/v1/batch" + query.format(key=site["write_key"]),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    assert counts(engine)["events"] == 0


def test_after_a_permissive_preflight_the_post_from_an_unknown_origin_is_refused(client, engine, site):
    headers = {**basic(site["write_key"]), "Origin": "https://evil.example"}
    assert client.options("/v1/batch", headers={"Origin": "https://evil.example"}).status_code == 204
    response = client.post("/v1/batch", json={"batch": [track()]}, headers=headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert counts(engine)["events"] == 0
