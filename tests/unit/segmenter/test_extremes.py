"""Any stored time, however absurd, renders as an ISO time within the years 1-9999 (the rollups and reads over them:
tests/integration/segmenter/test_extremes.py)."""

import pytest

from core.times import TIME_MAX_MS, TIME_MIN_MS, iso
from tests.helpers.segmenter import T0


@pytest.mark.parametrize(
    "ms, shown",
    [
        (None, None),
        (0, "1970-01-01T00:00:00.000Z"),
        (T0 + 1, "2026-01-05T12:00:00.001Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (TIME_MIN_MS, "0001-01-01T00:00:00.000Z"),
        (TIME_MIN_MS - 1, "0001-01-01T00:00:00.000Z"),
        (-(2**63), "0001-01-01T00:00:00.000Z"),
        (-(10**400), "0001-01-01T00:00:00.000Z"),
        (TIME_MAX_MS, "9999-12-31T23:59:59.999Z"),
        (2**63 - 1, "9999-12-31T23:59:59.999Z"),
        (float("inf"), "9999-12-31T23:59:59.999Z"),
    ],
)
def test_every_stored_time_renders(ms, shown):
    assert iso(ms) == shown
