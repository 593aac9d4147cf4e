"""The tracker and the collector agree: a real Chromium that sends DNT or GPC headers gets nothing stored,
even where the page's script does not see the signal (as with any third-party SDK)."""

import pytest

from tests.e2e.snippet_fixtures import FETCH_LOG


@pytest.mark.parametrize("header", [{"DNT": "1"}, {"Sec-GPC": "1"}], ids=["DNT", "Sec-GPC"])
def test_dnt_or_gpc_headers_store_nothing(tracked, header):
    context = tracked.browser.new_context(extra_http_headers=header)
    tracked.contexts.append(context)
    context.add_init_script(FETCH_LOG)
    page = tracked.open_in(context)
    page.goto(tracked.server.url("/index.html"))
    page.wait_for_function("window.cohortly && cohortly.v")
    page.evaluate("cohortly.track('Product Viewed', {product_id: 'p1'}); cohortly.identify('u-dnt')")
    # The script sent its batches (it cannot see the header) and the collector answered each with a 200 ...
    answered = tracked.poll(lambda: [status for _ids, status in tracked.answered()], message="the batches answered")
    assert set(answered) == {200}
    control = tracked.new_page()  # ... and a browser without the signal, loaded after it, is stored.
    control.goto(tracked.server.url("/index.html"))
    control.evaluate("cohortly.track('Control')")
    stored = tracked.wait_for_event("Control")
    assert {e["anonymous_id"] for e in tracked.events()} == {stored["anonymous_id"]}
    assert not tracked.events(user_id="u-dnt")
