"""Segment's analytics-node, pointed at a real collector, works unchanged."""

import os
import shutil
import subprocess

import pytest

HERE = os.path.join(os.path.dirname(__file__), "node_sdk")


@pytest.fixture(scope="module")
def node_sdk():
    """The analytics-node package installed from the lock file (npm ci once per run)."""
    if not os.path.isdir(os.path.join(HERE, "node_modules", "@segment")):
        subprocess.run([shutil.which("npm"), "ci", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True)
    return HERE


def test_analytics_node_stores_exactly_its_events(live_collector, node_sdk):
    site = live_collector.create_site()
    for _ in range(2):  # the second run resends the same message ids: nothing new is stored
        done = subprocess.run(
            ["node", "send.mjs", live_collector.url, site["write_key"]],
            cwd=node_sdk,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    rows = {row["message_id"]: row for row in live_collector.events(site["site_id"])}
    assert set(rows) == {"n-identify", "n-page", "n-viewed", "n-added", "n-order", "n-alias"}
    assert rows["n-viewed"]["properties"] == {"product_id": "p1", "price": 12.5}
    assert rows["n-identify"]["traits"] == {"email": "node@example.com"}
    assert rows["n-alias"]["previous_id"] == "node-anon"
    assert rows["n-viewed"]["context"]["library"]["name"] == "@segment/analytics-node"
