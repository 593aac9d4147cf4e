"""Segment's analytics.js 2.0 and RudderStack's JavaScript SDK, installed from npm (tests/e2e/browser_sdks) and
served by the test pages' server, in Chromium against the collector under gunicorn: page, track and identify arrive
as each library sent them. Every request to anywhere but 127.0.0.1 (the pages' server and the collector) is refused,
to show that neither library needs a CDN or a vendor's service; nothing may fail in the browser.

The libraries send each message in a request of its own (or batch on a timer), so the stored events are compared
by message id, never by the order they were stored in."""

import os
import shutil
import subprocess
from urllib.parse import quote, urlsplit

import pytest

from core import sites
from core.db import write_engine
from tests.helpers.live import wait_for

SDKS = os.path.join(os.path.dirname(__file__), "browser_sdks")


@pytest.fixture(scope="module", autouse=True)
def browser_sdks():
    """The libraries installed from the lock file (scripts/setup does it; else npm ci here, once)."""
    if not os.path.isdir(os.path.join(SDKS, "node_modules", "@rudderstack")):
        subprocess.run([shutil.which("npm"), "ci", "--no-audit", "--no-fund", "--silent"], cwd=SDKS, check=True)


class Browser:
    """A page of a new browser context on a new site of the live collector, which records everything that failed:
    console errors, uncaught errors, failed requests, error answers, and requests to anywhere but 127.0.0.1 (each
    refused)."""

    def __init__(self, collector, server, chromium, name):
        self.collector = collector
        self.server = server
        self.site = sites.create_site(write_engine(collector.engine), name, [server.origin])
        self.context = chromium.new_context()
        self.outside, self.failures = [], []
        self.context.route(lambda url: urlsplit(url).hostname != "127.0.0.1", self._refuse)
        self.page = self.context.new_page()
        self.page.on("console", lambda msg: msg.type == "error" and self.failures.append(f"console: {msg.text}"))
        self.page.on("pageerror", lambda error: self.failures.append(f"uncaught: {error}"))
        self.page.on(
            "requestfailed",
            lambda request: self.failures.append(f"request failed: {request.method} {request.url} {request.failure}"),
        )
        self.page.on(
            "response",
            lambda response: (
                response.status >= 400
                and self.failures.append(f"answer {response.status}: {response.request.method} {response.url}")
            ),
        )

    def _refuse(self, route):
        self.outside.append(route.request.url)
        route.abort()

    def open(self, path, **params):
        query = "&".join(
            f"{name}={quote(value, safe='')}" for name, value in {"key": self.site["write_key"], **params}.items()
        )
        self.page.goto(self.server.url(f"{path}?{query}"))

    def events(self):
        """The site's stored events by message id."""
        return {event["message_id"]: event for event in self.collector.events(self.site["site_id"])}

    def wait_for_events(self, count):
        """The site's stored events by message id, once there are `count`; the page runs meanwhile."""

        def stored():
            events = self.events()
            if len(events) < count:
                self.page.wait_for_timeout(50)  # lets Playwright deliver the page's events in between
                return None
            return events

        try:
            return wait_for(stored, timeout=30, interval=0, message=f"{count} stored events")
        except AssertionError as err:
            raise AssertionError(f"{err}; the page saw {self.failures}, refused {self.outside}") from None

    def close(self):
        self.context.close()


@pytest.fixture
def browser(snippet_collector, page_server, chromium, request):
    helper = Browser(snippet_collector, page_server, chromium, request.node.name)
    yield helper
    helper.close()


@pytest.mark.parametrize("mode", ["standard", "batch"])
def test_segment_analytics_next_delivers_page_track_and_identify(browser, snippet_collector, mode):
    browser.open("/analytics-next.html", api=f"127.0.0.1:{snippet_collector.port}/v1", mode=mode)
    # Each call answers with the context of the message the library made, which holds its messageId.
    sent = browser.page.evaluate("""async () => {
      const ids = [];
      for (const call of [
        () => segment.page("Home", {section: "shop"}),
        () => segment.track("Product Added", {product_id: "p1", price: 19.99, quantity: 2}),
        () => segment.identify("user-42", {email: "ada@example.com", plan: "pro"}),
        () => segment.track("Order Completed", {order_id: "o1", revenue: 39.98, currency: "EUR"}),
      ]) {
        const ctx = await call();
        ids.push(ctx.event.messageId);
      }
      return ids;
    }""")
    events = browser.wait_for_events(4)

    assert set(events) == set(sent)
    page, added, identify, order = (events[message_id] for message_id in sent)
    anonymous_id = browser.page.evaluate("segment.instance.user().anonymousId()")
    assert anonymous_id and {e["anonymous_id"] for e in events.values()} == {anonymous_id}
    assert (page["type"], page["name"], page["user_id"]) == ("page", "Home", None)
    assert page["path"] == "/analytics-next.html" and page["title"] == "Segment analytics.js 2.0"
    assert page["properties"]["section"] == "shop" and page["properties"]["path"] == "/analytics-next.html"
    assert (added["type"], added["event"], added["user_id"]) == ("track", "Product Added", None)
    assert added["properties"] == {"product_id": "p1", "price": 19.99, "quantity": 2}
    assert (identify["type"], identify["user_id"]) == ("identify", "user-42")
    assert identify["traits"] == {"email": "ada@example.com", "plan": "pro"}
    assert (order["event"], order["user_id"]) == ("Order Completed", "user-42")
    assert order["properties"] == {"order_id": "o1", "revenue": 39.98, "currency": "EUR"}
    assert added["context"]["library"]["name"] == "analytics.js"
    assert all(e["browser"] == "HeadlessChrome" for e in events.values())

    assert browser.outside == [] and browser.failures == []
    assert len(snippet_collector.events(browser.site["site_id"])) == 4  # nothing stored twice


@pytest.mark.parametrize(
    "bundle, mode", [("modern", "xhr"), ("legacy", "xhr"), ("modern", "batch"), ("modern", "beacon")]
)
def test_rudderstack_sdk_delivers_page_track_and_identify(browser, snippet_collector, bundle, mode):
    browser.open("/rudderstack.html", api=snippet_collector.url, bundle=bundle, mode=mode)
    browser.page.evaluate("sdkReady")
    browser.page.evaluate("""() => {
      rudder.page("Shop", "Home", {section: "shop"});
      rudder.track("Product Added", {product_id: "p1", price: 19.99, quantity: 2});
      rudder.identify("user-42", {email: "ada@example.com", plan: "pro"});
      rudder.track("Order Completed", {order_id: "o1", revenue: 39.98, currency: "EUR"});
    }""")
    events = list(browser.wait_for_events(4).values())

    by_kind = {(e["type"], e["event"]): e for e in events}
    assert set(by_kind) == {
        ("page", None),
        ("track", "Product Added"),
        ("identify", None),
        ("track", "Order Completed"),
    }
    page, added = by_kind["page", None], by_kind["track", "Product Added"]
    identify, order = by_kind["identify", None], by_kind["track", "Order Completed"]
    anonymous_id = browser.page.evaluate("rudder.getAnonymousId()")
    assert anonymous_id and {e["anonymous_id"] for e in events} == {anonymous_id}
    assert page["name"] == "Home" and page["properties"]["category"] == "Shop"
    assert page["path"] == "/rudderstack.html" and page["properties"]["section"] == "shop"
    assert added["properties"] == {"product_id": "p1", "price": 19.99, "quantity": 2}
    assert not page["user_id"] and not added["user_id"]  # the SDK sends "" before identify
    assert identify["user_id"] == "user-42"
    assert identify["traits"] == {"email": "ada@example.com", "plan": "pro"}  # sent as context.traits
    assert order["user_id"] == "user-42"
    assert order["properties"] == {"order_id": "o1", "revenue": 39.98, "currency": "EUR"}
    assert added["context"]["library"]["name"] == "RudderLabs JavaScript SDK"

    assert browser.outside == [] and browser.failures == []
    assert len(snippet_collector.events(browser.site["site_id"])) == 4
