"""Ingestion throughput: the collector against a do-nothing Flask ceiling, same gunicorn, same load.

    python -m bench.ingest                          # SQLite and PostgreSQL, 1 and 20 events per request
    python -m bench.ingest --db sqlite --rounds 1   # a quick look

Both apps run under `core/gunicorn_conf.py` with 2 workers; the load client sends the same bodies to
both, alternating which goes first in each round, and the headline figure is collector ÷ ceiling within a
round (the median over rounds), because a 2-core machine shared with others is too noisy for bare times.
The collector runs with its real configuration except COHORTLY_RATE_LIMIT and COHORTLY_CLIENT_RATE_LIMIT,
raised to 10⁹ requests/s so that the token buckets still run but never refuse (the defaults, 1,000 per key and
100 per client and worker, would answer 429: the load client is one client).
After the load, every event answered 2xx must be stored exactly once, and nothing else stored.
Exit status: 0 when every check holds and every target is met, 1 otherwise.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
from collections import Counter
from importlib import metadata

from sqlalchemy import select

from bench import load, payload, profile
from bench.database import fresh_database, versions
from bench.server import Gunicorn
from core import sites
from core.db import make_engine
from core.schema import Event

TARGETS = {1: 0.50, 20: 0.30}  # collector ÷ ceiling, at this many events per request (issue #7)
COLLECTOR_ENV = {"COHORTLY_RATE_LIMIT": "1000000000", "COHORTLY_CLIENT_RATE_LIMIT": "1000000000"}


def measure(server, write_key, prefix, batch, seconds, concurrency, limit=10_000_000):
    """Drive `server` for `seconds` with `batch`-event requests; returns (outcome, ids by request key)."""
    ids_by_key = {}
    bodies = payload.keyed(payload.bodies(prefix, batch, limit), ids_by_key)
    headers = {"Content-Type": "application/json", "Authorization": payload.basic_auth(write_key)}
    cpu_before = server.cpu_seconds()
    outcome = load.run(
        server.host,
        server.port,
        "/v1/batch",
        bodies,
        headers=headers,
        concurrency=concurrency,
        duration=seconds,
        max_requests=limit,
    )
    outcome.server_cpu = (server.cpu_seconds() - cpu_before) / max(len(outcome.answers), 1)
    return outcome, ids_by_key


def verify(engine, site_id, outcome, ids_by_key):
    """Every event answered 2xx stored exactly once, nothing stored that was not sent."""
    with engine.connect() as conn:
        stored = conn.scalars(select(Event.message_id).where(Event.site_id == site_id)).all()
    sent = {mid for ids in ids_by_key.values() for mid in ids}
    acked = {mid for key in outcome.acked for mid in ids_by_key[key]}
    unique = set(stored)
    return {
        "sent": len(sent),
        "acked": len(acked),
        "stored": len(stored),
        "duplicates": len(stored) - len(unique),
        "lost": len(acked - unique),
        "foreign": len(unique - sent),
        "not_2xx": {status: n for status, n in outcome.attempts.items() if not 200 <= status < 300},
    }


def machine():
    """The facts a reader needs to compare figures: cores, CPU model, Python, database versions."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    found = versions()
    libraries = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("flask", "gunicorn", "sqlalchemy", "marshmallow", "psycopg")
    )
    return (
        f"nproc {os.cpu_count()}, CPU {model}, Python {platform.python_version()}, "
        f"SQLite {found['sqlite']}, PostgreSQL {found['postgresql']}; {libraries}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def run_database(kind, ceiling, workdir, args):
    """Measure the ceiling and the collector on one database; returns a list of result rows."""
    rows = []
    with fresh_database(kind, workdir) as url:
        engine = make_engine(url)
        sites = {
            (batch, r): sites.create_site(engine, f"bench-{batch}-{r}", [])
            for batch in args.batches
            for r in range(args.rounds)
        }
        warm = sites.create_site(engine, "warm-up", [])
        env = dict(COLLECTOR_ENV, COHORTLY_DATABASE_URL=url)
        with Gunicorn("core.app:create_app()", os.path.join(workdir, f"collector-{kind}.log"), env=env) as collector:
            for batch in args.batches:
                for server in (ceiling, collector):
                    measure(server, warm["write_key"], f"warm-{batch}", batch, args.warmup, args.concurrency)
            for batch in args.batches:
                rounds = []
                for r in range(args.rounds):
                    site = sites[(batch, r)]
                    order = (ceiling, collector) if r % 2 == 0 else (collector, ceiling)
                    got = {}
                    for server in order:
                        got[server] = measure(
                            server, site["write_key"], f"{kind}-{batch}-{r}", batch, args.seconds, args.concurrency
                        )
                    outcome, ids_by_key = got[collector]
                    check = verify(engine, site["site_id"], outcome, ids_by_key)
                    rounds.append((got[ceiling][0], outcome, check))
                    if check["not_2xx"]:
                        print(_tail(collector.log_path), file=sys.stderr)
                    print(
                        f"  {kind:10} batch {batch:>2} round {r + 1}: ceiling {got[ceiling][0].rate():7.0f} req/s "
                        f"({1000 * got[ceiling][0].server_cpu:.2f} ms CPU/req), collector {outcome.rate():7.0f} req/s "
                        f"({1000 * outcome.server_cpu:.2f} ms CPU/req), "
                        f"ratio {outcome.rate() / got[ceiling][0].rate():.2f}; "
                        f"{check}",
                        flush=True,
                    )
                rows.append(summarise(kind, batch, rounds))
                if args.profile:
                    rows[-1]["profile"] = profile_collector(collector, engine, kind, batch, workdir, args)
        engine.dispose()
    return rows


def profile_collector(collector, engine, kind, batch, workdir, args):
    """One more collector measurement (not counted) under py-spy; the summary lines."""
    site = sites.create_site(engine, f"profile-{batch}", [])
    out = os.path.join(workdir, f"profile-{kind}-{batch}.txt")
    with profile.sampling(collector.process.pid, args.seconds, out):
        measure(collector, site["write_key"], f"profile-{kind}-{batch}", batch, args.seconds, args.concurrency)
    return profile.summarise(out)


def summarise(kind, batch, rounds):
    """One result row: medians over the rounds, the ratio's range, and whether the checks held."""
    ratios = [collector.rate() / ceiling.rate() for ceiling, collector, _ in rounds]
    ceiling_rate = statistics.median(c.rate() for c, _, _ in rounds)
    collector_rate = statistics.median(c.rate() for _, c, _ in rounds)
    checks = [check for _, _, check in rounds]
    exact = all(c["duplicates"] == c["lost"] == c["foreign"] == 0 for c in checks)
    errors = sum((Counter(c["not_2xx"]) for c in checks), Counter())
    cpu = statistics.median(max(c.client_cpu / c.elapsed, o.client_cpu / o.elapsed) for c, o, _ in rounds)
    ceiling_cpu = statistics.median(c.server_cpu for c, _, _ in rounds)
    collector_cpu = statistics.median(o.server_cpu for _, o, _ in rounds)
    return {
        "db": kind,
        "batch": batch,
        "ceiling_rps": ceiling_rate,
        "collector_rps": collector_rate,
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "target": TARGETS.get(batch),
        "exact": exact,
        "stored": sum(c["stored"] for c in checks),
        "errors": dict(errors),
        "requests": sum(len(o.answers) for _, o, _ in rounds),
        "client_cpu": cpu,
        "ceiling_cpu": ceiling_cpu,
        "collector_cpu": collector_cpu,
    }


def table(rows):
    """The results as a Markdown table."""
    lines = [
        "| database | events/request | ceiling req/s | ceiling events/s | collector req/s | collector events/s "
        "| collector ÷ ceiling (median; range) | target | gunicorn CPU ms/request: ceiling, collector (ratio) "
        "| exactly once (events checked) | collector non-2xx | load client CPU |",
        "|---|---:|---:|---:|---:|---:|---|---|---|---|---|---:|",
    ]
    for row in rows:
        target = row["target"]
        verdict = "" if target is None else f"≥ {target:.2f} {'met' if row['ratio'] >= target else 'MISSED'}"
        lines.append(
            f"| {row['db']} | {row['batch']} | {row['ceiling_rps']:,.0f} | {row['ceiling_rps'] * row['batch']:,.0f} "
            f"| {row['collector_rps']:,.0f} | {row['collector_rps'] * row['batch']:,.0f} "
            f"| **{row['ratio']:.2f}** ({row['ratio_min']:.2f}–{row['ratio_max']:.2f}) | {verdict} "
            f"| {1000 * row['ceiling_cpu']:.2f}, {1000 * row['collector_cpu']:.2f} "
            f"({row['ceiling_cpu'] / row['collector_cpu']:.2f}) "
            f"| {'yes' if row['exact'] else 'NO'} ({row['stored']:,}) "
            f"| {_errors(row['errors'], row['requests'])} | {row['client_cpu']:.0%} |"
        )
    return "\n".join(lines)


def _tail(path, lines=20):
    with open(path, errors="replace") as log:
        return "".join(log.readlines()[-lines:])


def _errors(errors, requests):
    if not errors:
        return f"0 of {requests:,}"
    named = ", ".join(f"{n} × {status or 'no answer'}" for status, n in sorted(errors.items()))
    return f"{sum(errors.values())} of {requests:,} ({named})"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 20], help="events per request")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of one measurement")
    parser.add_argument("--warmup", type=float, default=1.5, help="length of the warm-up per server and batch size")
    parser.add_argument("--rounds", type=int, default=5, help="ceiling/collector pairs per batch size")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections of the load client")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, sample the collector's workers with py-spy and print where the time goes",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    print(f"machine: {machine()}")
    print(
        f"load: {args.concurrency} connections, {args.seconds:g} s per measurement, {args.rounds} rounds; "
        f"gunicorn: core/gunicorn_conf.py, 2 workers; collector env {COLLECTOR_ENV}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="cohortly-bench-") as workdir:
        with Gunicorn("bench.ceiling:create_app()", os.path.join(workdir, "ceiling.log")) as ceiling:
            for kind in args.db:
                rows.extend(run_database(kind, ceiling, workdir, args))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (other work on the machine skews bare figures)")
    print()
    print(table(rows))
    for row in rows:
        if row.get("profile"):
            print(f"\nprofile, {row['db']}, {row['batch']} events/request (share of all worker samples, inclusive):")
            print("\n".join(row["profile"]))
    ok = all(
        row["exact"] and not row["errors"] and (row["target"] is None or row["ratio"] >= row["target"]) for row in rows
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
