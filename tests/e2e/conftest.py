"""Fixtures of the browser tests. Chromium and the test pages' server are started once for the whole run (one
Playwright instance: two may not run at once); the tracker's tests of a module share one live collector, each test
on a site of its own, so that a test pays for no gunicorn start of its own."""

import pytest

from tests.conftest import fresh_database
from tests.e2e.snippet_fixtures import CHROMIUM, CHROMIUM_ARGS, PageServer, Tracked
from tests.helpers.live import LiveCollector


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium under Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def page_server():
    """The test pages served by a threaded http.server on a free port."""
    server = PageServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def snippet_collector(template_url, tmp_path_factory):
    """A real collector under gunicorn (2 workers) shared by a module's tracker tests; stopped after the module."""
    directory = tmp_path_factory.mktemp("snippet-collector")
    server = LiveCollector(fresh_database(template_url, directory), directory / "gunicorn.log")
    server.start()
    yield server
    server.close()


@pytest.fixture
def tracked(snippet_collector, page_server, chromium, request):
    """A new site, named after the test, whose test pages load the tracker from the module's collector, and
    browser pages to drive them."""
    if snippet_collector.process is None:  # an earlier test stopped it and failed before starting it again
        snippet_collector.start()
    helper = Tracked(snippet_collector, page_server, chromium, name=request.node.name)
    yield helper
    helper.close()
    assert not helper.errors, f"the pages saw errors: {helper.errors}"
