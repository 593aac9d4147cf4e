"""The CSV cell rule that keeps formulas out of spreadsheets (issue #11, OWASP's CSV injection rule); the exports:
tests/integration/segmenter/test_csv_injection.py."""

import pytest

from segmenter.exports import csv_cell


@pytest.mark.parametrize(
    "value, safe",
    [
        ("=1", "'=1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        ("", ""),
        ("'=1", "'=1"),
        ("u:=1", "u:=1"),
    ],
)
def test_csv_cell(value, safe):
    assert csv_cell(value) == safe
