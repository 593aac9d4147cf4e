"""Member exports as NDJSON or CSV lines, for the API's streaming responses and the CLI."""

import csv
import io
import json

from segmenter.serving.schemas import iso, iso_times

CSV_COLUMNS = ("profile_id", "user_id", "email", "anonymous_ids", "entered_at", "context")
FORMATS = ("csv", "ndjson")
# One encoder for every line: json.dumps with separators builds a new JSONEncoder per call (~3 µs a member).
compact_json = json.JSONEncoder(separators=(",", ":")).encode


def member_record(row):
    """A member as the API shows it (what MemberSchema dumps, without its per-row cost in exports)."""
    return {
        "profile_id": row["profile_id"],
        "user_id": row["user_id"],
        "email": row["email"],
        "anonymous_ids": row["anonymous_ids"],
        "traits": row["traits"],
        "entered_at": iso(row["entered_at"]),
        "context": iso_times(row["context"]),
    }


def ndjson_lines(rows):
    """Members as NDJSON lines."""
    for row in rows:
        yield compact_json(member_record(row)) + "\n"


#: What a spreadsheet takes as the start of a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A CSV cell that no spreadsheet runs as a formula: text starting like one gets a leading `'` (OWASP)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_lines(rows):
    """Members as CSV lines, header first; every cell safe from spreadsheet formula injection."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                csv_cell(cell)
                for cell in (
                    row["profile_id"],
                    row["user_id"] or "",
                    row["email"] or "",
                    " ".join(row["anonymous_ids"]),
                    iso(row["entered_at"]),
                    compact_json(iso_times(row["context"])),
                )
            ]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def in_blocks(lines, size=64 * 1024):
    """Lines joined into blocks of about `size` characters: a streaming server writes (and chunks) each item it
    is given, and one socket write per member was the largest cost of an HTTP export."""
    block, length = [], 0
    for line in lines:
        block.append(line)
        length += len(line)
        if length >= size:
            yield "".join(block)
            block, length = [], 0
    if block:
        yield "".join(block)


def export_lines(rows, format_):
    """The lines of an export in `format_` (csv or ndjson)."""
    return csv_lines(rows) if format_ == "csv" else ndjson_lines(rows)
