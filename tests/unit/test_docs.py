"""The README stays true: its settings table is the code's, its two commands exist and CI calls the test one;
CONTRIBUTING.md names scripts that exist and the four test layers."""

import os
import re

from core.settings import SETTINGS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as file:
        return file.read()


def settings_table():
    section = read("README.md").split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", section, re.M)
    return {name: default.strip() for name, default in rows}


def test_every_setting_is_documented_with_its_default():
    table = settings_table()
    assert set(table) == set(SETTINGS)
    for name, (default, _help) in SETTINGS.items():
        if isinstance(default, (int, float)):
            assert table[name] == f"`{default}`", name


def test_the_two_commands_exist_and_ci_runs_the_test_one():
    readme = read("README.md")
    commands = re.findall(r"^(scripts/\w+)\s+#", readme.split("## Two commands", 1)[1].split("\n## ", 1)[0], re.M)
    assert commands == ["scripts/demo", "scripts/test"]
    for command in commands:
        assert os.access(os.path.join(ROOT, command), os.X_OK), command
    assert "scripts/test" in read(".ci/run")


def test_contributing_names_scripts_that_exist_and_every_layer():
    contributing = read("CONTRIBUTING.md")
    assert "CONTRIBUTING.md" in read("README.md")
    scripts = set(re.findall(r"^(scripts/[\w-]+)\s", contributing, re.M))
    assert {"scripts/setup", "scripts/test-fast", "scripts/test"} <= scripts
    for command in scripts:
        assert os.access(os.path.join(ROOT, command), os.X_OK), command
    for layer in ("unit", "integration", "e2e", "reliability"):
        assert f"| `tests/{layer}/` | `{layer}` |" in contributing, layer
        assert os.path.isdir(os.path.join(ROOT, "tests", layer)), layer
