"""`cohortly segments export`: the same records as the API, as CSV or NDJSON, to stdout or a file."""

import csv
import io
import json

from core import sites
from core.cli import main
from segmenter.rollup.chunks import run_rollup
from tests.helpers.segmenter import T0, store, track


def browsers(engine, site, count):
    rows = []
    for i in range(count):
        rows += [
            track("Product Viewed", at=T0, anon=f"v{i}", product_id="a", name="Shoe"),
            track("Product Viewed", at=T0 + 1, anon=f"v{i}", product_id="b", name="Hat"),
        ]
    store(engine, site["site_id"], rows)
    run_rollup(engine, now=T0 + 3_600_000, site_id=site["site_id"])


def test_export_ndjson_to_stdout(runner, engine, site):
    browsers(engine, site, 3)
    result = runner.invoke(main, ["segments", "export", "browsers", "--site", "shop"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["profile_id"] for line in lines] == ["a:v0", "a:v1", "a:v2"]
    assert lines[0]["context"]["last_product"]["name"] == "Hat"


def test_export_csv_to_a_file_without_naming_the_only_site(runner, engine, site, tmp_path):
    browsers(engine, site, 2)
    target = tmp_path / "browsers.csv"
    result = runner.invoke(main, ["segments", "export", "browsers", "--format", "csv", "--output", str(target)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [row["profile_id"] for row in rows] == ["a:v0", "a:v1"]


def test_export_errors_are_one_clear_line(runner, engine, site):

    unknown = runner.invoke(main, ["segments", "export", "vips", "--site", "shop"])
    assert unknown.exit_code == 1 and "No segment named 'vips'" in unknown.output
    sites.create_site(engine, "second", [])
    ambiguous = runner.invoke(main, ["segments", "export", "browsers"])
    assert ambiguous.exit_code == 1 and "--site" in ambiguous.output
    assert "Traceback" not in unknown.output + ambiguous.output
