"""`cohortly rollup --every` as a real process: it loops until SIGINT, then stops cleanly (the commands in-process:
tests/integration/segmenter/test_cli.py)."""

import json

import pytest

from segmenter.reads import catalog
from tests.helpers.segmenter import T0, page, track
from tests.helpers.segmenter import store as store_events


@pytest.fixture
def shop(engine, site):
    """(As in tests/integration/segmenter/test_cli.py.) The test site with a cart abandoner's and a visitor's events."""
    store_events(
        engine,
        site["site_id"],
        [
            track("Product Added", at=T0, anon="carting", product_id="p", name="Hat", price=5),
            page(at=T0, anon="visiting"),
        ],
    )
    return site


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_every_loops_until_interrupted(database_url, engine, shop, stop):
    import os
    import signal
    import subprocess
    import sys

    from tests.helpers.live import wait_for
    from tests.helpers.segmenter import cohortly

    loop = subprocess.Popen(
        cohortly("rollup", "--every", "0.1", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, COHORTLY_DATABASE_URL=database_url),
        # A shell without job control starts background jobs with SIGINT ignored, and Python then leaves it
        # ignored: run the loop as a terminal would, with SIGINT at its default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_for(lambda: _done(engine, shop) >= 3 or loop.poll() is not None, timeout=60, message="three runs")
    finally:
        loop.send_signal(getattr(signal, stop))
        try:
            out, err = loop.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            stacks = subprocess.run(
                [os.path.join(os.path.dirname(sys.executable), "py-spy"), "dump", "--pid", str(loop.pid)],
                capture_output=True,
                text=True,
            ).stdout
            loop.kill()
            loop.communicate()
            raise AssertionError(
                f"`cohortly rollup --every` did not stop on {stop} within 30 s; its stacks:\n{stacks}"
            ) from None
    assert loop.returncode == 0, err
    assert "Traceback" not in err and err.rstrip().endswith("Stopped.")
    folded = [json.loads(line)["events_folded"] for line in out.splitlines()]
    assert folded[0] == 2 and sum(folded) == 2 and len(folded) >= 2  # the third may be cut short by the signal
    assert _done(engine, shop) >= 3


def _done(engine, site):
    return sum(run["status"] == "done" for run in catalog.recent_runs(engine, site["site_id"]))
