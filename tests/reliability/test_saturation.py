"""A collector held at saturation: only 2xx, 429 and 503, and every message sent is stored exactly once."""

from tests.reliability.helpers import SATURATION_SECONDS, assert_all_stored_exactly_once


def test_saturation_loses_nothing_and_stores_nothing_twice(collector, start_load):
    site = collector.create_site()
    collector.start()
    # 16 connections against 2 workers x 4 threads: requests queue, so the collector runs flat out.
    background = start_load(collector, site["write_key"], "sat", SATURATION_SECONDS, concurrency=16)
    outcome = background.finish(timeout=SATURATION_SECONDS + 90, stop=False)

    assert outcome.elapsed >= SATURATION_SECONDS
    assert background.count(200) >= 20 * SATURATION_SECONDS  # far below what it does; proves the load ran
    assert_all_stored_exactly_once(background, site["site_id"])
