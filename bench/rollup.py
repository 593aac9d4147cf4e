"""Rollup cost: a full rollup of N stored events, then N/100 new ones on top, as ratios to DuckDB.

    python -m bench.rollup [--events 1000000] [--db sqlite,postgresql]

Prints Markdown. The reference is DuckDB (in-process, all cores) computing the same per-profile aggregates
from the same rows: identities resolved, first/last seen, counts per kind, the latest product viewed, cart
adds, checkouts, orders and revenue. The rollup does that and more (sessions, cart lines, the latest 20
views, nine segments judged, the change log), inside the database, in transactions that the collector's
writes keep running beside. The "floor" is one GROUP BY per profile and event in the same database.
Each rollup runs `run_rollup` (what `cohortly rollup` runs) in a child process, so its peak memory is its own.
Exits 1 when the incremental rollup reads more events than were added (its cost must follow the new
events, not the stored ones) or folds a different number.
"""

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time

from sqlalchemy import text

from bench.database import bulk_load, fresh_database, versions
from core import sites
from core.db import make_engine

T0 = 1_767_614_400_000  # 2026-01-05 12:00 UTC
COLUMNS = (
    "site_id",
    "message_id",
    "type",
    "event",
    "anonymous_id",
    "user_id",
    "properties",
    "traits",
    "is_bot",
    "timestamp",
    "received_at",
)
FLOOR = """
SELECT coalesce(user_id, anonymous_id) AS who, event, count(*), min(timestamp), max(timestamp)
FROM events WHERE site_id = :site GROUP BY coalesce(user_id, anonymous_id), event
"""
# The facts a profile's segments are judged on, in one DuckDB query over the same rows.
REFERENCE = """
WITH links AS (
    SELECT anonymous_id, arg_max(user_id, timestamp) AS user_id
    FROM events WHERE user_id IS NOT NULL AND NOT is_bot GROUP BY anonymous_id
), resolved AS (
    SELECT coalesce(e.user_id, l.user_id, e.anonymous_id) AS profile, e.*
    FROM events e LEFT JOIN links l USING (anonymous_id) WHERE NOT e.is_bot
)
SELECT profile, min(timestamp), max(timestamp), count(*),
       count(*) FILTER (type = 'page'),
       count(*) FILTER (event = 'Product Viewed'),
       arg_max(json_extract_string(properties, '$.product_id'), timestamp) FILTER (event = 'Product Viewed'),
       arg_max(json_extract_string(properties, '$.name'), timestamp) FILTER (event = 'Product Viewed'),
       count(*) FILTER (event = 'Product Added'),
       max(timestamp) FILTER (event = 'Product Added'),
       max(timestamp) FILTER (event = 'Checkout Started'),
       min(timestamp) FILTER (event = 'Order Completed'),
       max(timestamp) FILTER (event = 'Order Completed'),
       count(*) FILTER (event = 'Order Completed'),
       sum(round(100 * CAST(json_extract(properties, '$.revenue') AS DOUBLE))) FILTER (event = 'Order Completed')
FROM resolved GROUP BY profile
"""


def traffic(count, start_index, seed, identify=True):
    """`count` event rows: 1 visitor per ~10 events, a tenth of them identified, a shop's mix of events.

    Without `identify`, no new logins: a login of a visitor with history re-reads that history once
    (by design), which would blur what this bench shows."""
    rng = random.Random(seed)
    visitors = max(10, count // 10)
    products = [
        json.dumps(
            {
                "product_id": f"p{n}",
                "name": f"Product {n}",
                "category": f"c{n % 20}",
                "price": 5 + n % 90,
                "quantity": 1 + n % 3,
            }
        )
        for n in range(500)
    ]
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
    """Bulk-load event rows."""
    bulk_load(engine, {"events": (COLUMNS, rows)})


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def duckdb_reference(rows, workdir):
    """Seconds DuckDB takes for REFERENCE over `rows` (loaded first, not timed), and how many profiles."""
    import duckdb

    path = os.path.join(workdir, "events.csv")
    with open(path, "w", newline="") as out:
        csv.writer(out).writerows(rows)
    db = duckdb.connect()
    db.execute(f"""CREATE TABLE events AS SELECT * FROM read_csv('{path}', header = false, columns = {{
        'site_id': 'INTEGER', 'message_id': 'VARCHAR', 'type': 'VARCHAR', 'event': 'VARCHAR',
        'anonymous_id': 'VARCHAR', 'user_id': 'VARCHAR', 'properties': 'VARCHAR', 'traits': 'VARCHAR',
        'is_bot': 'BOOLEAN', 'timestamp': 'BIGINT', 'received_at': 'BIGINT'}})""")
    os.remove(path)
    best = None
    for _ in range(3):  # warm, then the best of the rest: the reference is the engine, not the page cache
        profiles, seconds = timed(lambda: len(db.execute(REFERENCE).fetchall()))
        best = seconds if best is None else min(best, seconds)
    db.close()
    return best, profiles


def rollup_process(url, now):
    """Roll up in a child process: (summary dict, seconds, peak RSS in MiB, RSS in MiB before the rollup)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.rollup", "--child", url, str(now)], stdout=subprocess.PIPE, text=True
    )
    output, _ = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"the rollup failed: {output}")
    result = json.loads(output)
    return result["summary"], result["seconds"], result["peak_mib"], result["rss_before_mib"]


def memory(field):
    """This process's VmRSS (now) or VmHWM (peak since exec) in MiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


def child(url, now):
    """The child's side: what `cohortly rollup` runs, timed without the imports."""
    from segmenter.rollup.chunks import run_rollup

    engine = make_engine(url)
    before = memory("VmRSS")
    (summary,), seconds = timed(lambda: run_rollup(engine, now=now))
    engine.dispose()
    print(
        json.dumps(
            {"summary": summary.as_dict(), "seconds": seconds, "rss_before_mib": before, "peak_mib": memory("VmHWM")}
        )
    )
    return 0


def bench(kind, rows, workdir, reference):
    events = len(rows)
    with fresh_database(kind, workdir) as url:
        engine = make_engine(url)
        sites.create_site(engine, "bench", [])
        store_rows(engine, rows)
        now = T0 + events * 500 + 3_600_000

        def floor():
            with engine.connect() as conn:
                return len(conn.execute(text(FLOOR), {"site": 1}).all())

        _, floor_seconds = timed(floor)
        full, full_seconds, full_mib, base_mib = rollup_process(url, now)
        added = max(1, events // 100)
        store_rows(engine, traffic(added, events, seed=2, identify=False))
        more, more_seconds, more_mib, _ = rollup_process(url, now + 60_000)
        engine.dispose()
    return {
        "db": kind,
        "events": events,
        "floor_s": floor_seconds,
        "full_s": full_seconds,
        "full": full,
        "full_mib": full_mib,
        "added": added,
        "more_s": more_seconds,
        "more": more,
        "more_mib": more_mib,
        "reference_s": reference,
        "base_mib": base_mib,
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1], int(argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    failed = False
    added = max(1, args.events // 100)
    print(f"# Rollup: {args.events:,} events, then {added:,} more\n")
    print(f"Databases: {versions()}, DuckDB {duckdb_version()}\n")
    with tempfile.TemporaryDirectory() as workdir:
        rows = traffic(args.events, 0, seed=1)  # the same rows for DuckDB and each database
        reference, profiles = duckdb_reference(rows, workdir)
        print(f"DuckDB reference: {reference:.2f} s for {args.events:,} events, {profiles:,} profiles\n")
        print(
            "| db | full rollup | ÷ DuckDB | peak RSS | events/s | profiles judged | floor (GROUP BY) "
            "| incremental | ÷ DuckDB full | peak RSS | events read |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        notes = []
        for kind in args.db.split(","):
            r = bench(kind, rows, workdir, reference)
            full, more = r["full"], r["more"]
            if full["status"] != "done" or more["status"] != "done":
                print(f"| {kind} | failed: {full.get('error') or more.get('error')} |")
                failed = True
                continue
            print(
                f"| {kind} | {r['full_s']:.1f} s | **{r['full_s'] / reference:.0f}×** | {r['full_mib']:.0f} MiB "
                f"| {r['events'] / r['full_s']:,.0f} | {full['profiles_evaluated']:,} | {r['floor_s']:.2f} s "
                f"| {r['more_s']:.2f} s | **{r['more_s'] / reference:.1f}×** | {r['more_mib']:.0f} MiB "
                f"| {more['events_read']:,} of {r['added']:,} new |"
            )
            notes.append(f"{kind}: the rollup process held {r['base_mib']:.0f} MiB before it started (imports)")
            if more["events_read"] > r["added"] or more["events_folded"] != r["added"]:
                print(f"\nFAIL: the incremental rollup read {more['events_read']} events for {r['added']} new ones")
                failed = True
        print("\nPeak RSS is the rollup process's high-water mark (VmHWM); " + "; ".join(notes) + ".")
    return 1 if failed else 0


def duckdb_version():
    import duckdb

    return duckdb.__version__


if __name__ == "__main__":
    sys.exit(main())
