"""The tracker's privacy rules and its promise never to throw into the page, in headless Chromium. Events sent
in different requests may be stored in any order: they are compared as multisets."""

from collections import Counter

import pytest

from tests.e2e.snippet_fixtures import READ_LOG, stored_keys

SIGNALS = {
    "navigator.doNotTrack": "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
    "window.doNotTrack": "Object.defineProperty(window, 'doNotTrack', {value: '1'})",
    "globalPrivacyControl": "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
}


def control_page_sends(tracked, name):
    """A page with the default settings and no signal, loaded now, gets an event through: a page loaded earlier
    had as much time. Pages loaded after this have the default settings."""
    tracked.use()
    control = tracked.new_page()
    control.goto(tracked.server.url("/index.html"))
    control.evaluate(f"cohortly.track('{name}')")
    return tracked.wait_for_event(name)


@pytest.mark.parametrize("signal", SIGNALS)
def test_do_not_track_and_gpc_send_and_store_nothing(tracked, signal):
    page = tracked.new_page(init_script=SIGNALS[signal])
    page.goto(tracked.server.url("/index.html"))
    page.wait_for_function("window.cohortly && cohortly.v")
    page.evaluate("cohortly.track('Hidden'); cohortly.identify('u-1'); cohortly.page()")
    assert page.evaluate("new Promise((resolve) => cohortly.segments(resolve))") == []
    assert stored_keys(page) == []

    control = control_page_sends(tracked, "Control")
    assert [e["anonymous_id"] for e in tracked.events()] == [control["anonymous_id"]] * 2
    assert page.evaluate(READ_LOG) == []  # not even a request
    assert stored_keys(page) == []

    # An explicit consent is more specific than the browser-wide signal.
    page.evaluate("cohortly.consent(true); cohortly.track('After consent')")
    mine = tracked.wait_for_event("After consent")
    assert sorted(e["type"] for e in tracked.events(anonymous_id=mine["anonymous_id"])) == ["page", "track"]


def test_consent_required_stores_and_sends_nothing_before_consent(tracked):
    tracked.use(consent="required")
    page = tracked.new_page()
    page.goto(tracked.server.url("/index.html"))
    page.wait_for_function("window.cohortly && cohortly.v")
    page.evaluate("cohortly.track('Before'); cohortly.identify('u-1', {email: 'a@example.com'})")
    assert stored_keys(page) == []

    page.evaluate("cohortly.consent(true); cohortly.track('After')")
    tracked.wait_for_event("After")
    assert Counter((e["type"], e["event"], e["user_id"]) for e in tracked.events()) == Counter(
        [("page", None, None), ("track", "After", None)]
    )
    assert page.evaluate("localStorage['cohortly.c']") == "1"

    page.reload()  # the consent is remembered
    tracked.wait_for_events(2, type="page")

    page.evaluate("cohortly.consent(false)")  # withdrawn: everything stored is forgotten
    assert stored_keys(page) == ["cohortly.c"]
    assert page.evaluate("localStorage['cohortly.c']") == "0"
    page.evaluate("cohortly.track('Refused')")
    page.reload()
    page.evaluate("cohortly.track('Refused after reload')")
    control = control_page_sends(tracked, "Control")
    assert Counter(
        (e["type"], e["event"]) for e in tracked.events() if e["anonymous_id"] != control["anonymous_id"]
    ) == Counter([("page", None), ("track", "After"), ("page", None)])


def test_opt_out_persists(tracked):
    page = tracked.new_page()
    page.goto(tracked.server.url("/index.html"))
    first = tracked.wait_for_events(1, type="page")[0]
    page.evaluate("cohortly.optOut(); cohortly.track('Ignored')")
    assert stored_keys(page) == ["cohortly.c"]
    page.reload()
    page.evaluate("cohortly.track('Ignored after reload')")
    assert stored_keys(page) == ["cohortly.c"]

    page.evaluate("cohortly.consent(true); cohortly.track('Back')")  # only an explicit consent lifts it
    back = tracked.wait_for_event("Back")
    assert Counter((e["type"], e["event"]) for e in tracked.events()) == Counter(
        [("page", None), ("page", None), ("track", "Back")]
    )
    assert back["anonymous_id"] != first["anonymous_id"]  # the old id was forgotten


def test_never_throws_into_the_page(tracked):
    page = tracked.new_page()
    page.goto(tracked.server.url("/index.html"))
    page.wait_for_function("window.cohortly && cohortly.v")
    page.evaluate("""() => {
        const circular = {};
        circular.self = circular;
        cohortly.track('Circular', circular);
        cohortly.track('Big', {n: 10n});
        cohortly.page(null, 5);
        cohortly.identify();
        cohortly.q.push(['nosuchmethod', []]);
    }""")
    # The page's own errors still reach the page.
    assert (
        page.evaluate("""() => { try { history.pushState({}, '', 'https://other.example/'); }
                                    catch (e) { return e.name; } }""")
        == "SecurityError"
    )
    page.evaluate("cohortly.track('Fine')")
    tracked.wait_for_event("Fine")
    assert not tracked.events(event="Circular") and not tracked.events(event="Big")


def test_blocked_storage_leaves_the_tracker_off_quietly(tracked):
    blocked = (
        "Object.defineProperty(window, 'localStorage', {get() { throw new DOMException('no', 'SecurityError'); }})"
    )
    page = tracked.new_page(init_script=blocked)
    page.goto(tracked.server.url("/index.html"))
    page.wait_for_load_state("load")
    page.evaluate("cohortly.track('Nowhere'); cohortly.identify('u-1'); cohortly.optOut()")
    assert page.evaluate("window.cohortly.v") is None
    control_page_sends(tracked, "Control")
    assert not tracked.events(event="Nowhere")
