"""A fresh, migrated Cohortly database for one bench run, removed afterwards: a SQLite file or a PostgreSQL
schema of its own (the server and its other schemas are never touched)."""

import contextlib
import os
import sqlite3
import uuid
from urllib.parse import quote

from sqlalchemy import text

from core.db import make_engine, upgrade

PG_URL = os.environ.get(
    "COHORTLY_BENCH_PG_URL", os.environ.get("COHORTLY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
)


@contextlib.contextmanager
def fresh_database(kind, workdir, pg_url=PG_URL):
    """Yield the URL of an empty, migrated database of `kind` ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        url = f"sqlite:///{os.path.join(workdir, f'bench-{uuid.uuid4().hex[:8]}.db')}"
        _migrate(url)
        yield url
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    schema = f"cohortly_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{pg_url}{'&' if '?' in pg_url else '?'}options={quote(f'-csearch_path={schema}')}"
        _migrate(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _migrate(url):
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def versions(pg_url=PG_URL):
    """The versions of the databases, for the results: {"sqlite": ..., "postgresql": ...}."""
    found = {"sqlite": sqlite3.sqlite_version}
    try:
        engine = make_engine(pg_url)
        with engine.connect() as conn:
            found["postgresql"] = conn.scalar(text("SHOW server_version"))
        engine.dispose()
    except Exception as err:  # noqa: BLE001 - a missing server is reported, not fatal here
        found["postgresql"] = f"unavailable ({err.__class__.__name__})"
    return found


def bulk_load(engine, tables):
    """Load {table: (columns, rows)} in one transaction (COPY on PostgreSQL, executemany on SQLite), then
    ANALYZE those tables (only those: a database-wide ANALYZE locks other sessions' tables)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA cache_size=-524288")  # 512 MiB: a million rows into the indexes without thrashing
            cursor.execute("BEGIN")  # its connections are in autocommit mode (core.db)
        for table, (columns, rows) in tables.items():
            names = ", ".join(columns)
            if engine.dialect.name == "postgresql":
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" for _ in columns)
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        for table in tables:
            conn.execute(text(f'ANALYZE "{table}"'))
