"""The collector is SIGKILLed mid-load and started again while retrying clients keep sending:
nothing is lost and nothing is stored twice (a batch committed but never answered is sent again)."""

import signal

from tests.helpers.live import wait_for
from tests.reliability.helpers import assert_all_stored_exactly_once


def test_kill_and_restart_mid_load_loses_nothing(collector, start_load):
    site = collector.create_site()
    collector.start()
    background = start_load(collector, site["write_key"], "kill", seconds=60)
    wait_for(lambda: background.count(200) >= 300, timeout=30, message="load before the kill")

    collector.stop(signal.SIGKILL)  # master and workers at once, requests in flight
    wait_for(lambda: background.count(0) >= 8, timeout=15, message="clients to see the collector gone")
    answered_before = background.count(200)
    collector.start()
    wait_for(lambda: background.count(200) >= answered_before + 300, timeout=30, message="load after the restart")
    background.finish()

    assert_all_stored_exactly_once(background, site["site_id"], allowed=(200, 0))
