"""Real `cohortly rollup` processes: two at once never double-count; a SIGKILL loses nothing."""

import json
import os
import signal
import subprocess

import pytest
from sqlalchemy import func, select

from core import sites
from core.schema import Event
from segmenter.reads.catalog import recent_runs
from segmenter.rollup.chunks import run_rollup
from tests.helpers.live import wait_for
from tests.helpers.segmenter import (
    T0,
    change_log,
    cohortly,
    facts,
    members,
    shop_traffic,
    store,
    watermark,
)

NOW = "2026-01-12T12:00:00Z"
NOW_MS = T0 + 7 * 24 * 3600 * 1000
EVENTS = 1000
CHUNK = "20"


@pytest.fixture
def two_sites(engine):
    """The same traffic stored for site "live" (rolled up by processes) and "reference"."""
    live = sites.create_site(engine, "live", [])["site_id"]
    reference = sites.create_site(engine, "reference", [])["site_id"]
    traffic = shop_traffic(EVENTS)
    store(engine, live, traffic)
    store(engine, reference, traffic)
    summary = run_rollup(engine, now=NOW_MS, site_id=reference, chunk_size=int(CHUNK))[0]
    assert summary.status == "done" and summary.events_folded == EVENTS
    return live, reference


def _env(database_url):
    return dict(os.environ, COHORTLY_DATABASE_URL=database_url)


def _rollup(database_url, *extra):
    return subprocess.Popen(
        cohortly("rollup", "--site", "live", "--now", NOW, "--chunk-size", CHUNK, "--json", *extra),
        env=_env(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _max_id(engine, site_id):
    with engine.connect() as conn:
        return conn.scalar(select(func.max(Event.id)).where(Event.site_id == site_id))


def test_two_concurrent_rollups_never_double_count(engine, database_url, two_sites):
    live, reference = two_sites
    first, second = _rollup(database_url), _rollup(database_url)  # both start up at once; one gets the site
    outputs = [json.loads(line) for proc in (first, second) for line in proc.communicate(timeout=120)[0].splitlines()]
    assert [proc.returncode for proc in (first, second)] == [0, 0]
    assert sorted(out["status"] for out in outputs) == ["busy", "done"]
    assert sum(out["events_folded"] for out in outputs) == EVENTS
    assert facts(engine, live, drop=("site_id",)) == facts(engine, reference, drop=("site_id",))
    assert members(engine, live, with_time=True) == members(engine, reference, with_time=True)


def test_a_rollup_killed_mid_way_then_rerun_matches_an_uninterrupted_one(engine, database_url, two_sites):
    live, reference = two_sites
    victim = _rollup(database_url)
    wait_for(lambda: watermark(engine, live) > 0 or victim.poll() is not None, timeout=60, message="a first chunk")
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert 0 < watermark(engine, live) < _max_id(engine, live), "killed too late to be mid-way"
    assert members(engine, live) == {}

    rerun = _rollup(database_url)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert json.loads(out)["status"] == "done"
    assert facts(engine, live, drop=("site_id",)) == facts(engine, reference, drop=("site_id",))
    assert members(engine, live, with_time=True) == members(engine, reference, with_time=True)
    assert change_log(engine, live) == change_log(engine, reference)
    assert [run["status"] for run in recent_runs(engine, live)] == ["done", "interrupted"]
