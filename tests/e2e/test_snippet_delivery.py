"""The tracker's delivery in headless Chromium against a real collector: outages, retries, rejections, tabs."""

import json
import time

import pytest

from tests.e2e.snippet_fixtures import stored_keys

# Math.random for pages that retry while the collector restarts: backoffs of 0.2, 0.4, 0.8 ... s instead of up to
# 2, 4, 8 ... s, so that the retry after the restart comes soon. What is sent, and how often, is the same.
QUICK = 0.1
# Seconds to wait for events held through an outage once the collector is back: a tab that kept failing while
# the collector restarted waits up to 256 s x QUICK before its next try, and a busy machine adds to that.
AFTER_OUTAGE = 60
LEASE = 120  # seconds a tab's stored queue is its own (js-snippet/src/queue.js)


def queued_in(page, key):
    """The messages stored under localStorage `key`."""
    return page.evaluate("(key) => JSON.parse(localStorage[key] || '{\"q\": []}').q", key)


def own_queue(page):
    """The messages in this tab's stored queue."""
    return page.evaluate("""Object.keys(localStorage).filter(k => k.startsWith('cohortly.q.'))
                            .flatMap(k => JSON.parse(localStorage[k]).q)""")


def sent_once(tracked, events):
    """Every stored event's message went out in exactly one answered request."""
    counts = {e["message_id"]: tracked.times_sent(e["message_id"]) for e in events}
    assert set(counts.values()) == {1}, "\n".join(map(str, [counts, *tracked.requests()]))


@pytest.mark.parametrize("src", ["collector", "first-party"])
def test_outage_and_reload_lose_nothing_and_send_once(tracked, src):
    # first-party: the site serves c.js itself and points data-api at the collector, so the script loads while
    # the collector is down; from the collector, the reloaded page may have no tracker until the next load.
    if src == "first-party":
        tracked.use(src=tracked.server.url("/c.js"), api=tracked.collector.url)
    page = tracked.new_page(jitter=QUICK)
    page.goto(tracked.server.url("/index.html"))
    tracked.wait_for_events(1, type="page")

    tracked.collector.stop()
    page.evaluate("cohortly.track('During outage 1'); cohortly.track('During outage 2')")
    tracked.poll(lambda: tracked.failed(), message="a failed request")
    page.reload()
    if src == "first-party":
        page.evaluate("cohortly.track('After reload')")
        failures = len(tracked.failed())
        tracked.poll(lambda: len(tracked.failed()) > failures, message="a failed request after the reload")
    tracked.collector.start()
    if src == "collector":
        page.reload()
        page.evaluate("cohortly.track('After reload')")

    names = ["During outage 1", "During outage 2", "After reload"]
    tracked.poll(
        lambda: all(tracked.events(event=name) for name in names),
        timeout=AFTER_OUTAGE,
        message="every event after the outage",
    )
    page.evaluate("cohortly.track('Barrier')")
    tracked.wait_for_event("Barrier")
    events = tracked.events()
    assert sorted(e["event"] for e in events if e["type"] == "track") == sorted(names + ["Barrier"])
    assert len({e["message_id"] for e in events}) == len(events)
    sent_once(tracked, events)
    assert own_queue(page) == []


def fulfil_first(tracked, page, status, headers=None, body=None):
    """Answer the first /v1/batch request with `status` (CORS headers as the collector sends them), let the rest
    through; return the attempts as (time, batch)."""
    attempts = []

    def handle(route):
        attempts.append((time.monotonic(), json.loads(route.request.post_data)["batch"]))
        if len(attempts) > 1:
            return route.continue_()
        cors = {"Access-Control-Allow-Origin": tracked.server.origin, "Access-Control-Expose-Headers": "Retry-After"}
        route.fulfill(
            status=status,
            headers={**cors, **(headers or {})},
            content_type="application/json",
            body=json.dumps(body or {"error": {"code": "test", "message": "from the test"}}),
        )

    page.route("**/v1/batch*", handle)
    return attempts


@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_is_honoured(tracked, status):
    tracked.use(auto="false")
    page = tracked.new_page(jitter=0)  # the backoff alone would retry at the next flush, within 200 ms
    page.goto(tracked.server.url("/index.html"))
    attempts = fulfil_first(tracked, page, status, {"Retry-After": "1"})
    page.evaluate("cohortly.track('Delayed')")
    event = tracked.wait_for_event("Delayed")
    assert len(attempts) == 2
    assert 0.8 <= attempts[1][0] - attempts[0][0] < 3
    assert attempts[0][1] == attempts[1][1]
    assert event["message_id"] == attempts[0][1][0]["messageId"]


def test_server_error_is_retried_with_backoff(tracked):
    tracked.use(auto="false")
    page = tracked.new_page(jitter=0.25)  # after one failure: 0.25 of 2 s
    page.goto(tracked.server.url("/index.html"))
    attempts = fulfil_first(tracked, page, 500)
    page.evaluate("cohortly.track('Retried')")
    tracked.wait_for_event("Retried")
    assert len(attempts) == 2 and attempts[0][1] == attempts[1][1]
    # Not at the next flush (200 ms) but after the backoff; the retry goes at the first flush after it.
    assert 0.4 <= attempts[1][0] - attempts[0][0] < 2


def test_invalid_message_is_not_retried(tracked):
    tracked.use(auto="false")
    page = tracked.new_page()
    page.goto(tracked.server.url("/index.html"))
    page.wait_for_function("window.cohortly && cohortly.v")
    page.evaluate("cohortly.track(); cohortly.track('Valid')")  # a track without an event name is invalid
    tracked.wait_for_event("Valid")
    page.evaluate("cohortly.track('Later')")
    tracked.wait_for_event("Later")

    (bad,) = tracked.collector.bad_rows(tracked.site["site_id"])
    (first_ids, status), *_ = tracked.answered()
    invalid = [mid for mid in first_ids if not tracked.events(message_id=mid)]
    assert status == 200 and len(invalid) == 1
    assert bad["reason"]["code"] == "invalid_message" and invalid[0] in bad["payload"]
    assert tracked.times_sent(invalid[0]) == 1  # while later batches went out
    assert len(tracked.events()) == 2 and own_queue(page) == []


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_request_refused_as_a_whole_is_dropped(tracked, status):
    tracked.use(auto="false")
    page = tracked.new_page()
    page.goto(tracked.server.url("/index.html"))
    attempts = fulfil_first(tracked, page, status)
    page.evaluate("cohortly.track('Refused')")
    tracked.poll(lambda: attempts, message="the refused request")
    page.evaluate("cohortly.track('Later')")
    tracked.wait_for_event("Later")
    assert not tracked.events(event="Refused")
    refused = attempts[0][1][0]["messageId"]
    assert [m["messageId"] for _t, batch in attempts for m in batch].count(refused) == 1


def test_two_tabs_never_send_the_same_event(tracked):
    first = tracked.new_page(jitter=QUICK)
    first.goto(tracked.server.url("/index.html"))
    second = tracked.open_in(first.context)
    second.goto(tracked.server.url("/index.html"))
    tracked.wait_for_events(2, type="page")

    tracked.collector.stop()
    for page, name in ((first, "One"), (second, "Two")):
        page.evaluate(f"for (let i = 0; i < 5; i++) cohortly.track('{name}', {{i}})")
    tracked.poll(
        lambda: len({mid for ids in tracked.failed() for mid in ids}) >= 10,
        message="failed requests for all ten events, from both tabs",
    )
    tracked.collector.start()
    tracked.wait_for_events(5, event="One", timeout=AFTER_OUTAGE)
    tracked.wait_for_events(5, event="Two", timeout=AFTER_OUTAGE)
    first.evaluate("cohortly.track('Barrier')")
    second.evaluate("cohortly.track('Barrier')")
    tracked.wait_for_events(2, event="Barrier")
    events = tracked.events()
    assert len(events) == 14
    sent_once(tracked, events)


def test_closed_tabs_events_are_sent_by_another_tab(tracked):
    stays = tracked.new_page(jitter=QUICK)
    stays.goto(tracked.server.url("/index.html"))
    closes = tracked.open_in(stays.context)
    closes.goto(tracked.server.url("/index.html"))
    tracked.wait_for_events(2, type="page")

    tracked.collector.stop()
    closes.evaluate("cohortly.track('From the closed tab')")
    tracked.poll(lambda: tracked.failed(), message="a failed request")
    (key,) = [k for k in stored_keys(closes) if k.startswith("cohortly.q.") and queued_in(closes, k)]
    closes.close(run_before_unload=True)  # pagehide: the failing tab releases its queue
    # The staying tab adopts the released queue (at once; had pagehide not run, once the lease ran out).
    tracked.poll(lambda: key not in stored_keys(stays), timeout=LEASE + 30, message="the closed tab's queue adopted")
    tracked.collector.start()
    event = tracked.wait_for_event("From the closed tab", timeout=AFTER_OUTAGE)
    assert tracked.times_sent(event["message_id"]) == 1


def test_expired_lease_is_adopted_and_live_one_is_not(tracked):
    tracked.use(auto="false")
    page = tracked.new_page()
    page.goto(tracked.server.url("/plain.html"))
    # Queues of two other tabs: one crashed a while ago (lease expired), one alive (lease in the future).
    page.evaluate("""() => {
        const message = (event) => ({type: 'track', event, anonymousId: 'a-1', messageId: 'm-' + event,
                                     timestamp: new Date().toISOString(), properties: {}});
        localStorage['cohortly.q.crashed'] = JSON.stringify({t: Date.now() - 1000, q: [message('Orphan')]});
        localStorage['cohortly.q.alive'] = JSON.stringify({t: Date.now() + 600000, q: [message('Owned')]});
    }""")
    page.goto(tracked.server.url("/index.html"))
    page.evaluate("cohortly.track('Mine')")
    tracked.wait_for_event("Mine")
    tracked.wait_for_event("Orphan")
    assert not tracked.events(event="Owned")
    assert sorted(stored_keys(page)) == ["cohortly.a", "cohortly.q.alive"]


def test_queue_is_bounded_oldest_dropped(tracked):
    tracked.use(interval="600000", batch="100000")  # nothing flushes: the queue only grows
    page = tracked.new_page()
    page.goto(tracked.server.url("/index.html"))
    page.wait_for_function("window.cohortly && cohortly.v")
    page.evaluate("for (let i = 0; i < 520; i++) cohortly.track('Event', {i})")
    queue = own_queue(page)
    assert len(queue) == 500
    assert [m["properties"]["i"] for m in queue] == list(range(20, 520))


def test_events_queued_at_pagehide_arrive(tracked):
    tracked.use(interval="600000")  # no timer: only pagehide sends
    page = tracked.new_page()
    page.goto(tracked.server.url("/index.html"))
    page.evaluate("cohortly.track('Leaving', {reason: 'navigation'})")
    page.goto(tracked.server.url("/plain.html"))
    left = tracked.wait_for_event("Leaving")
    assert left["properties"] == {"reason": "navigation"}

    page = tracked.new_page()
    page.goto(tracked.server.url("/index.html"))
    page.evaluate("cohortly.track('Closing')")
    page.close(run_before_unload=True)
    tracked.wait_for_event("Closing")
    assert len(tracked.events(type="page")) == 2
