"""Rollup cost: a full rollup of N stored events, then N/100 new ones on top of them.

    python -m bench.rollup [--events 1000000] [--db sqlite,postgresql]

Prints Markdown. The floor is one GROUP BY per profile over the same events (count, min, max time per
profile and event name, what DESIGN.md's DuckDB figure measures) in the same database; the rollup does
much more (sessions, cart, views, identities, nine segments, the change log) and is reported as a multiple
of it. Exits 1 when the incremental rollup reads more events than were added (its cost must follow the
new events, not the stored ones) or folds a different number.
"""
import argparse
import json
import random
import sys
import tempfile
import time

from sqlalchemy import text

from bench.database import fresh_database, versions
from collector import store as collector_store
from collector.db import make_engine
from segmenter.rollup import run_rollup

T0 = 1_767_614_400_000  # 2026-01-05 12:00 UTC
COLUMNS = ("site_id", "message_id", "type", "event", "anonymous_id", "user_id", "properties", "traits",
           "is_bot", "timestamp", "received_at")
FLOOR = """
SELECT coalesce(user_id, anonymous_id) AS who, event, count(*), min(timestamp), max(timestamp)
FROM events WHERE site_id = :site GROUP BY coalesce(user_id, anonymous_id), event
"""


def traffic(count, start_index, seed, identify=True):
    """`count` event rows: 1 visitor per ~10 events, a tenth of them identified, a shop's mix of events.

    Without `identify`, no new logins: a login of a visitor with history re-reads that history once
    (by design), which would blur what this bench shows."""
    rng = random.Random(seed)
    visitors = max(10, count // 10)
    products = [json.dumps({"product_id": f"p{n}", "name": f"Product {n}", "category": f"c{n % 20}",
                            "price": 5 + n % 90, "quantity": 1 + n % 3}) for n in range(500)]
    orders = [json.dumps({"revenue": 10 + n}) for n in range(200)]
    rows = []
    for n in range(start_index, start_index + count):
        visitor = rng.randrange(visitors)
        anon, at = f"v{visitor}", T0 + n * 500 + rng.randrange(-3_600_000, 3_600_000)
        roll = rng.random()
        kind, event, props, traits, user = "track", None, None, None, None
        if roll < 0.35:
            kind = "page"
        elif roll < 0.7:
            event, props = "Product Viewed", rng.choice(products)
        elif roll < 0.8:
            event, props = "Product Added", rng.choice(products)
        elif roll < 0.84:
            event = "Checkout Started"
        elif roll < 0.88:
            event, props = "Order Completed", rng.choice(orders)
        elif roll < 0.9 and visitor % 10 == 0 and identify:
            kind, user, traits = "identify", f"user{visitor}", json.dumps({"email": f"user{visitor}@example.com"})
        elif roll < 0.95:
            event, props = "Product Removed", rng.choice(products)
        else:
            kind = "page"
        rows.append((1, f"m{n}", kind, event, anon, user, props, traits, roll > 0.995, at, at))
    return rows


def store_rows(engine, rows):
    """Bulk-load event rows (COPY on PostgreSQL, executemany on SQLite)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in COLUMNS)
            cursor.executemany(f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({marks})", rows)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE events"))  # this table only: a database-wide ANALYZE locks others' tables


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def bench(kind, events, workdir):
    with fresh_database(kind, workdir) as url:
        engine = make_engine(url)
        collector_store.create_site(engine, "bench", [])
        store_rows(engine, traffic(events, 0, seed=1))
        now = T0 + events * 500 + 3_600_000

        def floor():
            with engine.connect() as conn:
                return len(conn.execute(text(FLOOR), {"site": 1}).all())

        _, floor_seconds = timed(floor)
        (full,), full_seconds = timed(lambda: run_rollup(engine, now=now))
        added = max(1, events // 100)
        store_rows(engine, traffic(added, events, seed=2, identify=False))
        (more,), more_seconds = timed(lambda: run_rollup(engine, now=now + 60_000))
        engine.dispose()
    return {
        "db": kind, "events": events, "floor_s": floor_seconds, "full_s": full_seconds, "full": full,
        "added": added, "more_s": more_seconds, "more": more,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    failed = False
    print(f"# Rollup: {args.events:,} events, then {max(1, args.events // 100):,} more\n")
    print(f"Databases: {versions()}\n")
    print("| db | full rollup | floor (GROUP BY) | × floor | events/s | profiles | incremental | events read |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        for kind in args.db.split(","):
            r = bench(kind, args.events, workdir)
            full, more = r["full"], r["more"]
            if full.status != "done" or more.status != "done":
                print(f"| {kind} | failed: {full.error or more.error} |")
                failed = True
                continue
            print(
                f"| {kind} | {r['full_s']:.1f} s | {r['floor_s']:.2f} s | {r['full_s'] / r['floor_s']:.0f}× "
                f"| {r['events'] / r['full_s']:,.0f} | {full.profiles_evaluated:,} | {r['more_s']:.2f} s "
                f"| {more.events_read:,} of {r['added']:,} new |"
            )
            if more.events_read > r["added"] or more.events_folded != r["added"]:
                print(f"\nFAIL: the incremental rollup read {more.events_read} events for {r['added']} new ones")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
