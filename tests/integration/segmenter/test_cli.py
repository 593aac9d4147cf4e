"""The segmenter's commands: rollup (once, --status, --now), sites configure, segments list/members."""

import json

import pytest

from core import sites
from core.cli import main
from segmenter.reads import catalog
from segmenter.rules.definitions import HOUR
from tests.helpers.segmenter import T0, page, track
from tests.helpers.segmenter import store as store_events

NOW_ISO = "2026-01-05T14:00:00Z"  # T0 + 2h


@pytest.fixture
def shop(engine, site):
    """The test site with a cart abandoner's and a visitor's events."""
    store_events(
        engine,
        site["site_id"],
        [
            track("Product Added", at=T0, anon="carting", product_id="p", name="Hat", price=5),
            page(at=T0, anon="visiting"),
        ],
    )
    return site


def test_rollup_once_as_json(runner, shop):
    result = runner.invoke(main, ["rollup", "--now", NOW_ISO, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["site_name"], summary["status"], summary["events_folded"], summary["now"]) == (
        "shop",
        "done",
        2,
        T0 + 2 * HOUR,
    )
    assert summary["segments"]["cart_abandoners"]["members"] == 1


def test_rollup_prints_one_line_per_site_and_no_progress_bar_off_a_terminal(runner, shop):
    result = runner.invoke(main, ["rollup", "--now", NOW_ISO, "--site", "shop"])
    assert result.exit_code == 0, result.output
    assert (
        result.output == "shop: folded 2 events, judged 2 profiles, 3 enters, 0 exits (changes 1-3); "
        "under the minimum size: cart_abandoners, active\n"
    )


def test_rollup_status_lists_the_recent_runs(runner, shop):
    runner.invoke(main, ["rollup", "--now", NOW_ISO])
    runner.invoke(main, ["rollup", "--now", NOW_ISO])
    result = runner.invoke(main, ["rollup", "--status"])
    lines = result.output.splitlines()
    assert result.exit_code == 0 and len(lines) == 2
    assert "shop  done" in lines[1] and "folded 2  enters 3  exits 0" in lines[1] and "errors: -" in lines[1]
    assert "folded 0  enters 0" in lines[0]
    runs = [
        json.loads(line)
        for line in runner.invoke(main, ["rollup", "--status", "--json", "--limit", "1"]).output.splitlines()
    ]
    assert [(run["status"], run["events_folded"]) for run in runs] == [("done", 0)]


def test_a_failed_rollup_exits_1_with_one_line(runner, engine, shop):
    sites.update_site_settings(engine, shop["site_id"], {"browse_min_views": "many"})
    result = runner.invoke(main, ["rollup", "--now", NOW_ISO])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("shop: rollup failed: ValidationError:") and "Traceback" not in result.output
    assert lines[1:] == ["shop: purge failed: ValidationError"]  # the pass goes on past the site, and says so


@pytest.mark.parametrize(
    "args, message",
    [
        (["rollup", "--now", "yesterday"], "'yesterday' is not an ISO time"),
        (["rollup", "--site", "nope"], "No site named 'nope'."),
        (["rollup", "--every", "0"], "is not in the range x>=0.1"),
    ],
)
def test_rollup_usage_errors(runner, shop, args, message):
    result = runner.invoke(main, args)
    assert result.exit_code in (1, 2) and message in result.output
    assert "Traceback" not in result.output


def test_configure_sets_validates_and_unsets(runner, engine, shop):
    sites.update_site_settings(engine, shop["site_id"], {"store_ip": False})
    result = runner.invoke(
        main, ["sites", "configure", "shop", "--set", "cart_abandon_after=2h", "--set", "min_segment_size=50"]
    )
    assert result.exit_code == 0, result.output
    assert "cart_abandon_after = 2h\n" in result.output and "min_segment_size = 50\n" in result.output
    assert sites.find_site(engine, site_id=shop["site_id"])["settings"] == {
        "store_ip": False,
        "cart_abandon_after": "2h",
        "min_segment_size": 50,
    }
    assert catalog.site_settings(engine, shop["site_id"])["cart_abandon_after"] == 2 * HOUR
    result = runner.invoke(main, ["sites", "configure", "shop", "--unset", "cart_abandon_after"])
    assert "cart_abandon_after = 1h\n" in result.output
    assert sites.find_site(engine, site_id=shop["site_id"])["settings"] == {"store_ip": False, "min_segment_size": 50}


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("cart_abandon_after=soon", "cart_abandon_after: Not a duration (use e.g. 30m, 2h, 7d)."),
        ("cart_abandon_within=30m", "cart_abandon_within: Must be longer than cart_abandon_after."),
        ("browse_min_views=0", "browse_min_views: Must be greater than or equal to 1"),
        ("browse_window=10y", "browse_window: Not a duration"),
        ("active_window=400d", "active_window: Must be between 1m and 365d."),
        ("colour=red", "colour: Unknown setting; known: browse_min_views"),
        ("nonsense", "'nonsense' is not NAME=VALUE."),
    ],
)
def test_configure_refuses_bad_settings_in_one_line(runner, engine, shop, assignment, message):
    result = runner.invoke(main, ["sites", "configure", "shop", "--set", assignment])
    assert result.exit_code in (1, 2)
    assert message in result.output and "Traceback" not in result.output
    assert sites.find_site(engine, site_id=shop["site_id"])["settings"] == {}


def test_segments_list_and_members(runner, shop):
    runner.invoke(main, ["rollup", "--now", NOW_ISO])
    listed = runner.invoke(main, ["segments", "list", "shop"]).output.splitlines()
    assert listed[1].split()[:2] == ["cart_abandoners", "1"] and listed[1].endswith("(under the minimum size)")
    assert listed[0].split()[:2] == ["browsers", "0"]
    members = runner.invoke(main, ["segments", "members", "shop", "cart_abandoners"]).output.splitlines()
    assert [json.loads(line)["profile_id"] for line in members] == ["a:carting"]
    assert json.loads(members[0])["context"]["cart_value"] == 5.0
    result = runner.invoke(main, ["segments", "members", "shop", "nope"])
    assert result.exit_code == 1 and "No segment named 'nope'." in result.output
