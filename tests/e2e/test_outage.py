"""The database goes away under a running collector: 503 + Retry-After, and no 2xx without a stored row."""

import itertools
import os

import pytest
import requests
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from tests.conftest import BACKEND
from tests.helpers.live import LiveCollector, wait_for
from tests.helpers.tcp_proxy import TcpProxy


class Sender:
    """Sends one-message batches with fresh ids and remembers what each got."""

    def __init__(self, url, write_key):
        self.url = url
        self.write_key = write_key
        self.ids = itertools.count()
        self.answers = {}

    def send(self):
        message_id = f"m-{next(self.ids)}"
        try:
            response = requests.post(
                f"{self.url}/v1/batch",
                auth=(self.write_key, ""),
                timeout=10,
                json={
                    "batch": [{"type": "track", "event": "Product Viewed", "anonymousId": "a", "messageId": message_id}]
                },
            )
        except requests.RequestException:
            self.answers[message_id] = None
            return None
        self.answers[message_id] = response
        return response

    def acknowledged(self):
        return {mid for mid, response in self.answers.items() if response is not None and response.ok}


@pytest.fixture
def outage(database_url, tmp_path):
    """(collector, cut, restore): a collector whose database a test can take away and give back."""
    if BACKEND == "postgresql":
        url = make_url(database_url)
        proxy = TcpProxy(url.host, url.port or 5432)
        proxy.start()
        through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        collector = LiveCollector(through_proxy, tmp_path / "gunicorn.log", env={"COHORTLY_SITE_CACHE_SECONDS": "0"})
        cut, restore = proxy.stop, proxy.start
    else:
        # SQLite has no server to stop: an exclusive lock held elsewhere makes it unwritable.
        path = make_url(database_url).database
        holder = create_engine(f"sqlite:///{path}", isolation_level="AUTOCOMMIT")
        conn = holder.connect()
        collector = LiveCollector(database_url, tmp_path / "gunicorn.log", env={"COHORTLY_SQLITE_TIMEOUT": "0.3"})

        def cut():
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
            conn.exec_driver_sql(
                "INSERT INTO sites (name, write_key, api_key_hash, origins, settings, created_at) "
                "VALUES ('lock', 'lock', 'lock', '[]', '{}', 0)"
            )

        def restore():
            conn.exec_driver_sql("ROLLBACK")

        proxy = None
    site = collector.create_site()
    collector.start()
    yield collector, site, cut, restore
    collector.close()
    if proxy:
        proxy.stop()
    else:
        conn.close()
        holder.dispose()


def test_database_outage_gives_503_then_recovers_without_loss(outage):
    collector, site, cut, restore = outage
    sender = Sender(collector.url, site["write_key"])
    assert all(sender.send().status_code == 200 for _ in range(10))

    cut()
    during = [sender.send() for _ in range(20)]
    unavailable = [r for r in during if r is not None and r.status_code == 503]
    # A request already in flight on a connection may still commit; what matters is that the outage answers
    # 503 and that no 2xx goes without its row (checked below).
    assert len(unavailable) >= 10, [r.status_code if r is not None else None for r in during]
    assert all(r.headers.get("Retry-After") for r in unavailable)
    assert all(r.json()["error"]["code"] == "unavailable" for r in unavailable)
    assert all(r.status_code in (200, 503) for r in during if r is not None)

    restore()
    wait_for(lambda: sender.send().status_code == 200, timeout=30, message="the collector to recover")
    assert all(sender.send().status_code == 200 for _ in range(10))

    stored = {row["message_id"] for row in collector.events(site["site_id"])}
    assert sender.acknowledged() <= stored  # no 2xx without a stored row
    refused = {mid for mid, r in sender.answers.items() if r is not None and r.status_code == 503}
    assert not refused & stored  # nothing half-written from a refused request
    assert os.path.exists(collector.log_path)
