"""The tracker in headless Chromium against a real collector under gunicorn: what it sends (issue #3).

Events that travel in different requests may be stored in any order (the product promises none), so stored events
are compared as multisets or looked up by what identifies them; an order the tracker promises (replaying its queue
in order) is read from the requests it sent."""

import json
import os
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "js-snippet", "package.json"), encoding="utf-8") as _file:
    VERSION = json.load(_file)["version"]
PAGE_FIELDS = ("path", "url", "title", "referrer", "search")


def test_page_view_on_load_in_segment_format(tracked):
    page = tracked.new_page()
    before = time.time() * 1000
    page.goto(tracked.server.url("/index.html?q=shirts"), referer="https://news.example/")
    (event,) = tracked.wait_for_events(1, type="page")

    url = tracked.server.url("/index.html?q=shirts")
    expected = {
        "path": "/index.html",
        "url": url,
        "title": "Home",
        "referrer": "https://news.example/",
        "search": "?q=shirts",
    }
    assert event["properties"] == expected
    assert event["context"]["page"] == expected
    assert event["context"]["library"] == {"name": "cohortly.js", "version": VERSION}
    assert event["context"]["locale"] == "en-US"
    assert (event["path"], event["url"], event["title"]) == ("/index.html", url, "Home")
    assert event["message_id"] and event["user_id"] is None
    assert page.evaluate("localStorage['cohortly.a']") == event["anonymous_id"]
    assert before - 5000 < event["timestamp"] < time.time() * 1000 + 5000
    # text/plain: a CORS-safelisted type, so the browser sends no preflight.
    assert [status for _ids, status in tracked.answered()] == [200]
    assert tracked.content_types == {"text/plain;charset=UTF-8"}


def test_spa_navigation_sends_one_page_view_per_url(tracked):
    page = tracked.new_page()
    page.goto(tracked.server.url("/spa.html"))
    tracked.wait_for_events(1, type="page")
    page.evaluate("go('/products/1', 'Product 1')")
    page.evaluate("history.replaceState({step: 2}, '', location.href)")  # same URL: no page view
    page.evaluate("history.replaceState({}, '', '/products/1?color=blue')")
    page.evaluate("history.back()")  # popstate, back to /spa.html
    page.wait_for_url("**/spa.html")
    page.evaluate("cohortly.track('Done')")
    tracked.wait_for_event("Done")

    pages = tracked.events(type="page")
    assert Counter((e["path"], e["properties"]["search"]) for e in pages) == Counter(
        [("/spa.html", ""), ("/products/1", ""), ("/products/1", "?color=blue"), ("/spa.html", "")]
    )
    (product,) = [e for e in pages if e["path"] == "/products/1" and e["properties"]["search"] == ""]
    assert product["title"] == "Product 1"
    assert product["properties"]["url"] == tracked.server.url("/products/1")


def test_auto_false_sends_no_automatic_page_views(tracked):
    tracked.use(auto="false")
    page = tracked.new_page()
    page.goto(tracked.server.url("/spa.html"))
    page.wait_for_function("window.cohortly && cohortly.v")
    page.evaluate("go('/next', 'Next')")
    page.evaluate("cohortly.page('Pricing', {plan: 'pro'})")
    page.evaluate("cohortly.track('Done')")
    tracked.wait_for_event("Done")
    (only,) = tracked.events(type="page")
    assert only["name"] == "Pricing"
    assert only["properties"]["plan"] == "pro" and only["properties"]["path"] == "/next"


def test_ecommerce_flow_with_declarative_tags(tracked):
    page = tracked.new_page()
    page.goto(tracked.server.url("/shop.html"))
    page.wait_for_function("window.cohortly && cohortly.v")
    page.click("#add-label")  # inside the tagged button
    page.click("#stopper")  # the page stops propagation; the tracker listens in the capture phase
    page.click("#checkout")  # a tagged link that leaves the page: sent at pagehide
    page.wait_for_url("**/plain.html")
    page.goto(tracked.server.url("/index.html"))
    page.evaluate("""cohortly.track('Order Completed', {order_id: 'o-1', revenue: 39.98, currency: 'EUR',
                     products: [{product_id: '007', price: 19.99, quantity: 2}]})""")
    tracked.wait_for_event("Order Completed")

    # Checkout Started leaves at pagehide, in a request of its own: the events may be stored in any order.
    flow = {e["event"]: e for e in tracked.events(type="track")}
    assert Counter(e["event"] for e in tracked.events(type="track")) == Counter(
        ["Product Viewed", "Product Added", "Stopped Click", "Checkout Started", "Order Completed"]
    )
    viewed, added, checkout, order = (
        flow[name] for name in ("Product Viewed", "Product Added", "Checkout Started", "Order Completed")
    )
    assert viewed["properties"] == {
        "product_id": "007",
        "sku": "SH-1",
        "name": "Blue Shirt",
        "price": 19.99,
        "category": "Shirts",
    }
    # Plain decimals become numbers, except in names ending in id or sku; "007" is not a plain decimal.
    assert added["properties"] == {
        "product_id": "007",
        "sku": "12345",
        "name": "Blue Shirt",
        "price": 19.99,
        "quantity": 2,
        "coupon": "007",
    }
    assert checkout["properties"] == {"value": 39.98, "currency": "EUR"}
    assert checkout["path"] == "/shop.html"
    assert order["properties"]["products"] == [{"product_id": "007", "price": 19.99, "quantity": 2}]
    assert len({e["anonymous_id"] for e in tracked.events()}) == 1


def test_identify_links_the_anonymous_history(tracked):
    page = tracked.new_page()
    page.goto(tracked.server.url("/index.html"))
    page.evaluate("cohortly.track('Before')")
    page.evaluate("cohortly.identify('user-42', {email: 'ada@example.com'})")
    page.evaluate("cohortly.track('After')")
    page.reload()
    page.evaluate("cohortly.track('After reload')")
    tracked.wait_for_event("After reload")

    events = tracked.events()
    anonymous = {e["anonymous_id"] for e in events}
    assert len(anonymous) == 1
    # The reload sends what is queued at pagehide while the new page sends its own: stored in any order.
    assert Counter((e["type"], e["event"], e["user_id"]) for e in events) == Counter(
        [
            ("page", None, None),
            ("track", "Before", None),
            ("identify", None, "user-42"),
            ("track", "After", "user-42"),
            ("page", None, "user-42"),
            ("track", "After reload", "user-42"),
        ]
    )
    (identify,) = tracked.events(type="identify")
    assert identify["traits"] == {"email": "ada@example.com"}

    page.evaluate("cohortly.reset()")
    page.evaluate("cohortly.track('After reset')")
    fresh = tracked.wait_for_event("After reset")
    assert fresh["user_id"] is None and fresh["anonymous_id"] not in anonymous


def test_calls_before_load_are_replayed_in_order(tracked):
    tracked.use(consent="required")
    page = tracked.new_page()
    page.goto(tracked.server.url("/stub.html"))
    tracked.wait_for_event("Late in the queue")
    tracked.wait_for_events(4)
    # The order is the tracker's: the order it sent the messages in (storage keeps none across requests).
    stored = {e["message_id"]: e for e in tracked.events()}
    events = [stored[message_id] for message_id in tracked.sent_in_order()]
    assert [(e["type"], e["event"], e["user_id"]) for e in events] == [
        ("identify", None, "u-1"),
        ("track", "Early", "u-1"),
        ("track", "Late in the queue", "u-1"),
        ("page", None, "u-1"),
    ]
    assert events[0]["traits"] == {"plan": "pro"} and events[1]["properties"] == {"n": 1}
