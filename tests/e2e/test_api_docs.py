"""/api/v1/docs in Chromium with every host but the collector unreachable: ReDoc, served by the collector,
renders the API's operations, and the page asks no other host for anything."""

import os
from urllib.parse import urlsplit

from tests.helpers.live import ROOT, wait_for

OUTPUT = os.path.join(ROOT, "test-output")


def test_api_docs_render_offline_from_the_collector_alone(live_collector, chromium):
    collector = urlsplit(live_collector.url).netloc
    elsewhere = []

    def only_the_collector(route):
        if urlsplit(route.request.url).netloc == collector:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.route("**/*", only_the_collector)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_collector.url + "/api/v1/docs")
    wait_for(
        lambda: "Every segment with its definition" in page.inner_text("body"),
        timeout=30,
        message="ReDoc to render the operations",
    )
    text = page.inner_text("body")
    assert "Segments, members and changes" in text and "Profiles, erasure and access" in text
    assert "/api/v1/segments/{name}/members" in page.content()
    os.makedirs(OUTPUT, exist_ok=True)
    page.screenshot(path=os.path.join(OUTPUT, "api-docs.png"))
    assert elsewhere == [] and errors == []
    context.close()
