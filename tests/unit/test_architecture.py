"""docs/architecture.md names every module of core, collector, segmenter and demo, one line each, and no other."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("core", "collector", "segmenter", "demo")


def documented():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `([\w/]+\.py)`: \S", section, flags=re.MULTILINE)


def test_the_module_map_names_every_module_once_and_nothing_else():
    tree = sorted(
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    )
    listed = documented()
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert sorted(listed) == tree
