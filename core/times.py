"""Stored times (integer epoch milliseconds, UTC) and their one rendering as ISO 8601.

Old databases and direct inserts may hold any BIGINT as an event time (ingestion bounds them now).
Rendering never fails: a time outside what ISO 8601 years 0001..9999 can show is shown as the
nearest end of that range, and the rollup folds every event time clamped to the same range.
"""

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the range of times that render.
TIME_MIN_MS = -62_135_596_800_000
TIME_MAX_MS = 253_402_300_799_999


def clamp_ms(ms: int) -> int:
    """`ms` moved into TIME_MIN_MS..TIME_MAX_MS.

    >>> clamp_ms(-10**18) == TIME_MIN_MS
    True
    """
    return min(max(ms, TIME_MIN_MS), TIME_MAX_MS)


def iso(ms: int | float | None) -> str | None:
    """An epoch-ms time as ISO 8601 UTC with milliseconds (clamped: see the module); None stays None.

    >>> iso(0), iso(2**63 - 1)
    ('1970-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z')
    """
    if ms is None:
        return None
    try:
        whole = int(ms)
    except (OverflowError, ValueError):  # an infinite or NaN float
        whole = TIME_MAX_MS if ms > 0 else TIME_MIN_MS
    moment = EPOCH + timedelta(milliseconds=clamp_ms(whole))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return int(moment.timestamp() * 1000)
