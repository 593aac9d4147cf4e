"""Site-defined segments: the cost of a rollup with 20 of them against one with none, and the time of a preview.

    python -m bench.segments [--events 1000000] [--db sqlite,postgresql]

Prints Markdown. A shop's traffic (bench.rollup: about one profile per 10 events) is rolled up with only the
built-in segments; then N/100 new events are rolled up (the incremental baseline). Then 20 site-defined
segments are saved (behaviours with filters, windows, counts and sums; facts; references), the next rollup
backfills their behaviours from the stored events, and N/100 more events are rolled up with all 20. Previews
of three rules are timed (median of 5) against a plain count of the site's profiles in the same database.
"""

import argparse
import statistics
import sys
import tempfile
import time

from sqlalchemy import func, select

from bench.database import fresh_database, versions
from bench.rollup import T0, store_rows, traffic
from core import schema, sites
from core.db import make_engine
from segmenter import site_segments
from segmenter.reads import preview
from segmenter.rollup.chunks import run_rollup
from segmenter.rules.settings import load_settings

RULES = [
    {"event": "Product Viewed", "where": {"category": f"c{n}"}, "within": "7d", "count": {"gte": 2}} for n in range(6)
] + [
    {"event": "Product Viewed", "where": {"price": {"gte": 50}}, "within": "30d", "count": {"gte": 3}},
    {"event": "Product Added", "within": "14d"},
    {"event": "Order Completed", "sum": {"property": "revenue", "gte": 100}},
    {"event": "Order Completed", "within": "30d", "count": {"eq": 0}},
    {"event": "Page Viewed", "within": "1d", "count": {"gte": 5}},
    {"fact": "order_count", "gte": 2},
    {"all": [{"fact": "last_seen_at", "older_than": "14d"}, {"fact": "order_count", "gte": 1}]},
    {"any": [{"segment": "browsers"}, {"fact": "cart_items", "gte": 2}]},
    {"all": [{"segment": "site_0"}, {"not": {"segment": "repeat_buyers"}}]},
    {"event": "Checkout Started", "within": "3d", "count": {"gte": 1}},
    {"event": "Product Removed", "within": "30d", "count": {"gte": 2}},
    {"event": "Order Completed", "max": {"property": "revenue", "gte": 150}},
    {"all": [{"event": "Product Viewed", "within": "7d", "count": {"gte": 5}}, {"fact": "order_count", "eq": 0}]},
    {"event": "Product Viewed", "where": {"category": {"in": ["c1", "c2", "c3"]}}, "count": {"gte": 10}},
]
PREVIEWS = {
    "one behaviour": {"rule": RULES[0]},
    "a sum and a fact": {"rule": {"all": [RULES[8], {"fact": "sessions", "gte": 2}]}},
    "new behaviour (counted for the preview)": {
        "rule": {"event": "Product Viewed", "where": {"category": "c19", "price": {"lt": 20}}, "count": {"gte": 1}}
    },
}


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def bench(kind, events, workdir):
    added = max(1, events // 100)
    with fresh_database(kind, workdir) as url:
        engine = make_engine(url)
        site_id = sites.create_site(engine, "bench", [])["site_id"]
        store_rows(engine, traffic(events, 0, seed=1))
        now = T0 + events * 500 + 3_600_000
        run_rollup(engine, now=now, site_id=site_id)
        store_rows(engine, traffic(added, events, seed=2, identify=False))
        (plain,), plain_s = timed(lambda: run_rollup(engine, now=now + 60_000, site_id=site_id))
        for number, rule in enumerate(RULES):
            site_segments.create(engine, site_id, {"name": f"site_{number}", "rule": rule}, "bench", now)
        (backfilled,), backfill_s = timed(lambda: run_rollup(engine, now=now + 120_000, site_id=site_id))
        store_rows(engine, traffic(added, events + added, seed=3, identify=False))
        (with_segments,), with_s = timed(lambda: run_rollup(engine, now=now + 180_000, site_id=site_id))
        with engine.connect() as conn:
            facts = schema.ProfileFact.__table__
            profiles = conn.scalar(select(func.count()).where(facts.c.site_id == site_id))
        _, count_s = timed(lambda: _count(engine, site_id))
        settings = load_settings({})
        previews = {}
        for name, body in PREVIEWS.items():
            runs = [
                timed(lambda b=body: preview.preview(engine, site_id, b, settings, now + 180_000)) for _ in range(5)
            ]
            previews[name] = (runs[0][0]["size"], statistics.median(seconds for _, seconds in runs))
        engine.dispose()
    for summary in (plain, backfilled, with_segments):
        if summary.status != "done":
            raise SystemExit(f"{kind}: rollup {summary.status}: {summary.error}")
    return {
        "db": kind,
        "profiles": profiles,
        "added": added,
        "plain_s": plain_s,
        "backfill_s": backfill_s,
        "with_s": with_s,
        "count_s": count_s,
        "previews": previews,
        "enters": backfilled.enters,
    }


def _count(engine, site_id):
    facts = schema.ProfileFact.__table__
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).where(facts.c.site_id == site_id))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(f"# Site-defined segments: {args.events:,} events, {len(RULES)} segments\n")
    print(f"Databases: {versions()}\n")
    print(
        "| db | profiles | incremental rollup, built-ins only | the same with 20 segments | ÷ | backfill rollup "
        "| plain count of profiles |"
    )
    print("|---|---|---|---|---|---|---|")
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for kind in args.db.split(","):
            r = bench(kind, args.events, workdir)
            results.append(r)
            print(
                f"| {kind} | {r['profiles']:,} | {r['plain_s']:.2f} s ({r['added']:,} events) | {r['with_s']:.2f} s "
                f"| **{r['with_s'] / r['plain_s']:.1f}×** | {r['backfill_s']:.1f} s ({r['enters']:,} enters) "
                f"| {r['count_s'] * 1000:.0f} ms |"
            )
    print("\n| db | preview | size | median of 5 | vs 2 s target | ÷ plain count |")
    print("|---|---|---|---|---|---|")
    for r in results:
        for name, (size, seconds) in r["previews"].items():
            verdict = "within" if seconds <= 2 else "over"
            print(
                f"| {r['db']} | {name} | {size:,} | {seconds:.2f} s | {verdict} "
                f"| {seconds / max(r['count_s'], 1e-6):.0f}× |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
