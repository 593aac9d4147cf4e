"""Segment API cost: member pages and streamed exports of 100,000+ members, the real app under gunicorn.

    python -m bench.api                                  # SQLite and PostgreSQL, 20k / 100k / 200k members
    python -m bench.api --db sqlite --sizes 5000 20000 --members 20000   # a quick look
    python -m bench.api --profile                        # and where the workers spend their time (py-spy)

Members of `browsers` (with profile facts, a browsing context like a rollup writes, and ~30% identified
users with 1-2 linked anonymous ids) are written straight to a fresh database with bulk inserts; the
population grows 20k → 100k → 200k and the app (core/gunicorn_conf.py, 2 workers) is started afresh
for each measurement, so that each export's peak memory is that of a warm, otherwise idle worker.

- Member pages (100 a page, at the --members size): a sequential cursor walk over every member, random
  pages (cursors from the walk) one at a time, then over --concurrency connections. Every members request
  is paired with a `GET /healthz` (one database round trip) on the same connection, in alternating order,
  so the headline p95(members) ÷ p95(healthz) is measured under the same noise; the bare p95 is shown
  against the target too, but bare times on a shared 2-core machine are noisy. `GET /api/v1/segments` is
  shown beside them (its sizes are a GROUP BY over every membership of the site).
- Exports (`/members.ndjson`, `/members.csv`, HTTP/1.1 chunked like curl gets them): rows/s, and the RSS of
  the worker that served the request (sampled /proc VmRSS while streaming, and VmHWM after), and that
  worker's CPU time per row (steadier than rows/s when others share the machine). The baseline is
  one plain SQLAlchemy `SELECT` of the same joined rows in this process, streamed, just before the
  exports of that size.

Checks (exit 1): the walk and every export deliver each member exactly once and nothing else, and every
request answers 200. Targets (exit 1 too, as bench.ingest does): sequential member-page p95 ≤ 20 ms,
exports ≥ 50,000 rows/s at 100k members and more, and the RSS an export adds to its worker (peak − RSS
before the request) at the largest size no more than FLAT_SLACK above that at the smallest.
"""

import argparse
import asyncio
import json
import math
import os
import random
import re
import resource
import socket
import sys
import tempfile
import threading
import time
from collections import Counter

from sqlalchemy import and_, select

from bench import load, profile
from bench.database import bulk_load, fresh_database
from bench.ingest import machine
from bench.server import Gunicorn
from core import schema, sites
from core.db import make_engine
from segmenter.exports import CSV_COLUMNS

SEGMENT = "browsers"
PAGE_SIZE = 100
T0 = 1_767_614_400_000  # 2026-01-05 12:00 UTC, the "now" of the generated facts
DAY = 86_400_000
PAGE_P95_MS = 20.0  # target: a member page, sequential, bare p95 (issue #7)
EXPORT_ROWS_S = 50_000  # target: export rows/s at 100k members and more
FLAT_SLACK = 10 * 2**20  # target: RSS an export adds at the largest size ≤ at the smallest + this
PROFILE_SECONDS = 10
SEGMENT_LISTS = 50  # requests of /api/v1/segments, shown beside the pages
CATEGORIES = (
    "Shoes",
    "Jackets",
    "Tents",
    "Backpacks",
    "Socks",
    "Gloves",
    "Hats",
    "Stoves",
    "Lamps",
    "Maps",
    "Bottles",
    "Knives",
    "Ropes",
    "Sleeping bags",
    "Mats",
    "Poles",
    "Shorts",
    "Shirts",
    "Fleeces",
    "Boots",
)
FACT_COLUMNS = (
    "site_id",
    "profile_id",
    "user_id",
    "first_seen_at",
    "last_seen_at",
    "event_count",
    "sessions",
    "page_views",
    "product_views",
    "last_product_viewed_at",
    "last_product_message_id",
    "last_product_id",
    "last_product_name",
    "last_product_url",
    "last_product_category",
    "last_product_price_cents",
    "top_categories",
    "cart_items",
    "cart_value_cents",
    "order_count",
    "revenue_cents",
    "email_opens",
    "email_clicks",
    "email",
    "email_at",
    "email_message_id",
    "traits",
    "traits_at",
    "traits_message_id",
    "next_check_at",
)
MEMBER_COLUMNS = ("site_id", "segment", "profile_id", "entered_at", "context")
IDENTITY_COLUMNS = ("site_id", "anonymous_id", "user_id", "linked_at", "message_id")
NDJSON_ID = re.compile(rb'^\{"profile_id":"([^"\\]*)"', re.M)
CSV_ID = re.compile(rb"^([^,\"\r\n]+),", re.M)


# -- the population ---------------------------------------------------------------------------------------
def population(site_id, start, stop, seed=7):
    """Rows of members `start`..`stop` of `browsers`: (facts, memberships, identities), the same every run."""
    rng = random.Random(f"{seed}-{start}-{stop}")
    facts, members, links = [], [], []

    def uid():  # shaped like analytics.js's anonymous ids (uuid4)
        h = f"{rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"

    for n in range(start, stop):
        identified = rng.random() < 0.3
        anonymous = [uid() for _ in range(rng.choice((1, 2)))] if identified else [uid()]
        user_id = f"user-{n:07d}" if identified else None
        profile_id = f"u:{user_id}" if identified else f"a:{anonymous[0]}"
        first_seen = T0 - rng.randrange(DAY, 60 * DAY)
        viewed_at = T0 - rng.randrange(60_000, 6 * DAY)
        views = rng.randrange(2, 21)
        product = rng.randrange(5000)
        category = CATEGORIES[product % len(CATEGORIES)]
        price_cents = 500 + product * 37 % 30_000
        top = [category] + rng.sample([c for c in CATEGORIES if c != category], rng.randrange(0, 3))
        email = traits = email_at = None
        if identified:
            email = f"{user_id}@example.com"
            traits = json.dumps(
                {
                    "email": email,
                    "name": f"Customer {n}",
                    "plan": rng.choice(("free", "pro")),
                    "marketing_consent": rng.random() < 0.7,
                }
            )
            email_at = first_seen + rng.randrange(DAY)
            links += [(site_id, anon, user_id, email_at, f"ajs-{uid()}") for anon in anonymous]
        facts.append(
            (
                site_id,
                profile_id,
                user_id,
                first_seen,
                viewed_at,
                views + rng.randrange(1, 40),
                rng.randrange(1, 9),
                rng.randrange(1, 30),
                views,
                viewed_at,
                f"ajs-{uid()}",
                f"p{product}",
                f"Product {product}",
                f"https://shop.example/products/p{product}",
                category,
                price_cents,
                json.dumps(top),
                0,
                0,
                0,
                0,
                0,
                0,
                email,
                email_at,
                email and f"ajs-{uid()}",
                traits,
                email_at,
                traits and f"ajs-{uid()}",
                viewed_at + 7 * DAY,
            )
        )
        context = {
            "last_product": {
                "id": f"p{product}",
                "name": f"Product {product}",
                "url": f"https://shop.example/products/p{product}",
                "category": category,
                "price": price_cents / 100,
                "viewed_at": viewed_at,
            },
            "top_categories": top,
            "product_views": views,
        }
        members.append(
            (
                site_id,
                SEGMENT,
                profile_id,
                viewed_at - rng.randrange(0, DAY),
                json.dumps(context, separators=(",", ":")),
            )
        )
    return {
        "profile_facts": (FACT_COLUMNS, facts),
        "memberships": (MEMBER_COLUMNS, members),
        "identities": (IDENTITY_COLUMNS, links),
    }


def store_population(engine, tables):
    """Bulk-load the rows in key order, then ANALYZE."""
    for _columns, rows in tables.values():
        rows.sort(key=lambda row: row[1:3])
    bulk_load(engine, tables)


def stored_ids(engine, site_id):
    """The profile ids of the segment's members, as bytes (what the exports are checked against)."""
    m = schema.Membership.__table__
    with engine.connect() as conn:
        ids = conn.scalars(select(m.c.profile_id).where(m.c.site_id == site_id, m.c.segment == SEGMENT)).all()
    return {profile_id.encode() for profile_id in ids}


def select_rate(engine, site_id):
    """(rows, seconds) of one plain SELECT of the rows an export shows, streamed in this process."""
    m, f = schema.Membership.__table__, schema.ProfileFact.__table__
    query = (
        select(m.c.profile_id, f.c.user_id, f.c.email, f.c.traits, m.c.entered_at, m.c.context)
        .select_from(m.outerjoin(f, and_(f.c.site_id == m.c.site_id, f.c.profile_id == m.c.profile_id)))
        .where(m.c.site_id == site_id, m.c.segment == SEGMENT)
        .order_by(m.c.profile_id)
    )
    started = time.perf_counter()
    rows = 0
    with engine.connect() as conn:
        for partition in conn.execution_options(yield_per=1000).execute(query).partitions():
            rows += len(partition)
    return rows, time.perf_counter() - started


# -- member pages -----------------------------------------------------------------------------------------
def get_request(server, path, api_key=None):
    """The raw bytes of a keep-alive GET."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {server.host}:{server.port}"]
    if api_key:
        lines.append(f"Authorization: Bearer {api_key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Latencies:
    """Milliseconds per request of members pages and of /healthz, and every status seen."""

    def __init__(self):
        self.members, self.health, self.statuses = [], [], Counter()

    async def pair(self, conn, server, api_key, path, members_first):
        """One members request and one /healthz on `conn`; returns the members body (None unless 200)."""
        body = None
        for kind in ("members", "health") if members_first else ("health", "members"):
            request = get_request(server, path, api_key) if kind == "members" else get_request(server, "/healthz")
            started = time.perf_counter()
            try:
                status, _, answer = await conn.request(request)
            except (OSError, TimeoutError, ValueError):
                status, answer = load.CONNECTION_ERROR, b""
            (self.members if kind == "members" else self.health).append(1000 * (time.perf_counter() - started))
            self.statuses[(kind, status)] += 1
            if kind == "members" and status == 200:
                body = answer
        return body


def page_path(cursor):
    return f"/api/v1/segments/{SEGMENT}/members?limit={PAGE_SIZE}" + (f"&cursor={cursor}" if cursor else "")


async def walk(server, api_key, max_pages, seconds):
    """Follow next_cursor from the first page: (latencies, profile ids seen in order, cursors used)."""
    seen, cursors, cursor = [], [], None
    latencies = Latencies()
    conn = load.Connection(server.host, server.port, timeout=30)
    deadline = time.monotonic() + seconds
    try:
        for step in range(max_pages):
            body = await latencies.pair(conn, server, api_key, page_path(cursor), step % 2 == 0)
            if body is None:
                break
            cursors.append(cursor)
            page = json.loads(body)
            seen += [member["profile_id"] for member in page["members"]]
            cursor = page["next_cursor"]
            if cursor is None or time.monotonic() > deadline:
                break
    finally:
        conn.close()
    return latencies, seen, cursors


async def random_pages(server, api_key, cursors, requests, concurrency, seconds, seed):
    """`requests` pages at cursors drawn from the walk, over `concurrency` connections."""
    rng = random.Random(seed)
    return await requests_of(
        server, api_key, [page_path(rng.choice(cursors)) for _ in range(requests)], concurrency, seconds
    )


async def requests_of(server, api_key, paths, concurrency, seconds):
    """GET each of `paths` (each paired with a /healthz) over `concurrency` connections."""
    todo = iter(paths)
    latencies = Latencies()
    deadline = time.monotonic() + seconds

    async def worker(index):
        conn = load.Connection(server.host, server.port, timeout=30)
        try:
            step = index
            while time.monotonic() < deadline and (path := next(todo, None)) is not None:
                await latencies.pair(conn, server, api_key, path, step % 2 == 0)
                step += 1
        finally:
            conn.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies


def percentile(values, q):
    """The nearest-rank q-th percentile of `values` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def measure_pages(server, api_key, expected, args):
    """The three page phases on one server; returns (rows for the table, walk check)."""
    warm = asyncio.run(random_pages(server, api_key, [None], 20, 2, 30, seed=0))
    latencies, seen, cursors = asyncio.run(walk(server, api_key, args.walk_pages, args.phase_seconds))
    ids = {profile_id.encode() for profile_id in seen}
    complete = len(cursors) * PAGE_SIZE >= len(expected)
    check = {
        "pages": len(cursors),
        "seen": len(seen),
        "duplicates": len(seen) - len(ids),
        "foreign": len(ids - expected),
        "lost": len(expected - ids) if complete else None,
    }
    phases = [(f"cursor walk ({len(cursors):,} pages)", latencies)]
    phases.append(
        (
            "random pages, 1 at a time",
            asyncio.run(random_pages(server, api_key, cursors, args.random_pages, 1, args.phase_seconds, 1)),
        )
    )
    phases.append(
        (
            f"random pages, {args.concurrency} connections",
            asyncio.run(
                random_pages(server, api_key, cursors, args.random_pages * 2, args.concurrency, args.phase_seconds, 2)
            ),
        )
    )
    phases.append(
        (
            "`GET /api/v1/segments` (not a page: sizes by a GROUP BY), 1 at a time",
            asyncio.run(requests_of(server, api_key, ["/api/v1/segments"] * SEGMENT_LISTS, 1, args.phase_seconds)),
        )
    )
    rows = []
    for index, (name, lat) in enumerate(phases):
        statuses = lat.statuses + warm.statuses if index == 0 else lat.statuses
        bad = {key: n for key, n in statuses.items() if key[1] != 200}
        rows.append(
            {
                "phase": name,
                "requests": len(lat.members),
                "target": name.startswith(("cursor", "random pages, 1")),
                "members": [percentile(lat.members, q) for q in (50, 95, 99)],
                "health": [percentile(lat.health, q) for q in (50, 95, 99)],
                "bad": bad,
            }
        )
    return rows, check


# -- exports ----------------------------------------------------------------------------------------------
class RssSampler(threading.Thread):
    """Samples VmRSS of the given processes every `interval` seconds until stopped: {pid: peak bytes}."""

    def __init__(self, pids, interval=0.01):
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.peak = {pid: 0 for pid in pids}
        self.halt = threading.Event()

    def run(self):
        while not self.halt.wait(self.interval):
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], status_bytes(pid, "VmRSS"))

    def stop(self):
        self.halt.set()
        self.join(timeout=5)
        return self.peak


def status_bytes(pid, field):
    """A `kB` field of /proc/PID/status, in bytes (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


class Dechunker:
    """Turns the bytes of a chunked HTTP body into its payload, piece by piece."""

    def __init__(self):
        self.buffer = bytearray()
        self.done = False

    def feed(self, data):
        self.buffer += data
        pieces, pos, buf = [], 0, self.buffer
        while True:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            size = int(buf[pos:end].split(b";", 1)[0], 16)
            if size == 0:
                self.done = True
                break
            if end + 2 + size + 2 > len(buf):
                break
            pieces.append(bytes(buf[end + 2 : end + 2 + size]))
            pos = end + 2 + size + 2
        del buf[:pos]
        return b"".join(pieces)


def stream_export(server, api_key, fmt, seconds):
    """GET the export over one connection; returns (status, profile ids as bytes, lines, seconds, problems)."""
    path = f"/api/v1/segments/{SEGMENT}/members.{fmt}"
    request = get_request(server, path, api_key)[:-2] + b"Connection: close\r\n\r\n"
    pattern = NDJSON_ID if fmt == "ndjson" else CSV_ID
    ids, lines, problems, pending = [], 0, [], b""
    started = time.perf_counter()
    deadline = time.monotonic() + seconds
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = sock.recv(65536)
            if not data:
                break
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else load.CONNECTION_ERROR
        chunked = b"transfer-encoding: chunked" in head.lower()
        dechunk = Dechunker() if chunked else None
        data, first = rest, True
        while True:
            payload = dechunk.feed(data) if chunked else data
            if payload:
                block = pending + payload
                cut = block.rfind(b"\n") + 1
                complete, pending = block[:cut], block[cut:]
                if complete:
                    lines += complete.count(b"\n")
                    found = pattern.findall(complete)
                    if first and fmt == "csv":
                        header = complete.split(b"\r\n", 1)[0].decode()
                        if header != ",".join(CSV_COLUMNS):
                            problems.append(f"CSV header {header!r}")
                        found = found[1:]
                    first = False
                    sample = complete.split(b"\n", 1)[0]
                    if fmt == "ndjson" and not is_member_record(sample):
                        problems.append(f"NDJSON line {sample[:80]!r}")
                    ids += found
            if chunked and dechunk.done:
                break
            if time.monotonic() > deadline:
                problems.append(f"stopped after {seconds:g} s")
                break
            data = sock.recv(1 << 20)
            if not data:
                if chunked:
                    problems.append("the connection closed before the last chunk")
                break
    if pending:
        problems.append(f"an unterminated last line {pending[:80]!r}")
    return status, ids, lines, time.perf_counter() - started, problems


NDJSON_KEYS = {"profile_id", "user_id", "email", "anonymous_ids", "traits", "entered_at", "context"}


def is_member_record(line):
    """True when an NDJSON line is a JSON object with the keys of a member."""
    try:
        return set(json.loads(line)) == NDJSON_KEYS
    except (ValueError, TypeError):
        return False


def measure_export(server, api_key, fmt, expected, args):
    """One export on `server`: rate, the serving worker's RSS, and the exactly-once check."""
    workers = server.pids()[1:]
    before = {pid: (status_bytes(pid, "VmRSS"), cpu_ticks(pid)) for pid in workers}
    sampler = RssSampler(workers)
    sampler.start()
    cpu_before = _cpu()
    try:
        status, ids, lines, seconds, problems = stream_export(server, api_key, fmt, args.export_seconds)
    finally:
        peaks = sampler.stop()
    client_cpu = _cpu() - cpu_before
    serving = max(workers, key=lambda pid: cpu_ticks(pid) - before[pid][1])
    worker_cpu = (cpu_ticks(serving) - before[serving][1]) / os.sysconf("SC_CLK_TCK")
    unique = set(ids)
    header = 1 if fmt == "csv" else 0
    return {
        "format": fmt,
        "status": status,
        "rows": len(ids),
        "lines": lines,
        "seconds": seconds,
        "rate": len(ids) / seconds if seconds else 0.0,
        "client_cpu": client_cpu / seconds if seconds else 0.0,
        "worker_us": 1e6 * worker_cpu / max(len(ids), 1),
        "rss_before": before[serving][0],
        "rss_peak": max(peaks[serving], status_bytes(serving, "VmRSS")),
        "hwm": status_bytes(serving, "VmHWM"),
        "duplicates": len(ids) - len(unique),
        "lost": len(expected - unique),
        "foreign": len(unique - expected),
        "problems": problems + ([f"{lines} lines for {len(ids)} members"] if lines != len(ids) + header else []),
    }


def warm_up(server, api_key):
    """A few requests on fresh connections, so that both workers have served the API once."""
    asyncio.run(random_pages(server, api_key, [None], 12, 6, 30, seed=0))


# -- the run ----------------------------------------------------------------------------------------------
def run_database(kind, workdir, args):
    """Every measurement on one database; returns (page rows, walk check, export rows, profiles)."""
    page_rows, walk_check, export_rows, profiles = [], None, [], []
    with fresh_database(kind, workdir) as url:
        engine = make_engine(url)
        site = sites.create_site(engine, "bench", [])
        env = {"COHORTLY_DATABASE_URL": url}
        stored = 0
        for size in args.sizes:
            started = time.perf_counter()
            store_population(engine, population(site["site_id"], stored, size))
            stored = size
            expected = stored_ids(engine, site["site_id"])
            print(f"  {kind:10} {size:>9,} members stored ({time.perf_counter() - started:.1f} s)", flush=True)
            if size == args.members:
                with Gunicorn("core.app:create_app()", os.path.join(workdir, f"pages-{kind}.log"), env=env) as server:
                    page_rows, walk_check = measure_pages(server, site["api_key"], expected, args)
                    for row in page_rows:
                        print(
                            f"  {kind:10} {row['phase']}: members p50/p95 {row['members'][0]:.1f}/"
                            f"{row['members'][1]:.1f} ms, healthz {row['health'][0]:.1f}/{row['health'][1]:.1f} ms",
                            flush=True,
                        )
                    if args.profile:
                        profiles.append(
                            (
                                f"{kind}, random member pages, {args.concurrency} connections",
                                profile_pages(server, site["api_key"], expected, workdir, kind, args),
                            )
                        )
            rows, select_s = select_rate(engine, site["site_id"])  # once per size: the machine's time is short
            for fmt in ("ndjson", "csv"):
                log = os.path.join(workdir, f"export-{kind}-{size}-{fmt}.log")
                with Gunicorn("core.app:create_app()", log, env=env) as server:
                    warm_up(server, site["api_key"])
                    row = measure_export(server, site["api_key"], fmt, expected, args)
                    if args.profile and size == args.sizes[-1]:
                        profiles.append(
                            (
                                f"{kind}, {fmt} export of {size:,} members (one more, not counted)",
                                profile_export(server, site["api_key"], fmt, expected, row, workdir, kind, args),
                            )
                        )
                row.update(db=kind, size=size, select_rate=rows / select_s, select_rows=rows)
                export_rows.append(row)
                print(
                    f"  {kind:10} {fmt:6} {size:>9,}: {row['rate']:,.0f} rows/s (SELECT {row['select_rate']:,.0f}), "
                    f"RSS {row['rss_before'] / 2**20:.0f} → {row['rss_peak'] / 2**20:.0f} MiB, "
                    f"exactly once {exact(row)}",
                    flush=True,
                )
        engine.dispose()
    return page_rows, walk_check, export_rows, profiles


def profile_pages(server, api_key, expected, workdir, kind, args):
    """Random pages once more (not counted) under py-spy; the summary lines."""
    out = os.path.join(workdir, f"profile-{kind}-pages.txt")
    cursors = [None] + [members_cursor(pid) for pid in random.Random(3).sample(sorted(expected), 200)]
    with profile.sampling(server.process.pid, PROFILE_SECONDS, out):
        asyncio.run(random_pages(server, api_key, cursors, 100_000, args.concurrency, PROFILE_SECONDS, 4))
    return profile.summarise(out)


def profile_export(server, api_key, fmt, expected, measured, workdir, kind, args):
    """The same export once more (not counted) under py-spy, sampled for about as long as it took."""
    out = os.path.join(workdir, f"profile-{kind}-{fmt}.txt")
    with profile.sampling(server.process.pid, max(1, round(measured["seconds"])), out):
        stream_export(server, api_key, fmt, args.export_seconds)
    return profile.summarise(out)


def members_cursor(profile_id):
    from segmenter.reads.members import encode_cursor

    return encode_cursor(profile_id.decode())


def exact(row):
    return row["status"] == 200 and row["duplicates"] == row["lost"] == row["foreign"] == 0 and not row["problems"]


# -- the report -------------------------------------------------------------------------------------------
def page_table(results):
    lines = [
        "| database | phase | requests | subject p50 / p95 / p99 ms | healthz p50 / p95 / p99 ms "
        "| **p95 subject ÷ p95 healthz** | bare p95 vs ≤ 20 ms | non-200 |",
        "|---|---|---:|---|---|---:|---|---|",
    ]
    for kind, rows in results:
        for row in rows:
            m, h = row["members"], row["health"]
            verdict = "" if not row["target"] else ("met" if m[1] <= PAGE_P95_MS else "MISSED")
            lines.append(
                f"| {kind} | {row['phase']} | {row['requests']:,} | {m[0]:.1f} / {m[1]:.1f} / {m[2]:.1f} "
                f"| {h[0]:.1f} / {h[1]:.1f} / {h[2]:.1f} | **{m[1] / h[1]:.1f}×** | {m[1]:.1f} ms {verdict} "
                f"| {_bad(row['bad'])} |"
            )
    return "\n".join(lines)


def export_table(rows):
    lines = [
        "| database | format | members | export rows/s | plain SELECT rows/s | export ÷ SELECT "
        "| vs ≥ 50k rows/s | worker CPU µs/row | worker RSS before → peak (VmHWM) MiB "
        "| exactly once | load client CPU |",
        "|---|---|---:|---:|---:|---:|---|---:|---|---|---:|",
    ]
    for r in rows:
        verdict = "" if r["size"] < 100_000 else ("met" if r["rate"] >= EXPORT_ROWS_S else "MISSED")
        lines.append(
            f"| {r['db']} | {r['format']} | {r['size']:,} | {r['rate']:,.0f} | {r['select_rate']:,.0f} "
            f"| {r['rate'] / r['select_rate']:.2f} | {verdict} | {r['worker_us']:.0f} "
            f"| {r['rss_before'] / 2**20:.1f} → {r['rss_peak'] / 2**20:.1f} ({r['hwm'] / 2**20:.1f}) "
            f"| {'yes' if exact(r) else 'NO'} ({r['rows']:,}) | {r['client_cpu']:.0%} |"
        )
    return "\n".join(lines)


def memory_verdicts(rows):
    """(text, ok) per database and format: what the export added to its worker's RSS, largest size against
    the smallest (the idle RSS of a fresh worker varies by several MiB from one start to the next)."""
    found = []
    for key in dict.fromkeys((r["db"], r["format"]) for r in rows):
        sized = sorted((r for r in rows if (r["db"], r["format"]) == key), key=lambda r: r["size"])
        small, big = sized[0], sized[-1]
        added = [(r["rss_peak"] - r["rss_before"]) / 2**20 for r in (small, big)]
        ok = added[1] - added[0] <= FLAT_SLACK / 2**20
        found.append(
            (
                f"{key[0]} {key[1]}: the export added {added[0]:.1f} MiB to its worker at {small['size']:,} "
                f"members, {added[1]:.1f} MiB at {big['size']:,} ({'flat' if ok else 'GROWS'}; "
                f"slack {FLAT_SLACK / 2**20:.0f} MiB); peaks {small['rss_peak'] / 2**20:.1f} and "
                f"{big['rss_peak'] / 2**20:.1f} MiB",
                ok,
            )
        )
    return found


def _bad(bad):
    return ", ".join(f"{n} × {kind} {status or 'no answer'}" for (kind, status), n in sorted(bad.items())) or "0"


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n")[0])
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=int,
        default=[20_000, 100_000, 200_000],
        help="member counts the population grows through; each is exported",
    )
    parser.add_argument("--members", type=int, default=100_000, help="the size at which member pages are measured")
    parser.add_argument("--walk-pages", type=int, default=10_000, help="most pages of the cursor walk")
    parser.add_argument(
        "--random-pages", type=int, default=400, help="random pages one at a time (twice as many concurrently)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="connections of the concurrent page phase")
    parser.add_argument("--phase-seconds", type=float, default=90.0, help="hard limit of one page phase")
    parser.add_argument("--export-seconds", type=float, default=120.0, help="hard limit of one export")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the workers with py-spy during random pages and the largest exports",
    )
    args = parser.parse_args(argv)
    args.sizes = sorted(set(args.sizes) | {args.members})
    return args


def main(argv=None):
    args = parse_args(argv)
    print(f"machine: {machine()}")
    print(
        f"gunicorn: core/gunicorn_conf.py, 2 workers (gthread), started afresh per measurement; "
        f"segment {SEGMENT}, sizes {', '.join(f'{s:,}' for s in args.sizes)}; pages of {PAGE_SIZE} at "
        f"{args.members:,} members",
        flush=True,
    )
    pages, walks, exports, profiles = [], [], [], []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cohortly-bench-") as workdir:
        for kind in args.db:
            page_rows, walk_check, export_rows, found = run_database(kind, workdir, args)
            pages.append((kind, page_rows))
            walks.append((kind, walk_check))
            exports += export_rows
            profiles += found
    print(
        f"\nload average at the end: {os.getloadavg()[0]:.1f}; {time.monotonic() - started:.0f} s in all "
        f"(other work on the machine skews bare figures)\n"
    )
    print(f"## Member pages ({PAGE_SIZE} a page, {args.members:,} members)\n")
    print(page_table(pages))
    walk_ok = True
    for kind, check in walks:
        ok = check is not None and check["duplicates"] == check["foreign"] == 0 and check["lost"] in (0, None)
        walk_ok = walk_ok and ok
        verdict = (
            "FAILED"
            if not ok
            else "every member exactly once"
            if check["lost"] == 0
            else "no member twice, none foreign (stopped early: lost members not checked)"
        )
        print(f"\ncursor walk, {kind}: {verdict} {check}")
    print("\n## Exports (streamed, HTTP/1.1 chunked)\n")
    print(export_table(exports))
    print()
    verdicts = memory_verdicts(exports)
    for line, _ in verdicts:
        print(f"- {line}")
    for name, lines in profiles:
        print(f"\nprofile, {name} (share of all worker samples, inclusive):")
        print("\n".join(lines))
    checks = walk_ok and all(not row["bad"] for _, rows in pages for row in rows) and all(exact(r) for r in exports)
    targets = (
        all(row["members"][1] <= PAGE_P95_MS for _, rows in pages for row in rows if row["target"])
        and all(r["rate"] >= EXPORT_ROWS_S for r in exports if r["size"] >= 100_000)
        and all(ok for _, ok in verdicts)
    )
    print(f"\nchecks: {'hold' if checks else 'FAILED'}; targets: {'met' if targets else 'MISSED (see above)'}")
    return 0 if checks and targets else 1


if __name__ == "__main__":
    sys.exit(main())
