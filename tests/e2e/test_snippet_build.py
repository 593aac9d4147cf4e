"""The shipped tracker (collector/static/c.js) is a fresh build of js-snippet/src, within its size budget.

The budget is 1,536 bytes gzipped, measured with Python's gzip at level 9 (what most servers send is at most
this small); the build (js-snippet/build.mjs) fails past it too, by Node's gzip. Needs Node; installs js-snippet's
locked dependencies with `npm ci` when they are missing.
"""

import glob
import gzip
import json
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SNIPPET = os.path.join(ROOT, "js-snippet")
SHIPPED = os.path.join(ROOT, "collector", "static", "c.js")
BUDGET = 1536


def run(*args):
    return subprocess.run(args, cwd=SNIPPET, capture_output=True, text=True, timeout=300, check=True)


@pytest.fixture(scope="module")
def node():
    """The node binary, with js-snippet's dependencies installed."""
    path = shutil.which("node")
    assert path, "Node.js is needed to build the tracker (js-snippet/)"
    with open(os.path.join(SNIPPET, "package.json"), encoding="utf-8") as file:
        needed = json.load(file)["devDependencies"]
    if not all(os.path.isdir(os.path.join(SNIPPET, "node_modules", name)) for name in needed):
        run("npm", "ci", "--no-audit", "--no-fund")
    return path


def test_shipped_build_equals_a_fresh_build(node, tmp_path):
    out = tmp_path / "c.js"
    result = run(node, "build.mjs", "--outfile", str(out))
    assert re.search(r"\d+ B raw, \d+ B gzip, \d+ B brotli", result.stdout)
    with open(SHIPPED, "rb") as shipped:
        assert out.read_bytes() == shipped.read(), "collector/static/c.js is stale: run `npm run build` in js-snippet"


def test_gzip_size_within_budget():
    with open(SHIPPED, "rb") as file:
        size = len(gzip.compress(file.read(), compresslevel=9, mtime=0))
    assert size <= BUDGET, f"c.js is {size} B gzipped, over the {BUDGET} B budget"


def test_unit_tests_of_the_source(node):
    """`npm test` in js-snippet: node --test on tests/js."""
    result = subprocess.run(["npm", "test"], cwd=SNIPPET, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\bpass [1-9]", result.stdout) and re.search(r"\bfail 0\b", result.stdout), result.stdout


def test_readme_documents_every_setting_and_method():
    with open(os.path.join(SNIPPET, "README.md"), encoding="utf-8") as file:
        readme = file.read()
    with open(os.path.join(SNIPPET, "src", "config.js"), encoding="utf-8") as file:
        settings = set(re.findall(r"\bdata\.(\w+)", file.read()))
    with open(os.path.join(SNIPPET, "src", "index.js"), encoding="utf-8") as file:
        api = re.search(r"const api = \{(.*?)\n\};", file.read(), re.S).group(1)
    methods = set(re.findall(r"^  (\w+)", api, re.M))
    assert settings >= {"key", "api", "consent", "auto", "batch", "interval"}
    assert methods == {"page", "track", "identify", "reset", "consent", "optOut", "segments"}
    missing = [f"data-{name}" for name in settings if f"`data-{name}" not in readme]
    missing += [f"cohortly.{name}" for name in methods if f"cohortly.{name}(" not in readme]
    assert not missing, f"js-snippet/README.md does not document {missing}"


def test_stub_has_every_method_and_the_test_pages_use_the_readmes():
    def read(path):
        with open(path, encoding="utf-8") as file:
            return file.read()

    stub = re.search(r"^<script>(window\.cohortly=.*?)</script>$", read(os.path.join(SNIPPET, "README.md")), re.M)[1]
    api = re.search(r"const api = \{(.*?)\n\};", read(os.path.join(SNIPPET, "src", "index.js")), re.S)[1]
    assert re.search(r'"([\w ]+)"\.split', stub)[1].split() == re.findall(r"^  (\w+)", api, re.M)
    stubs = {
        os.path.basename(page): re.findall(r"<script>(window\.cohortly=.*?)</script>", read(page))
        for page in glob.glob(os.path.join(ROOT, "tests", "e2e", "pages", "*.html"))
    }
    assert {name: found for name, found in stubs.items() if found and found != [stub]} == {}
    assert len([found for found in stubs.values() if found]) >= 4
