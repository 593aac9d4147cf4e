"""The vendored ReDoc bundle that /api/v1/docs serves is the version scripts/redoc's lockfile pins (the page itself:
tests/integration/segmenter/test_api_docs_assets.py)."""

import json
import os

from segmenter.serving import api

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_the_vendored_bundle_is_the_version_the_lockfile_pins():
    with open(os.path.join(ROOT, "scripts", "redoc", "package-lock.json"), encoding="utf-8") as file:
        pinned = json.load(file)["packages"]["node_modules/redoc"]["version"]
    assert api.REDOC == f"redoc-{pinned}.standalone.js"
    assert [name for name in os.listdir(api.STATIC) if name.endswith(".js")] == [api.REDOC]
