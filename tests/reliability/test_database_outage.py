"""The database goes away mid-load and comes back: 503s while it is gone, then everything stored once.

PostgreSQL is taken away through a TCP proxy (the machine's server keeps running); SQLite through an
exclusive lock held by another connection.
"""

from tests.helpers.live import wait_for
from tests.reliability.helpers import assert_all_stored_exactly_once


def test_database_outage_mid_load_gives_503_then_stores_everything(outage, start_load):
    collector, cut, restore = outage
    site = collector.create_site()
    collector.start()
    background = start_load(collector, site["write_key"], "outage", seconds=60)
    wait_for(lambda: background.count(200) >= 300, timeout=30, message="load before the outage")

    cut()
    try:
        wait_for(lambda: background.count(503) >= 30, timeout=30, message="503s while the database is away")
    finally:
        restore()
    answered_before = background.count(200)
    wait_for(lambda: background.count(200) >= answered_before + 300, timeout=30, message="load after the outage")
    background.finish()

    assert background.count(503) >= 30
    assert_all_stored_exactly_once(background, site["site_id"], allowed=(200, 429, 503))
