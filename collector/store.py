"""All SQL of ingestion: event and bad-row inserts, bad-row reads, event counts (sites and keys: `core.sites`)."""

import json

from sqlalchemy import delete, func, insert, select

from core.schema import BadRow, DashboardSession, Event, Site
from core.sql import insert_rows_ignoring_duplicates, one_statement

events = Event.__table__
bad_rows = BadRow.__table__
sites = Site.__table__
dashboard_sessions = DashboardSession.__table__
PAYLOAD_KEEP = 4096


def store_messages(engine, site_id, rows, rejected, received_at, keep_bad_rows):
    """Insert accepted rows (ignoring duplicates) and rejected ones, in one transaction.

    Returns how many rows were new. `rejected` is a list of (reason dict, raw message).
    """
    if rows and not rejected:  # the common request: one INSERT
        with one_statement(engine) as conn:
            return insert_rows_ignoring_duplicates(conn, events, rows, ["site_id", "message_id"])
    with engine.begin() as conn:
        stored = 0
        if rows:
            stored = insert_rows_ignoring_duplicates(conn, events, rows, ["site_id", "message_id"])
        if rejected:
            conn.execute(
                insert(bad_rows),
                [
                    {"site_id": site_id, "received_at": received_at, "reason": reason, "payload": _payload(raw)}
                    for reason, raw in rejected
                ],
            )
            _prune_bad_rows(conn, site_id, keep_bad_rows)
    return stored


def _payload(raw):
    try:
        text_ = json.dumps(raw, ensure_ascii=True)
    except (TypeError, ValueError):
        text_ = repr(raw)
    return text_[:PAYLOAD_KEEP]


def _prune_bad_rows(conn, site_id, keep):
    cutoff = conn.scalar(
        select(bad_rows.c.id).where(bad_rows.c.site_id == site_id).order_by(bad_rows.c.id.desc()).offset(keep).limit(1)
    )
    if cutoff is not None:
        conn.execute(delete(bad_rows).where(bad_rows.c.site_id == site_id, bad_rows.c.id <= cutoff))


def recent_bad_rows(engine, site_id, limit=100):
    """The newest bad rows of a site."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(bad_rows).where(bad_rows.c.site_id == site_id).order_by(bad_rows.c.id.desc()).limit(limit)
        )
        return [dict(row._mapping) for row in rows]


def count_events(engine, site_id=None):
    """How many events are stored (for one site, or all)."""
    stmt = select(func.count()).select_from(events)
    if site_id is not None:
        stmt = stmt.where(events.c.site_id == site_id)
    with engine.connect() as conn:
        return conn.scalar(stmt)
