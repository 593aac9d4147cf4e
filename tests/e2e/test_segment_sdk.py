"""The real Segment Python SDK, pointed at a real collector under gunicorn, works unchanged."""

import requests
from segment.analytics.client import Client


def send_everything(client):
    client.identify("user-1", {"email": "ann@example.com"}, anonymous_id="anon-1", message_id="m-identify")
    client.page(
        "user-1",
        name="Home",
        properties={"url": "http://shop.example/?utm_source=news"},
        anonymous_id="anon-1",
        message_id="m-page",
    )
    client.track("user-1", "Product Viewed", {"product_id": "p1", "name": "Shoe", "price": 50}, message_id="m-viewed")
    client.track("user-1", "Product Added", {"product_id": "p1", "quantity": 1, "price": 50}, message_id="m-added")
    client.track("user-1", "Checkout Started", {"value": 50, "currency": "EUR"}, message_id="m-checkout")
    client.track("user-1", "Order Completed", {"order_id": "o1", "revenue": 50}, message_id="m-order")
    client.alias("anon-1", "user-1", message_id="m-alias")
    client.group("user-1", "acme", {"name": "ACME"}, message_id="m-group")
    client.screen("user-1", name="Cart", message_id="m-screen")
    client.flush()


def test_segment_python_sdk_stores_exactly_its_events(live_collector):
    site = live_collector.create_site()
    errors = []
    client = Client(
        site["write_key"],
        host=live_collector.url,
        sync_mode=True,
        max_retries=1,
        on_error=lambda error, batch: errors.append(error),
    )
    send_everything(client)
    assert errors == []
    rows = live_collector.events(site["site_id"])
    assert {row["message_id"]: (row["type"], row["event"]) for row in rows} == {
        "m-identify": ("identify", None),
        "m-page": ("page", None),
        "m-viewed": ("track", "Product Viewed"),
        "m-added": ("track", "Product Added"),
        "m-checkout": ("track", "Checkout Started"),
        "m-order": ("track", "Order Completed"),
        "m-alias": ("alias", None),
        "m-group": ("group", None),
        "m-screen": ("screen", None),
    }
    by_id = {row["message_id"]: row for row in rows}
    assert by_id["m-identify"]["traits"] == {"email": "ann@example.com"}
    assert by_id["m-identify"]["anonymous_id"] == "anon-1"
    assert by_id["m-page"]["utm_source"] == "news"
    assert by_id["m-order"]["properties"] == {"order_id": "o1", "revenue": 50}
    assert by_id["m-alias"]["previous_id"] == "anon-1"
    assert by_id["m-group"]["group_id"] == "acme"
    assert by_id["m-viewed"]["context"]["library"]["name"] == "analytics-python"

    send_everything(client)  # the SDK retrying: same message ids, nothing new
    assert len(live_collector.events(site["site_id"])) == len(rows)


def test_sdk_with_gzip_and_a_background_queue(live_collector):
    site = live_collector.create_site()
    client = Client(site["write_key"], host=live_collector.url, gzip=True, max_retries=1)
    for i in range(50):
        client.track(f"user-{i % 5}", "Product Viewed", {"product_id": f"p{i}"}, message_id=f"q-{i}")
    client.flush()
    client.join()
    live_collector.wait_for(lambda: len(live_collector.events(site["site_id"])) == 50, message="50 events")
    assert requests.get(live_collector.url + "/healthz", timeout=5).json() == {"status": "ok"}
