"""Text the databases cannot hold (NUL, lone surrogates) in a path, a query or a key: a 4xx, never a 500."""

import pytest
from sqlalchemy import func, select

from core.schema import Event
from tests.helpers.segmenter import store, track

BAD = ["%00", "a%00b", "%ED%A0%80"]  # NUL; NUL inside; a lone surrogate, UTF-8-encoded
GETS = [
    "/v1/segments/me?anonymousId={}",
    "/api/v1/segments/{}",
    "/api/v1/segments/{}/members",
    "/api/v1/segments/{}/members.csv",
    "/api/v1/segments/{}/members.ndjson",
    "/api/v1/segments/{}/changes",
    "/api/v1/segments/browsers/members?cursor={}",
    "/api/v1/webhooks?segment={}",
    "/api/v1/profiles/{}",
    "/api/v1/profiles/{}/export",
]


@pytest.mark.parametrize("template", GETS)
@pytest.mark.parametrize("bad", BAD)
def test_unstorable_text_in_a_request_is_a_client_error(client, engine, site, template, bad):
    store(engine, site["site_id"], [track("Product Viewed", anon="anon-1", product_id="p1")])
    auth = {"Authorization": f"Bearer {site['api_key']}"}
    url = template.format(bad)
    response = client.get(url + ("&" if "?" in url else "?") + f"writeKey={site['write_key']}", headers=auth)
    expected = (401, 404, 422) if "%00" in bad else (200, 401, 404, 422)  # werkzeug decodes bad UTF-8 to U+FFFD
    assert response.status_code in expected, (url, response.status_code, response.get_data(as_text=True))
    if response.status_code != 200:
        assert set(response.get_json()) == {"error"}


@pytest.mark.parametrize("bad", BAD)
def test_unstorable_profile_id_is_not_erased_nor_anything_else(client, engine, site, bad):
    store(engine, site["site_id"], [track("Product Viewed", anon="anon-1", product_id="p1")])
    response = client.delete(f"/api/v1/profiles/{bad}", headers={"Authorization": f"Bearer {site['api_key']}"})
    assert response.status_code in (404, 422)
    assert response.get_json()["error"]["code"]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event.__table__)) == 1


@pytest.mark.parametrize("bad", ["\x00", "a\x00b", "\ud800"])
def test_unstorable_write_key_is_refused_and_nothing_stored(client, engine, site, bad):
    body = {"batch": [{"type": "track", "event": "x", "anonymousId": "a"}]}
    for response in (
        client.post("/v1/batch", json=body, headers={"Authorization": "Basic " + _basic(bad)}),
        client.post("/v1/batch", json={**body, "writeKey": bad}),
        client.post("/v1/batch?writeKey=" + bad.encode("utf-8", "surrogatepass").hex(), json=body),
        client.get(
            "/api/v1/segments",
            headers={"Authorization": "Bearer " + bad.encode("utf-8", "surrogatepass").decode("latin-1")},
        ),
    ):
        assert response.status_code in (400, 401), response.get_data(as_text=True)
        assert set(response.get_json()) == {"error"}
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event.__table__)) == 0


def _basic(username):
    import base64

    return base64.b64encode((username + ":").encode("utf-8", "surrogatepass")).decode()
