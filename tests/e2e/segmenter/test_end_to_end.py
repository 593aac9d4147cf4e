"""End to end: events over HTTP into a real gunicorn collector, a real `cohortly rollup`, the members."""

import json
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests

from segmenter.reads import catalog
from tests.helpers.segmenter import cohortly

BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


def _message(kind, ago, **fields):
    moment = datetime.now(UTC) - ago
    return {"type": kind, "messageId": str(uuid.uuid4()), "timestamp": moment.isoformat(), **fields}


def _send(collector, site, messages, user_agent=BROWSER_UA):
    response = requests.post(
        f"{collector.url}/v1/batch",
        auth=(site["write_key"], ""),
        timeout=10,
        headers={"User-Agent": user_agent},
        json={"batch": messages},
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(messages)


def test_events_over_http_then_a_rollup_give_the_expected_members(live_collector, database_url):
    site = live_collector.create_site()
    minutes, hours = (lambda n: timedelta(minutes=n)), (lambda n: timedelta(hours=n))
    shoe = {"product_id": "shoe-1", "name": "Trail Shoe", "category": "Shoes", "price": 89.5}
    _send(
        live_collector,
        site,
        [
            # a browser: two product views ten minutes ago
            _message("page", minutes(12), anonymousId="browsing", properties={"url": "https://shop.example/"}),
            _message("track", minutes(11), anonymousId="browsing", event="Product Viewed", properties=shoe),
            _message(
                "track",
                minutes(10),
                anonymousId="browsing",
                event="Product Viewed",
                properties={**shoe, "product_id": "hat-2", "name": "Hat", "category": "Hats"},
            ),
            # a cart abandoner who logs in after filling the cart
            _message(
                "track", hours(3), anonymousId="carting", event="Product Added", properties={**shoe, "quantity": 2}
            ),
            _message("identify", hours(2), anonymousId="carting", userId="ann", traits={"email": "ann@example.com"}),
            # a buyer
            _message("track", hours(1), userId="bob", event="Order Completed", properties={"revenue": 42}),
        ],
    )
    _send(
        live_collector,
        site,
        [  # a crawler that views products is no browser
            _message("track", minutes(5), anonymousId="crawler", event="Product Viewed", properties=shoe),
            _message("track", minutes(4), anonymousId="crawler", event="Product Viewed", properties=shoe),
        ],
        user_agent=BOT_UA,
    )
    assert len(live_collector.events(site["site_id"])) == 8

    started = int(time.time() * 1000)
    result = subprocess.run(
        cohortly("rollup", "--json"),
        env=dict(os.environ, COHORTLY_DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[0])
    assert (summary["status"], summary["events_folded"]) == ("done", 8)
    assert summary["now"] >= started

    engine = live_collector.engine

    def ids(segment):
        return {m["profile_id"]: m for m in catalog.segment_members(engine, site["site_id"], segment)}

    assert set(ids("browsers")) == {"a:browsing"}
    assert ids("browsers")["a:browsing"]["context"]["last_product"]["name"] == "Hat"
    abandoner = ids("cart_abandoners")["u:ann"]
    assert (abandoner["user_id"], abandoner["email"]) == ("ann", "ann@example.com")
    assert abandoner["context"]["cart"] == [
        {"product_id": "shoe-1", "name": "Trail Shoe", "url": None, "category": "Shoes", "price": 89.5, "quantity": 2}
    ]
    assert abandoner["context"]["cart_value"] == 179.0
    assert set(ids("new_buyers")) == {"u:bob"}
    assert set(ids("active")) == {"a:browsing", "u:ann", "u:bob"}
    assert catalog.profile(engine, site["site_id"], "crawler") is None
