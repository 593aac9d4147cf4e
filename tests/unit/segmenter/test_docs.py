"""The segment docs stay true: every segment and setting documented with its default."""

import os
import re

import pytest

from segmenter.rules.definitions import BUILT_IN, SETTINGS, format_duration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
        return handle.read()


def _shown(setting):
    if setting.kind == "duration":
        return format_duration(setting.default)
    if setting.kind == "flag":
        return str(setting.default).lower()
    return str(setting.default)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_in_the_readme_with_its_default(setting):
    row = re.search(rf"^\| `{setting.name}` \| `([^`]*)` \|", _read("README.md"), re.MULTILINE)
    assert row, f"{setting.name} is not in the README's settings table"
    assert row.group(1) == _shown(setting)


@pytest.mark.parametrize("rule", BUILT_IN, ids=lambda r: r.name)
def test_every_segment_is_in_the_readme(rule):
    assert re.search(rf"^\| `{rule.name}`", _read("README.md"), re.MULTILINE) or f"`{rule.name}`" in _read("README.md")


def test_the_readme_points_to_the_segment_docs_and_they_name_every_table():
    assert "docs/segments.md" in _read("README.md")
    docs = _read("docs/segments.md")
    for table in (
        "identities",
        "profile_facts",
        "profile_sessions",
        "profile_views",
        "cart_lines",
        "memberships",
        "membership_changes",
        "rollup_runs",
        "rollup_state",
    ):
        assert f"`{table}`" in docs, table
