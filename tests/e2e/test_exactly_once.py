"""Retries that race on two gunicorn workers still store each message once."""

from concurrent.futures import ThreadPoolExecutor

import requests


def test_racing_retries_store_each_message_once(live_collector):
    site = live_collector.create_site()
    for round_ in range(3):
        batch = [
            {"type": "track", "event": "Product Viewed", "anonymousId": f"a{i}", "messageId": f"r{round_}-{i}"}
            for i in range(100)
        ]

        def send(_, batch=batch):
            with requests.Session() as session:  # a connection each, so both workers take part
                return session.post(
                    f"{live_collector.url}/v1/batch", json={"batch": batch}, auth=(site["write_key"], ""), timeout=30
                ).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(send, range(16)))
        assert statuses == [200] * 16
    message_ids = [row["message_id"] for row in live_collector.events(site["site_id"])]
    assert len(message_ids) == 300
    assert len(set(message_ids)) == 300
