"""Privacy against a real collector under gunicorn: a purge under concurrent ingestion loses no new event, and no raw IP
reaches any table or the log (the rest: tests/integration/segmenter/test_privacy.py)."""

import threading

import pytest
import requests

from segmenter import privacy
from segmenter.reads.catalog import configure_site
from segmenter.rollup.chunks import run_rollup
from segmenter.rules.definitions import DAY
from tests.helpers.segmenter import T0, rows_naming, store, track


def test_purge_under_concurrent_ingestion_loses_no_new_event(live_collector):
    site = live_collector.create_site()
    engine = live_collector.engine
    store(engine, site["site_id"], [track("Page", at=T0 - 400 * DAY + i, anon=f"old-{i}") for i in range(3000)])
    run_rollup(engine, now=T0, site_id=site["site_id"])
    configure_site(engine, site["site_id"], {"retention_days": "30"})
    sent, stop = [], threading.Event()

    def ingest():
        with requests.Session() as session:
            for n in range(2000):
                if stop.is_set() and n > 50:
                    return
                ids = [f"new-{n}-{k}" for k in range(5)]
                answer = session.post(
                    f"{live_collector.url}/v1/batch",
                    auth=(site["write_key"], ""),
                    timeout=30,
                    json={"batch": [{"type": "track", "event": "E", "anonymousId": "x", "messageId": i} for i in ids]},
                )
                assert answer.status_code == 200
                sent.extend(ids)

    writer = threading.Thread(target=ingest)
    writer.start()
    purged = privacy.purge_events(engine, site["site_id"], T0, batch=100)
    stop.set()
    writer.join(timeout=120)
    assert purged == 3000
    stored = {row["message_id"] for row in live_collector.events(site["site_id"])}
    assert len(sent) >= 250 and set(sent) <= stored
    assert not any(mid.startswith("m-") for mid in stored)


@pytest.mark.parametrize("ip", ["203.0.113.77", "2001:db8:85a3:8d3:1319:8a2e:370:7348"])
def test_no_raw_ip_in_any_table_or_log(live_collector, ip):
    site = live_collector.create_site()
    response = requests.post(
        f"{live_collector.url}/v1/batch",
        auth=(site["write_key"], ""),
        timeout=10,
        json={
            "batch": [
                {"type": "track", "event": "E", "anonymousId": "a", "context": {"ip": ip}},
                {"type": "track", "anonymousId": "a", "context": {"ip": ip}},
            ]
        },
    )  # the second is a bad row
    assert response.json()["accepted"] == 1
    [row] = live_collector.events(site["site_id"])
    assert row["ip"] and row["ip"] != ip
    bad = live_collector.bad_rows(site["site_id"])
    assert len(bad) == 1
    found = rows_naming(live_collector.engine, (ip,))
    assert found == {}, found
    with open(live_collector.log_path, encoding="utf-8", errors="replace") as log:
        assert ip not in log.read()
