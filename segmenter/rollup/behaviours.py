"""Counting behaviours: the events site-defined segments count, per profile and hour, in `behaviour_counts`.

A behaviour counts the events with `counted_to < id`: a new one starts at 0 and is backfilled from the stored
events before the next rollup folds (`backfill`); from then on each chunk adds its events (`count_chunk`), in
the fold's transaction. Every update adds or compares, so chunks and backfills may come in any order. When a
fold rebuilds profiles (a new identity link), their counts are recounted from their events (`recount`).
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    null,
    select,
    update,
)

from core import schema, sql
from core.db import write_engine
from segmenter.rollup import fold
from segmenter.rollup.fold_sql import HI, LO, SITE
from segmenter.rollup.scratch import fold_affected
from segmenter.rules.definitions import HOUR
from segmenter.rules.site_sql import event_matches, measured

events = schema.Event.__table__
behaviours = schema.Behaviour.__table__
counts = schema.BehaviourCount.__table__
BACKFILL_BATCH = 200_000  # events read per backfill transaction


def of_site(conn: Connection, site_id: int) -> list[dict[str, Any]]:
    """The site's behaviours: id, event, where, property, counted_to."""
    rows = conn.execute(select(behaviours).where(behaviours.c.site_id == site_id).order_by(behaviours.c.id))
    return [dict(row._mapping) for row in rows]


def ids_by_key(conn: Connection, site_id: int) -> dict[str, int]:
    """{behaviour key: counter id} of the site."""
    return dict(conn.execute(select(behaviours.c.key, behaviours.c.id).where(behaviours.c.site_id == site_id)).all())


def catch_up(conn: Connection, site_id: int, watermark: int) -> None:
    """In the caller's transaction, count the events up to `watermark` for the behaviours behind it."""
    for behaviour in of_site(conn, site_id):
        if behaviour["counted_to"] < watermark:
            params = {"site": site_id, "lo": behaviour["counted_to"], "hi": watermark}
            _count(conn, behaviour, params, and_(events.c.id > LO, events.c.id <= HI))
            conn.execute(update(behaviours).where(behaviours.c.id == behaviour["id"]).values(counted_to=watermark))


def backfill(engine: Engine, site_id: int, watermark: int) -> int:
    """Count the stored events up to `watermark` for every behaviour not caught up with it; returns how many
    behaviours were brought up to date. Runs under the site's rollup lock, before the chunks fold."""
    with engine.connect() as conn:
        behind = [b for b in of_site(conn, site_id) if b["counted_to"] < watermark]
    for behaviour in behind:
        done = behaviour["counted_to"]
        while done < watermark:
            upto = min(watermark, done + BACKFILL_BATCH)
            with write_engine(engine).begin() as conn:
                chunk = and_(events.c.id > LO, events.c.id <= HI)
                _count(conn, behaviour, {"site": site_id, "lo": done, "hi": upto}, chunk)
                conn.execute(update(behaviours).where(behaviours.c.id == behaviour["id"]).values(counted_to=upto))
            done = upto
    return len(behind)


def count_chunk(conn: Connection, site_id: int, lo: int, hi: int, rebuilt: bool) -> None:
    """In a fold's transaction: recount the rebuilt profiles, then add the chunk's events (lo < id <= hi) for
    the behaviours caught up to `lo`, which are then counted to `hi`."""
    found = of_site(conn, site_id)
    if not found:
        return
    params = {"site": site_id, "lo": lo, "hi": hi}
    if rebuilt:
        _recount(conn, found, params)
    ready = [b for b in found if b["counted_to"] >= lo]
    for behaviour in ready:
        _count(conn, behaviour, params, and_(events.c.id > LO, events.c.id <= HI))
    if ready:
        ids = [b["id"] for b in ready]
        conn.execute(update(behaviours).where(behaviours.c.id.in_(ids)).values(counted_to=hi))


def _recount(conn: Connection, found: Sequence[dict[str, Any]], params: dict[str, int]) -> None:
    """The profiles the fold rebuilds lose their counts and are counted again from their stored events, up to
    what each behaviour has counted."""
    affected = select(fold_affected.c.profile_id)
    conn.execute(delete(counts).where(counts.c.site_id == SITE, counts.c.profile_id.in_(affected)), params)
    for behaviour in found:
        upto = min(params["lo"], behaviour["counted_to"])
        _count(conn, behaviour, {**params, "hi": upto}, and_(events.c.id <= HI, fold.rebuild_scope()))


def _count(conn: Connection, behaviour: dict[str, Any], params: dict[str, int], where: ColumnElement[bool]) -> None:
    dialect = conn.dialect.name
    joined, profile = fold.resolved_events()
    hundredths, value = measured(dialect, behaviour)
    at = fold.event_time()
    hour = case((at >= 0, at // HOUR), else_=(at - HOUR + 1) // HOUR)
    rows = (
        select(
            SITE,
            literal(behaviour["id"], BigInteger),
            profile.label("profile_id"),
            hour.label("hour"),
            func.count(),
            sql.bounded_sum(dialect, hundredths) if behaviour["property"] else cast(null(), BigInteger),
            func.min(value),
            func.max(value),
        )
        .select_from(joined)
        .where(
            events.c.site_id == SITE,
            events.c.is_bot.is_(False),
            where,
            event_matches(dialect, behaviour),
            profile.is_not(None),
        )
        .group_by(profile, hour)
    )
    columns = ["site_id", "behaviour_id", "profile_id", "hour", "count", "sum_hundredths", "min_value", "max_value"]
    insert = sql.dialect_insert(dialect, counts).from_select(columns, rows)
    new = insert.excluded
    total = func.coalesce(counts.c.sum_hundredths, 0) + func.coalesce(new.sum_hundredths, 0)
    upsert = insert.on_conflict_do_update(
        index_elements=["site_id", "behaviour_id", "profile_id", "hour"],
        set_={
            "count": sql.clamp(counts.c["count"] + new["count"], 0, sql.INT_MAX),
            "sum_hundredths": case(
                (and_(counts.c.sum_hundredths.is_(None), new.sum_hundredths.is_(None)), None),
                else_=sql.clamp(total, -sql.MONEY_MAX_CENTS, sql.MONEY_MAX_CENTS),
            ),
            "min_value": sql.least(dialect, counts.c.min_value, new.min_value),
            "max_value": sql.greatest(dialect, counts.c.max_value, new.max_value),
        },
    )
    conn.execute(upsert, params)
