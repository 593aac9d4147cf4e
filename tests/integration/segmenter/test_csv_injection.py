"""CSV exports (API and CLI) never hand a spreadsheet a formula (issue #11, OWASP's CSV injection rule)."""

import csv
import io

import pytest

from core.cli import main
from segmenter.rollup.chunks import run_rollup
from segmenter.rules.definitions import HOUR
from tests.helpers.segmenter import T0, identify, store, track

# (user id, anonymous id, email) a hostile visitor chose; each starts with one of = + - @ tab CR.
HOSTILE = [
    ('=HYPERLINK("http://evil.example","x")', "@SUM(1+1)", "+cmd|' /C calc'!A0"),
    ("\t=1+1", "-2+3", "\r=2+2"),
]


@pytest.fixture
def hostile(engine, site):
    rows = []
    for user, anon, email in HOSTILE:
        rows += [
            identify(user, anon=anon, at=T0, email=email),
            track("Product Viewed", at=T0 + 1, anon=anon, product_id="p1"),
            track("Product Viewed", at=T0 + 2, anon=anon, product_id="p2"),
        ]
    store(engine, site["site_id"], rows)
    run_rollup(engine, now=T0 + HOUR, site_id=site["site_id"])
    return site


def check(text):
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    got = sorted((row["user_id"], row["anonymous_ids"], row["email"]) for row in rows)
    assert got == sorted(tuple("'" + value for value in member) for member in HOSTILE)
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values()), row


def test_the_api_csv_export_neutralises_formulas(client, hostile):
    response = client.get(
        "/api/v1/segments/browsers/members.csv", headers={"Authorization": f"Bearer {hostile['api_key']}"}
    )
    assert response.status_code == 200
    check(response.get_data(as_text=True))


def test_the_cli_csv_export_neutralises_formulas(runner, hostile, tmp_path):
    target = tmp_path / "browsers.csv"
    result = runner.invoke(main, ["segments", "export", "browsers", "--format", "csv", "--output", str(target)])
    assert result.exit_code == 0, result.output
    with open(target, encoding="utf-8", newline="") as file:  # keep the CR inside the quoted cell
        check(file.read())


def test_the_ndjson_export_keeps_values_as_they_are(client, hostile):
    text = client.get(
        "/api/v1/segments/browsers/members.ndjson", headers={"Authorization": f"Bearer {hostile['api_key']}"}
    ).get_data(as_text=True)
    assert '"user_id":"=HYPERLINK(' in text  # JSON is not run by spreadsheets: nothing to neutralise
