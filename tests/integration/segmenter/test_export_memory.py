"""Exports stream: peak memory stays flat whatever the member count, and no row is capped.

Here 3,000 against 30,000 members (tracemalloc is slow); bench/api measures 200,000.
"""

import tracemalloc

from sqlalchemy import insert

from core import schema


def add_members(engine, site_id, start, count):
    """`count` members of `browsers` with facts, written straight to the tables."""
    rows = range(start, start + count)
    with engine.begin() as conn:
        conn.execute(
            insert(schema.ProfileFact.__table__),
            [
                {
                    "site_id": site_id,
                    "profile_id": f"a:{i:07d}",
                    "event_count": 2,
                    "sessions": 1,
                    "page_views": 0,
                    "product_views": 2,
                    "cart_items": 0,
                    "cart_value_cents": 0,
                    "order_count": 0,
                    "revenue_cents": 0,
                    "email_opens": 0,
                    "email_clicks": 0,
                }
                for i in rows
            ],
        )
        conn.execute(
            insert(schema.Membership.__table__),
            [
                {
                    "site_id": site_id,
                    "segment": "browsers",
                    "profile_id": f"a:{i:07d}",
                    "entered_at": 1_700_000_000_000,
                    "context": {"last_product": {"id": "p1", "name": "Trail Shoe"}, "product_views": 2},
                }
                for i in rows
            ],
        )


def export_peak(client, api_key, path):
    """(lines, peak bytes allocated) while streaming the export through the WSGI app."""
    tracemalloc.start()
    try:
        response = client.get(path, headers={"Authorization": f"Bearer {api_key}"}, buffered=False)
        lines = sum(chunk.count(b"\n") for chunk in response.response)
        response.close()
        return lines, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_export_memory_does_not_grow_with_members(client, engine, site):
    add_members(engine, site["site_id"], 0, 3_000)
    small_lines, small_peak = export_peak(client, site["api_key"], "/api/v1/segments/browsers/members.ndjson")
    add_members(engine, site["site_id"], 3_000, 27_000)
    big_lines, big_peak = export_peak(client, site["api_key"], "/api/v1/segments/browsers/members.ndjson")
    assert (small_lines, big_lines) == (3_000, 30_000)
    assert big_peak < small_peak * 1.5 + 1_000_000, (small_peak, big_peak)
    csv_lines, csv_peak = export_peak(client, site["api_key"], "/api/v1/segments/browsers/members.csv")
    assert csv_lines == 30_001  # the header, then every member
    assert csv_peak < small_peak * 1.5 + 1_000_000, (small_peak, csv_peak)
