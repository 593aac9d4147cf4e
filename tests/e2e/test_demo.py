"""The README's demo: `cohortly demo --simulate 500` fills every segment within a minute; the demo shop in real
Chromium puts a browser and a cart abandoner into their segments; the dashboard shows it all, escaped."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import fresh_database
from tests.helpers.live import ROOT, free_port, wait_for

SEGMENTS = {
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
OUTPUT = os.path.join(ROOT, "test-output")


class Demo:
    """A running `cohortly demo` and what it printed."""

    def __init__(self, url, process, log_path, started):
        self.url = url
        self.process = process
        self.log_path = log_path
        self.started = started

    def printed(self):
        with open(self.log_path, encoding="utf-8") as file:
            return file.read()

    def key(self, name):
        found = re.search(rf"{name}:\s+(\S+)", self.printed())
        return found.group(1) if found else None

    def api(self, path, **params):
        response = requests.get(
            self.url + path, params=params, timeout=10, headers={"Authorization": f"Bearer {self.key('API key')}"}
        )
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def demo(template_url, tmp_path_factory):
    """`cohortly demo --simulate 500`, rollups every 2 s, abandoners after 3 s, on a fresh database."""
    directory = tmp_path_factory.mktemp("demo")
    port = free_port()
    log_path = directory / "demo.log"
    env = dict(os.environ, COHORTLY_DATABASE_URL=fresh_database(template_url, directory))
    options = [
        "--port",
        str(port),
        "--simulate",
        "500",
        "--rollup-every",
        "2",
        "--abandon-after",
        "3s",
        "--keys-file",
        str(directory / "keys.json"),
    ]
    in_project_venv = os.path.realpath(sys.prefix) == os.path.realpath(os.path.join(ROOT, ".venv"))
    # In the project's .venv (as under scripts/test and CI) this runs the README's first command itself.
    command = (
        [os.path.join(ROOT, "scripts", "demo"), *options]
        if in_project_venv
        else [sys.executable, "-m", "core.cli", "demo", *options]
    )
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    running = Demo(f"http://127.0.0.1:{port}", process, log_path, None)
    try:
        # The minute starts when the demo starts, after scripts/demo's set-up step.
        wait_for(
            lambda: "Starting gunicorn" in running.printed() or process.poll() is not None,
            timeout=300,
            message="the demo to start",
        )
        running.started = time.monotonic()
        wait_for(lambda: running.key("API key") or process.poll() is not None, timeout=60, message="the demo")
        assert process.poll() is None, running.printed()
        yield running
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_every_segment_fills_within_a_minute(demo):
    def sizes():
        return {s["name"]: s["size"] for s in demo.api("/api/v1/segments")["segments"]}

    deadline = 60 - (time.monotonic() - demo.started)
    filled = wait_for(
        lambda: all(sizes().values()) and sizes(), timeout=max(deadline, 1), message="every segment to have members"
    )
    assert set(filled) == SEGMENTS
    assert all(size > 0 for size in filled.values()), filled
    assert "Sent 500 synthetic visitors" in demo.printed()


def anonymous_id(page):
    return wait_for(lambda: page.evaluate("localStorage['cohortly.a']"), message="the tracker's anonymous id")


def segments_of(demo, anon):
    write_key = demo.key("write key")
    return requests.get(
        f"{demo.url}/v1/segments/me", params={"anonymousId": anon, "writeKey": write_key}, timeout=10
    ).json()["segments"]


def test_a_shop_visitor_who_views_two_products_becomes_a_browser(demo, chromium):  # noqa: F811
    context = chromium.new_context()
    page = context.new_page()
    page.goto(demo.url + "/demo/")
    page.click("a[href='/demo/products/trail-shoe']")
    page.wait_for_url("**/trail-shoe")
    page.goto(demo.url + "/demo/products/rain-jacket")
    anon = anonymous_id(page)
    page.goto(demo.url + "/demo/")  # leaving sends what is queued
    wait_for(lambda: "browsers" in segments_of(demo, anon), timeout=30, message="the visitor in browsers")
    member_ids = [m["profile_id"] for m in demo.api("/api/v1/segments/browsers/members", limit=1000)["members"]]
    assert f"a:{anon}" in member_ids
    context.close()


def test_a_visitor_who_adds_to_cart_and_leaves_becomes_a_cart_abandoner(demo, chromium):  # noqa: F811
    context = chromium.new_context()
    page = context.new_page()
    page.goto(demo.url + "/demo/products/day-pack")
    page.click("#add-to-cart")
    page.wait_for_selector("#added:not([hidden])")
    anon = anonymous_id(page)
    page.goto(demo.url + "/demo/cart")
    assert "Day Pack 20L" in page.inner_text("#cart")
    context.close()  # the visitor leaves
    wait_for(lambda: "cart_abandoners" in segments_of(demo, anon), timeout=30, message="the visitor in cart_abandoners")
    profile = demo.api(f"/api/v1/profiles/{anon}")
    [cart] = [s for s in profile["segments"] if s["segment"] == "cart_abandoners"]
    assert cart["context"]["cart"][0]["product_id"] == "day-pack"
    assert cart["context"]["cart_value"] == 75


def test_a_buyer_in_the_shop_is_identified_and_becomes_a_new_buyer(demo, chromium):  # noqa: F811
    context = chromium.new_context()
    page = context.new_page()
    page.goto(demo.url + "/demo/products/sun-cap")
    page.click("#add-to-cart")
    page.goto(demo.url + "/demo/checkout")
    page.fill("#email", "shopper@example.com")
    page.click("#place-order")
    page.wait_for_url("**/demo/order?id=*")
    page.goto(demo.url + "/demo/")

    def the_buyer_among_new_buyers():
        members = demo.api("/api/v1/segments/new_buyers/members", limit=1000)["members"]
        return [m for m in members if m["profile_id"] == "u:shopper@example.com"]

    wait_for(the_buyer_among_new_buyers, timeout=30, message="a new buyer")
    profile = demo.api("/api/v1/profiles/shopper@example.com")
    assert profile["email"] == "shopper@example.com"
    assert profile["facts"]["order_count"] == 1
    # The demo's guest checkout does not verify identities: the link is unverified, so the write key shows the
    # visitor nothing of the user id they typed (PRIVACY.md, identity verification).
    assert profile["anonymous_ids"] == [anonymous_id(page)]
    assert segments_of(demo, anonymous_id(page)) == []
    context.close()


def test_dashboard_and_shop_screenshots_show_segments_and_funnel(demo, chromium):  # noqa: F811
    os.makedirs(OUTPUT, exist_ok=True)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(demo.url + "/demo/")
    page.screenshot(path=os.path.join(OUTPUT, "demo-shop.png"), full_page=True)
    page.goto(demo.url + "/dashboard/")
    page.fill("#api_key", demo.key("API key"))
    page.click("#sign-in")
    page.wait_for_selector("#segments")
    wait_for(
        lambda: (
            page.reload()
            or all(int(cell.inner_text().split()[0]) > 0 for cell in page.query_selector_all("#segments td.members"))
        ),
        timeout=30,
        message="non-empty segments on the dashboard",
    )
    page.screenshot(path=os.path.join(OUTPUT, "dashboard.png"), full_page=True)
    assert len(page.query_selector_all("#segments tr[data-segment]")) == len(SEGMENTS)
    assert len(page.query_selector_all("#segments svg polyline")) == len(SEGMENTS)
    funnel = page.inner_text("#funnel")
    assert "Viewed a product" in funnel and "Ordered" in funnel and "%" in funnel
    assert os.path.getsize(os.path.join(OUTPUT, "dashboard.png")) > 10_000
    context.close()


def test_dashboard_sign_in_refuses_a_wrong_key(demo, chromium):  # noqa: F811
    page = chromium.new_context().new_page()
    page.goto(demo.url + "/dashboard/")
    page.fill("#api_key", "sk_wrong")
    page.click("#sign-in")
    assert "not an API key" in page.inner_text("#error")
    assert page.query_selector("#segments") is None
    page.context.close()


def test_names_with_script_tags_are_shown_escaped(demo, chromium):  # noqa: F811
    hostile = "<script>window.__pwned=1</script>"
    response = requests.post(
        demo.url + "/v1/batch",
        auth=(demo.key("write key"), ""),
        timeout=10,
        json={
            "batch": [
                {"type": "identify", "userId": hostile, "anonymousId": "hostile-anon", "traits": {"name": hostile}},
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "userId": hostile,
                    "properties": {"name": hostile, "product_id": "x"},
                },
                {
                    "type": "track",
                    "userId": hostile,
                    "event": "Product Viewed",
                    "properties": {"name": hostile},
                    "bogus": hostile,
                },
            ]
        },
    )
    assert response.json()["accepted"] == 2
    page = chromium.new_context().new_page()
    dialogs = []
    page.on("dialog", lambda dialog: dialogs.append(dialog) or dialog.dismiss())
    page.goto(demo.url + "/dashboard/")
    page.fill("#api_key", demo.key("API key"))
    page.click("#sign-in")
    page.wait_for_selector("#changes")  # the sign-in navigation has finished before the first reload
    wait_for(
        lambda: page.reload() or hostile in page.inner_text("#changes"),
        timeout=30,
        message="the hostile profile among the recent changes",
    )
    assert hostile in page.inner_text("#bad-rows")  # shown as text
    html = page.content()
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert page.evaluate("window.__pwned") is None and dialogs == []
    page.context.close()


def session_cookies(context):
    return [c for c in context.cookies() if c["name"] == "cohortly_session"]


def test_dashboard_sign_in_and_out_through_the_forms(demo, chromium):  # noqa: F811
    os.makedirs(OUTPUT, exist_ok=True)
    api_key = demo.key("API key")
    context = chromium.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(demo.url + "/dashboard/")
    page.screenshot(path=os.path.join(OUTPUT, "dashboard-login.png"))
    page.fill("#api_key", api_key)
    page.click("#sign-in")
    page.wait_for_selector("#segments")
    [cookie] = session_cookies(context)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
    assert api_key not in cookie["value"] and all(api_key not in c["value"] for c in context.cookies())
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script on the page can read it
    thief = chromium.new_context()
    thief.add_cookies([{**cookie}])
    stolen = thief.new_page()
    stolen.goto(demo.url + "/dashboard/")
    assert stolen.query_selector("#segments") is not None
    page.click("#sign-out")
    page.wait_for_selector("#sign-in")
    assert session_cookies(context) == []
    stolen.reload()
    assert stolen.query_selector("#sign-in") is not None and stolen.query_selector("#segments") is None
    thief.close()
    context.close()


def test_a_sign_in_form_posted_from_another_site_is_refused(demo, chromium):  # noqa: F811
    context = chromium.new_context()
    evil = (
        f'<form id="f" method="post" action="{demo.url}/dashboard/login">'
        f'<input name="api_key" value="{demo.key("API key")}"><input name="csrf_token" value="guess"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    context.route("https://evil.example/**", lambda route: route.fulfill(body=evil, content_type="text/html"))
    page = context.new_page()
    page.goto(demo.url + "/dashboard/")  # the victim has the sign-in page's CSRF cookie
    page.goto("https://evil.example/")
    page.wait_for_url(demo.url + "/dashboard/login")
    assert "not sent from this dashboard page" in page.inner_text("#error")
    assert session_cookies(context) == []
    page.goto(demo.url + "/dashboard/")
    assert page.query_selector("#segments") is None
    context.close()
