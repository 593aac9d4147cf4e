"""cohortly.segments(callback) in headless Chromium: a visitor's segments from the live collector after a rollup
(issue #5)."""

import time

from segmenter.rollup.chunks import run_rollup

ASK = "() => new Promise((resolve) => cohortly.segments(resolve))"


def is_segments(response):
    return "/v1/segments/me?" in response.url


def test_a_visitor_who_viewed_two_products_gets_active_and_browsers(tracked):
    page = tracked.new_page()
    page.goto(tracked.server.url("/product.html?id=p-1"))
    page.goto(tracked.server.url("/product.html?id=p-2"))  # the first page's events leave at pagehide
    tracked.wait_for_events(2, event="Product Viewed")
    anonymous_id = page.evaluate("localStorage['cohortly.a']")
    assert {e["anonymous_id"] for e in tracked.events()} == {anonymous_id}

    assert page.evaluate(ASK) == []  # the collector has the events, but no rollup has judged them yet
    (summary,) = run_rollup(
        tracked.collector.engine, now=int(time.time() * 1000) + 1000, site_id=tracked.site["site_id"]
    )
    assert summary.status == "done", summary.error

    with page.expect_response(is_segments) as answer:
        names = page.evaluate(ASK)
    assert names == ["active", "browsers"]
    response = answer.value
    assert response.status == 200
    assert f"anonymousId={anonymous_id}" in response.url and f"writeKey={tracked.site['write_key']}" in response.url
    assert response.headers["access-control-allow-origin"] == tracked.server.origin

    # The README's example, called through the stub before the tracker loaded: the offer shows.
    page.goto(tracked.server.url("/offer.html"))
    page.wait_for_selector("#offer", state="visible")
    assert page.evaluate("window.segmentsSeen") == ["active", "browsers"]


def test_a_visitor_unknown_to_the_collector_gets_none(tracked):
    tracked.use(auto="false")  # sends nothing: the collector never hears of this visitor
    page = tracked.new_page(init_script="localStorage['cohortly.a'] ||= '1-2-3-4'")
    page.goto(tracked.server.url("/offer.html"))
    page.wait_for_function("window.segmentsSeen")
    assert page.evaluate("window.segmentsSeen") == []
    assert page.is_hidden("#offer")

    with page.expect_response(is_segments) as answer:  # asked, and answered by the collector
        assert page.evaluate(ASK) == []
    assert answer.value.status == 200 and answer.value.json() == {"segments": []}
    assert tracked.events() == []


def test_a_new_visitor_gets_none_without_a_request(tracked):
    tracked.use(auto="false")
    page = tracked.new_page()
    requested = []
    page.on("request", lambda r: "/v1/segments/me" in r.url and requested.append(r.url))
    page.goto(tracked.server.url("/offer.html"))
    page.wait_for_function("window.segmentsSeen")
    assert page.evaluate("[window.segmentsSeen, localStorage['cohortly.a']]") == [[], None]
    assert requested == []
