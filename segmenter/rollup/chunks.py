"""The rollup: fold a site's new events into facts, then judge the due profiles.

One rollup at a time per site (`core.locks.rollup_lock`: a PostgreSQL advisory
lock, an flock beside a SQLite file). Events are folded in chunks of up to `chunk_size`
events (on SQLite sized to hold the write lock about 2 s: see ChunkSizer), each in its
own transaction with the new watermark (compare-and-set, so even without the lock no event
is folded twice). Then the due profiles are judged from the committed facts, in batches by
profile id, each batch in its own transaction; a profile stays due until its batch commits.
So a rollup killed at any point and run again ends exactly where an uninterrupted one would.
"""

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from core import locks, planner, schema, sql
from core.db import write_engine
from core.schema import Event, Site
from core.times import now_ms
from segmenter.rollup import behaviours
from segmenter.rollup.fold import fold_chunk
from segmenter.rollup.judge import judge_defined, judge_site, make_everyone_due, segment_sizes
from segmenter.rules import definitions
from segmenter.rules.settings import load_settings

#: Largest chunk per dialect. A PostgreSQL chunk blocks nobody, and every profile a chunk touches
#: costs an upsert, so bigger chunks fold a backlog faster (measured: 1 chunk of 200k events in half
#: the time of 4 of 50k); a SQLite chunk holds the write lock (see ChunkSizer).
CHUNK_SIZE = {"sqlite": 50_000, "postgresql": 200_000}
CHUNK_SECONDS = 2.0  # SQLite: about how long a chunk may hold the write lock (the collector waits 5 s)
FIRST_SQLITE_CHUNK = 5_000
JUDGE_BATCH = {"sqlite": 5_000, "postgresql": 50_000}  # due profiles judged per transaction
REANALYZE_AFTER = 10_000  # profiles judged since the last ANALYZE
RUNS_KEPT = 10_000  # per site
events = Event.__table__
sites = Site.__table__
runs = schema.RollupRun.__table__
state = schema.RollupState.__table__
changes = schema.MembershipChange.__table__
facts = schema.ProfileFact.__table__
STATISTICS = [
    model.__table__
    for model in (schema.ProfileFact, schema.ProfileSession, schema.ProfileView, schema.CartLine, schema.Identity)
]


class WatermarkMoved(Exception):
    """Another rollup folded this site's events meanwhile (only possible without the lock)."""


class FoldFailed(Exception):
    """Folding the site's events lo < id <= hi failed (the chunk rolled back); `error` says why."""

    def __init__(self, lo, hi, error):
        super().__init__(f"events {lo + 1}..{hi}: {describe(error)}")
        self.lo, self.hi, self.error = lo, hi, error


def describe(error: BaseException) -> str:
    """One line about an error: the database's own message, without the SQL statement."""
    orig = getattr(error, "orig", None) or error
    return f"{type(orig).__name__}: {(str(orig).strip().splitlines() or [''])[0]}"


@dataclass
class RunSummary:
    """The outcome of one site's rollup. `status`: done, busy (another rollup holds the
    site) or failed (see `error`). Changes made: ids first_change_id..last_change_id."""

    site_id: int
    site_name: str
    status: str
    run_id: int | None = None
    now: int | None = None
    watermark_from: int = 0
    watermark_to: int = 0
    events_folded: int = 0
    events_read: int = 0
    profiles_evaluated: int = 0
    enters: int = 0
    exits: int = 0
    first_change_id: int | None = None
    last_change_id: int | None = None
    segments: dict = field(default_factory=dict)
    error: str | None = None
    changes_before: int = field(default=0, repr=False)  # the largest change id before the run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_rollup(
    engine: Engine,
    now: int | None = None,
    site_id: int | None = None,
    chunk_size: int | None = None,
    progress: Callable[[str, int], AbstractContextManager[Any]] | None = None,
) -> list[RunSummary]:
    """Roll up every site (or one): a list of RunSummary, one per site.

    `now` (epoch ms) defaults to the clock; pass it for backfills and tests. `chunk_size` (events per
    transaction) defaults to CHUNK_SIZE of the dialect.
    `progress(site_name, backlog)` may return a context manager with `update(events)`.

    >>> run_rollup(engine, now=1_700_000_000_000)  # doctest: +SKIP
    """
    with engine.connect() as conn:
        query = select(sites.c.id, sites.c.name).order_by(sites.c.id)
        if site_id is not None:
            query = query.where(sites.c.id == site_id)
        found = conn.execute(query).all()
    return [rollup_site(engine, sid, name, now, chunk_size, progress) for sid, name in found]


def rollup_site(
    engine: Engine,
    site_id: int,
    site_name: str,
    now: int | None = None,
    chunk_size: int | None = None,
    progress: Callable[[str, int], AbstractContextManager[Any]] | None = None,
) -> RunSummary:
    """Roll up one site under its lock; returns a RunSummary (status "busy" if locked)."""
    with locks.rollup_lock(engine, site_id) as held:
        if not held:
            return RunSummary(site_id, site_name, "busy")
        summary = RunSummary(site_id, site_name, "running")
        clock = (lambda: now) if now is not None else now_ms
        try:
            _start(engine, summary, clock())
            _fold_backlog(engine, summary, clock, chunk_size, progress)
            _judge(engine, summary, clock())
        except Exception as err:  # recorded in rollup_runs, reported by the CLI
            summary.status = "failed"
            summary.error = str(err) if isinstance(err, FoldFailed) else describe(err)
            if summary.run_id is not None:
                with write_engine(engine).begin() as conn:
                    _finish(conn, summary)
        return summary


def _start(engine, summary, started_at):
    with write_engine(engine).begin() as conn:
        stmt = sql.insert_ignoring_duplicates(conn, state, ["site_id"])
        conn.execute(stmt.values(site_id=summary.site_id, watermark=0))
        watermark = conn.scalar(select(state.c.watermark).where(state.c.site_id == summary.site_id))
        # We hold the site's lock: a run still marked running was killed.
        conn.execute(
            update(runs)
            .where(runs.c.site_id == summary.site_id, runs.c.status == "running")
            .values(status="interrupted")
        )
        summary.run_id = conn.execute(
            insert(runs).values(
                site_id=summary.site_id,
                status="running",
                started_at=started_at,
                watermark_from=watermark,
                watermark_to=watermark,
                events_folded=0,
                events_read=0,
                profiles_evaluated=0,
                enters=0,
                exits=0,
            )
        ).inserted_primary_key[0]
        summary.changes_before = conn.scalar(select(func.coalesce(func.max(changes.c.id), 0)))
    summary.watermark_from = summary.watermark_to = watermark


def _fold_backlog(engine, summary, clock, chunk_size, progress):
    behaviours.backfill(engine, summary.site_id, summary.watermark_to)  # new behaviours count the stored events
    ceiling = locks.safe_max_id(engine, events)
    if progress is not None:
        with engine.connect() as conn:
            backlog = conn.scalar(
                select(func.count()).where(
                    events.c.site_id == summary.site_id, events.c.id > summary.watermark_to, events.c.id <= ceiling
                )
            )
        bar = progress(summary.site_name, backlog)
    else:
        bar = nullcontext()
    dialect = engine.dialect.name
    sizes = ChunkSizer(chunk_size or CHUNK_SIZE.get(dialect, CHUNK_SIZE["sqlite"]), dialect)
    with bar:
        for chunk in itertools.count(1):
            size, started = sizes.next(), time.monotonic()
            try:
                folded = _fold_next_chunk(engine, summary, ceiling, size, clock())
            except FoldFailed as failed:
                _isolate(engine, summary, failed, clock())
                raise
            sizes.took(time.monotonic() - started)
            if progress is not None and folded:
                bar.update(folded)
            if folded < size:
                return
            if chunk & (chunk - 1) == 0:  # chunks 1, 2, 4, 8...: a backlog grows the tables fast
                planner.analyze(write_engine(engine), *STATISTICS)


class ChunkSizer:
    """How many events the next chunk takes. On SQLite a chunk holds the one write lock, which the
    collector waits for only `SQLITE_TIMEOUT` (5 s): chunks start small and adapt to take about
    CHUNK_SECONDS. PostgreSQL writers do not block each other: chunks are `chunk_size` from the start."""

    def __init__(self, chunk_size, dialect):
        self.largest = chunk_size
        self.target = None if dialect == "postgresql" else CHUNK_SECONDS
        self.size = chunk_size if self.target is None else min(chunk_size, FIRST_SQLITE_CHUNK)

    def next(self) -> int:
        return self.size

    def took(self, seconds: float) -> None:
        if self.target is None:
            return
        if seconds > self.target:
            self.size = max(1, self.size // 2)
        elif seconds < self.target / 3:
            self.size = min(self.largest, self.size * 2)


def _fold_next_chunk(engine, summary, ceiling, chunk_size, now):
    """Fold the next chunk in one transaction; returns how many events it held."""
    with write_engine(engine).begin() as conn:
        planner.without_jit(conn)
        lo = conn.scalar(select(state.c.watermark).where(state.c.site_id == summary.site_id).with_for_update())
        if lo != summary.watermark_to:
            raise WatermarkMoved(f"watermark moved from {summary.watermark_to} to {lo}")
        ids = (
            select(events.c.id)
            .where(events.c.site_id == summary.site_id, events.c.id > lo, events.c.id <= ceiling)
            .order_by(events.c.id)
            .limit(chunk_size)
            .subquery()
        )
        hi, count = conn.execute(select(func.max(ids.c.id), func.count())).one()
        if not count:
            if lo < ceiling:
                _advance(conn, summary, lo, ceiling)
            return 0
        try:
            folded = fold_chunk(conn, summary.site_id, lo, hi, now, summary.run_id)
            behaviours.count_chunk(conn, summary.site_id, lo, hi, rebuilt=folded.profiles_rebuilt > 0)
        except Exception as err:  # the transaction rolls back: nothing of the chunk stays
            raise FoldFailed(lo, hi, err) from err
        _advance(conn, summary, lo, hi)
        summary.events_folded += count
        summary.events_read += folded.events_read
        summary.exits += folded.merged_exits
        conn.execute(
            update(runs)
            .where(runs.c.id == summary.run_id)
            .values(watermark_to=hi, events_folded=summary.events_folded, events_read=summary.events_read)
        )
    return count


def _isolate(engine, summary, failed, now):
    """After a chunk failed: find the first event whose fold fails, fold the events before it and name it
    in `failed`. The site's watermark stays just below that event, so nothing is skipped or lost: each
    later run stops there again (cheaply: the first event is tried alone first) until the row is fixed
    or deleted. A failure that does not come back is reported with the chunk only."""
    lo = failed.lo
    ids = select(events.c.id).where(events.c.site_id == summary.site_id, events.c.id > lo, events.c.id <= failed.hi)
    with engine.connect() as conn:
        count = conn.scalar(select(func.count()).select_from(ids.subquery()))
    if not count:
        return

    def nth(n):  # the n-th (from 1) event id of the chunk
        with engine.connect() as conn:
            return conn.scalar(ids.order_by(events.c.id).offset(n - 1).limit(1))

    good, bad = 0, count  # folding up to the good-th event works, up to the bad-th fails
    if count > 1:
        good, bad = (0, 1) if _fold_fails(engine, summary, lo, nth(1), now) else (1, count)
    while bad - good > 1:
        middle = (good + bad) // 2
        if _fold_fails(engine, summary, lo, nth(middle), now):
            bad = middle
        else:
            good = middle
    bad_id, good_id = nth(bad), nth(good) if good else lo
    if bad == count and not _fold_fails(engine, summary, lo, bad_id, now):
        return  # it passed this time: a passing problem, not an event; the next run retries the chunk
    if good_id > lo:
        _fold_next_chunk(engine, summary, good_id, good, now)
    failed.args = (
        f"event {bad_id} could not be folded (chunk {lo + 1}..{failed.hi}): {describe(failed.error)}; "
        f"the site's events up to {good_id} are folded, its later events wait until that row is fixed "
        f"or deleted",
    )


def _fold_fails(engine, summary, lo, hi, now):
    """Whether folding the site's events lo < id <= hi fails; a trial, always rolled back."""
    with write_engine(engine).connect() as conn:
        trial = conn.begin()
        try:
            planner.without_jit(conn)
            fold_chunk(conn, summary.site_id, lo, hi, now, summary.run_id)
            return False
        except Exception:  # noqa: BLE001 - any failure is what is looked for
            return True
        finally:
            trial.rollback()


def _advance(conn, summary, lo, hi):
    moved = conn.execute(
        update(state).where(state.c.site_id == summary.site_id, state.c.watermark == lo).values(watermark=hi)
    ).rowcount
    if moved != 1:
        raise WatermarkMoved(f"watermark of site {summary.site_id} is no longer {lo}")
    summary.watermark_to = hi


def settings_fingerprint(settings: Mapping[str, int]) -> str:
    """A digest of the rules' version and the settings they use: when it changes, everyone is re-judged."""
    used = {name: settings[name] for name in definitions.settings_used(definitions.BUILT_IN)}
    text = json.dumps({"rules": definitions.RULES_VERSION, "settings": used}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _judge(engine, summary, now):
    """Judge the due profiles in batches (each its own transaction), then finish the run."""
    with engine.connect() as conn:
        settings = load_settings(conn.scalar(select(sites.c.settings).where(sites.c.id == summary.site_id)))
        known = conn.scalar(select(state.c.settings_hash).where(state.c.site_id == summary.site_id))
    fingerprint = settings_fingerprint(settings)
    if known != fingerprint:
        with write_engine(engine).begin() as conn:
            make_everyone_due(conn, summary.site_id)
    per_segment = {rule.name: {"enters": 0, "exits": 0} for rule in definitions.BUILT_IN}
    batch = JUDGE_BATCH.get(engine.dialect.name, JUDGE_BATCH["sqlite"])
    # Judging moves next_check_at and fills memberships. A site's first run (its memberships never
    # analyzed: the planner then guesses 1 row a segment and picks nested loops) and big batches
    # refresh the statistics, so the next batch and the next run plan on true sizes.
    first_run, unanalyzed = summary.watermark_from == 0, 0
    while True:
        if unanalyzed >= REANALYZE_AFTER or (first_run and unanalyzed):
            planner.analyze(write_engine(engine), facts, schema.Membership.__table__)
            unanalyzed = 0
        with write_engine(engine).begin() as conn:
            planner.without_jit(conn)
            result = judge_site(conn, summary.site_id, settings, now, summary.run_id, limit=batch)
            summary.profiles_evaluated += result.profiles_evaluated
            unanalyzed += result.profiles_evaluated
            summary.enters += result.enters
            summary.exits += result.exits
            for name, counts in result.per_segment.items():
                for key in counts:
                    per_segment[name][key] += counts[key]
            if result.profiles_evaluated == batch:  # maybe more are due
                continue
            if known != fingerprint:  # only once everyone has been judged by the new settings
                conn.execute(update(state).where(state.c.site_id == summary.site_id).values(settings_hash=fingerprint))
            defined = judge_defined(conn, summary.site_id, now, summary.run_id)
            summary.enters += defined.enters
            summary.exits += defined.exits
            per_segment.update(defined.per_segment)
            summary.now = now
            sizes = segment_sizes(conn, summary.site_id)
            minimum = settings["min_segment_size"]
            summary.segments = {
                name: {"members": sizes.get(name, 0), "too_small": sizes.get(name, 0) < minimum, **counts}
                for name, counts in per_segment.items()
            }
            summary.first_change_id, summary.last_change_id = conn.execute(
                select(func.min(changes.c.id), func.max(changes.c.id)).where(
                    changes.c.site_id == summary.site_id,
                    changes.c.id > summary.changes_before,
                    changes.c.run_id == summary.run_id,
                )
            ).one()
            summary.status = "done"
            _finish(conn, summary)
        if unanalyzed >= REANALYZE_AFTER or (first_run and unanalyzed):
            planner.analyze(write_engine(engine), facts, schema.Membership.__table__)
        return


def _finish(conn, summary):
    values = dict(
        status=summary.status,
        finished_at=now_ms(),
        now=summary.now,
        watermark_to=summary.watermark_to,
        events_folded=summary.events_folded,
        events_read=summary.events_read,
        profiles_evaluated=summary.profiles_evaluated,
        enters=summary.enters,
        exits=summary.exits,
        first_change_id=summary.first_change_id,
        last_change_id=summary.last_change_id,
        segments=summary.segments or None,
        error=summary.error,
    )
    conn.execute(update(runs).where(runs.c.id == summary.run_id).values(**values))
    oldest_kept = conn.scalar(
        select(runs.c.id).where(runs.c.site_id == summary.site_id).order_by(runs.c.id.desc()).offset(RUNS_KEPT).limit(1)
    )
    if oldest_kept is not None:
        conn.execute(runs.delete().where(runs.c.site_id == summary.site_id, runs.c.id <= oldest_kept))
