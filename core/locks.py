"""Locks that differ between SQLite and PostgreSQL: safe id watermarks, ordered ids, the rollup lock of a site."""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, Table, func, literal, select, text


def safe_max_id(engine: Engine, table: Table, lock_timeout: float = 5.0) -> int:
    """The largest id of `table` below which no insert is still in flight.

    PostgreSQL commits out of id order; briefly taking SHARE on the table waits for the
    inserts in flight, and later inserts draw larger ids (the id sequence has no cache).
    SQLite has one writer at a time, so its max(id) is already safe. Raises if the table stays
    locked by another writer for `lock_timeout` seconds (the caller retries later).
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Waiting behind a long writer (a purge) would queue every insert behind us: give up instead.
            conn.execute(text(f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'"))
            conn.execute(text(f'LOCK TABLE "{table.name}" IN SHARE MODE'))
        return conn.scalar(select(func.coalesce(func.max(table.c.id), 0)))


def lock_for_ordered_ids(conn: Connection, table: Table) -> None:
    """Make this transaction's inserts into `table` the only ones in flight until it ends,
    so that ids become visible in ascending order (readers may use them as a cursor)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f'LOCK TABLE "{table.name}" IN SHARE ROW EXCLUSIVE MODE'))


@contextmanager
def rollup_lock(engine: Engine, site_id: int) -> Iterator[bool]:
    """Try to hold the rollup lock of a site across processes and hosts; yields True if held.

    PostgreSQL: a session advisory lock on a dedicated connection, keyed by the schema too
    (advisory locks are database-wide). SQLite: an flock on a file beside the database
    (released by the OS if the process dies).
    """
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        held = False
        key = func.hashtextextended(func.current_schema() + literal(f"/cohortly-rollup/{site_id}"), 0)
        try:
            held = bool(conn.scalar(select(func.pg_try_advisory_lock(key))))
            conn.commit()
            yield held
        finally:
            try:
                if held:
                    conn.scalar(select(func.pg_advisory_unlock(key)))
                    conn.commit()
            except Exception:
                conn.invalidate()  # a dropped session has released its locks anyway
                raise
            finally:
                conn.close()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield True
        return
    fd = os.open(f"{database}.rollup-{site_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
