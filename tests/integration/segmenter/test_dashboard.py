"""Dashboard sign-in: a server-side session whose cookie is a random token (never the API key), ended by
sign-out and by `cohortly sites rotate-key`; every form carries a CSRF token; cookie flags."""

import json
import re

import pytest
from sqlalchemy import func, select, update

from core.cli import main
from core.schema import DashboardSession
from segmenter.serving import dashboard
from tests.helpers.segmenter import form_token, sign_in

SESSIONS = DashboardSession.__table__


@pytest.fixture
def app(database_url):
    """The collector app with no write-key cache (a rotated write key must fail on the next request)."""
    from core.app import create_app

    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "SITE_CACHE_SECONDS": 0})
    yield app
    app.extensions["cohortly_engine"].dispose()


def set_cookies(response):
    """The response's Set-Cookie headers by cookie name: (value, attributes in lower case)."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        name_value, *attributes = [part.strip() for part in header.split(";")]
        name, value = name_value.split("=", 1)
        cookies[name] = (value, [attribute.lower() for attribute in attributes])
    return cookies


def session_count(engine):
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(SESSIONS))


def signed_in(client):
    page = client.get("/dashboard/")
    return page.status_code == 200 and b'id="segments"' in page.data


def test_the_cookie_is_a_random_token_not_the_api_key_and_its_flags(client, site, engine):
    response = sign_in(client, site["api_key"])
    assert response.status_code == 303
    value, attributes = set_cookies(response)[dashboard.COOKIE]
    assert value and site["api_key"] not in value and value not in site["api_key"]
    assert {"httponly", "samesite=strict", "path=/dashboard"} <= set(attributes)
    assert "secure" not in attributes  # plain http (a local demo): a Secure cookie would never come back
    [max_age] = [int(a.split("=")[1]) for a in attributes if a.startswith("max-age=")]
    assert 0 < max_age <= 8 * 3600
    assert signed_in(client)
    with engine.connect() as conn:
        row = conn.execute(select(SESSIONS)).one()
    assert value not in (row.token_hash, site["api_key"]) and row.expires_at - row.created_at == 8 * 3600 * 1000
    assert "cohortly_api_key" not in client.get("/dashboard/").headers.get("Set-Cookie", "")


def test_over_https_the_cookies_are_secure(app, site):
    client = app.test_client()
    page = client.get("/dashboard/", base_url="https://localhost")
    assert "secure" in set_cookies(page)[dashboard.CSRF_COOKIE][1]
    response = client.post(
        "/dashboard/login",
        base_url="https://localhost",
        data={"api_key": site["api_key"], "csrf_token": form_token(page.text)},
    )
    assert response.status_code == 303
    assert {"secure", "httponly", "samesite=strict"} <= set(set_cookies(response)[dashboard.COOKIE][1])


def test_a_stolen_cookie_stops_working_after_sign_out(app, client, site, engine):
    sign_in(client, site["api_key"])
    stolen = client.get_cookie(dashboard.COOKIE, path="/dashboard").value
    thief = app.test_client()
    thief.set_cookie(dashboard.COOKIE, stolen, path="/dashboard")
    assert signed_in(thief)
    page = client.get("/dashboard/")
    out = client.post("/dashboard/logout", data={"csrf_token": form_token(page.text)})
    assert out.status_code == 303
    assert set_cookies(out)[dashboard.COOKIE][0] in ("", '""')  # the browser forgets it
    assert not signed_in(thief)  # and the server does too
    assert session_count(engine) == 0


@pytest.mark.parametrize("token", [None, "", "wrong-token", "ä" * 10], ids=["missing", "empty", "wrong", "non-ascii"])
def test_sign_out_without_the_forms_csrf_token_is_refused_and_ends_nothing(client, site, engine, token):
    sign_in(client, site["api_key"])
    data = {} if token is None else {"csrf_token": token}
    refused = client.post("/dashboard/logout", data=data)
    assert refused.status_code == 403 and b"not sent from this dashboard page" in refused.data
    assert dashboard.COOKIE not in set_cookies(refused)
    assert session_count(engine) == 1 and signed_in(client)


@pytest.mark.parametrize("case", ["missing", "wrong", "no_cookie", "other_browsers"])
def test_a_sign_in_without_the_forms_csrf_token_is_refused_and_creates_no_session(app, client, site, engine, case):
    page = client.get("/dashboard/")
    token = form_token(page.text)
    data = {"api_key": site["api_key"]}
    if case == "wrong":
        data["csrf_token"] = token[:-2] + "xx"
    elif case == "no_cookie":  # a page elsewhere posting the form: it cannot send the Strict cookie
        client.delete_cookie(dashboard.CSRF_COOKIE, path="/dashboard")
        data["csrf_token"] = token
    elif case == "other_browsers":  # a token the attacker got from the form in their own browser
        data["csrf_token"] = form_token(app.test_client().get("/dashboard/").text)
    refused = client.post("/dashboard/login", data=data)
    assert refused.status_code == 403
    assert b"not sent from this dashboard page" in refused.data and b'id="segments"' not in refused.data
    assert dashboard.COOKIE not in set_cookies(refused)
    assert session_count(engine) == 0 and not signed_in(client)


def test_a_wrong_api_key_is_refused_with_a_valid_csrf_token(client, site, engine):
    refused = sign_in(client, "sk_wrong")
    assert refused.status_code == 401 and b"not an API key" in refused.data
    assert session_count(engine) == 0 and not signed_in(client)


def test_an_expired_session_signs_nobody_in(client, site, engine):
    sign_in(client, site["api_key"])
    with engine.begin() as conn:
        conn.execute(update(SESSIONS).values(expires_at=SESSIONS.c.created_at))
    assert not signed_in(client)


def test_two_open_sign_in_pages_share_one_csrf_token(client, site):
    first = form_token(client.get("/dashboard/").text)
    second = form_token(client.get("/dashboard/").text)
    assert first == second
    assert client.post("/dashboard/login", data={"api_key": site["api_key"], "csrf_token": first}).status_code == 303


def api_status(client, key):
    return client.get("/api/v1/segments", headers={"Authorization": f"Bearer {key}"}).status_code


def batch_status(client, write_key):
    return client.post(
        "/v1/batch", json={"batch": [{"type": "page", "anonymousId": "a"}]}, auth=(write_key, "")
    ).status_code


def test_rotate_key_ends_the_old_key_and_every_session_and_the_new_key_works(app, client, site, engine, runner):
    sign_in(client, site["api_key"])
    other_browser = app.test_client()
    sign_in(other_browser, site["api_key"])
    assert signed_in(client) and signed_in(other_browser) and api_status(client, site["api_key"]) == 200
    result = runner.invoke(main, ["sites", "rotate-key", "shop", "--json"])
    assert result.exit_code == 0, result.output
    keys = json.loads(result.output)
    assert set(keys) == {"site_id", "api_key"} and keys["api_key"] != site["api_key"]
    assert not signed_in(client) and not signed_in(other_browser) and session_count(engine) == 0
    assert api_status(client, site["api_key"]) == 401
    assert sign_in(app.test_client(), site["api_key"]).status_code == 401
    assert api_status(client, keys["api_key"]) == 200
    fresh = app.test_client()
    assert sign_in(fresh, keys["api_key"]).status_code == 303 and signed_in(fresh)
    assert batch_status(client, site["write_key"]) == 200  # the write key was kept


def test_rotate_key_with_write_key_replaces_the_write_key_too(client, site, runner):
    result = runner.invoke(main, ["sites", "rotate-key", str(site["site_id"]), "--write-key"])
    assert result.exit_code == 0, result.output
    printed = dict(re.findall(r"^(\w+):\s+(\S+)$", result.stdout, re.M))
    assert set(printed) == {"api_key", "write_key"} and printed["write_key"] != site["write_key"]
    assert batch_status(client, site["write_key"]) == 401
    assert batch_status(client, printed["write_key"]) == 200
    assert api_status(client, printed["api_key"]) == 200 and api_status(client, site["api_key"]) == 401


def test_rotate_key_of_an_unknown_site_is_one_clear_error(runner, site):
    result = runner.invoke(main, ["sites", "rotate-key", "nope"])
    assert result.exit_code == 1 and "No site named 'nope'" in result.output


def test_dashboard_pages_run_no_script_and_cannot_be_framed(client, site):
    pages = [client.get("/dashboard/"), sign_in(client, site["api_key"]), client.get("/dashboard/")]
    for page in pages:
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "script-src" not in policy
        assert page.headers["X-Frame-Options"] == "DENY"
    assert b'id="segments"' in pages[2].data and pages[2].headers["Cache-Control"] == "no-store"
