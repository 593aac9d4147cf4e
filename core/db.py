"""The database engine of an app, its SQLite settings and schema migrations."""

import os

from alembic import command
from alembic.config import Config
from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

MIGRATIONS = os.path.join(os.path.dirname(__file__), "migrations")


def make_engine(url: str, sqlite_timeout: float = 5.0) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout (seconds) and explicit BEGINs."""
    if url.startswith("sqlite"):
        _create_database_file(make_url(url).database)
        engine = create_engine(url, connect_args={"timeout": sqlite_timeout})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _create_database_file(path):
    """Create a missing SQLite file readable by its owner only: SQLite gives its -wal and -shm files the
    database file's mode, and would create it world-readable (0644 under the usual umask)."""
    if not path or path == ":memory:" or path.startswith("file:") or os.path.exists(path):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:  # created meanwhile by another process
        pass
    except FileNotFoundError:  # no such directory: SQLite reports it on connect
        pass


def write_private(path: str, text: str) -> None:
    """Write `text` to `path`, readable by its owner only (0600; a new directory 0700): for files holding keys."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def _sqlite_connect(dbapi_connection, _record):
    # Let SQLAlchemy's "begin" event decide the transaction kind (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA temp_store=MEMORY")  # the rollup's scratch tables
    cursor.execute("PRAGMA analysis_limit=1000")  # ANALYZE samples: cheap also on big tables
    cursor.close()


def _sqlite_begin(conn):
    # `engine.execution_options(sqlite_begin="IMMEDIATE")` takes the write lock up front,
    # so a read-then-write transaction never fails with SQLITE_BUSY half-way.
    conn.exec_driver_sql("BEGIN " + conn.get_execution_options().get("sqlite_begin", ""))


def write_engine(engine: Engine) -> Engine:
    """The engine to use for a transaction that reads, then writes."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="IMMEDIATE")
    return engine


def alembic_config() -> Config:
    """Alembic's configuration pointing at the package's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (Alembic)."""
    cfg = alembic_config()
    with write_engine(engine).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def is_empty(engine: Engine) -> bool:
    """True when the database holds no Cohortly tables yet."""
    return not inspect(engine).has_table("sites")


def get_engine() -> Engine:
    """The current app's engine."""
    return current_app.extensions["cohortly_engine"]


def connection() -> Connection:
    """The request's one database connection, opened on first use, closed when the request ends.

    Authentication, settings, the size check and the page share it: each pool checkout costs a pre-ping on
    PostgreSQL and a BEGIN/ROLLBACK on SQLite (0.4-0.8 ms), and a member page took four.
    """
    if "db" not in g:
        g.db = get_engine().connect()
    return g.db


def close_connection(_error: BaseException | None = None) -> None:
    """Give the request's connection back to the pool (at the request's end, or before a long stream)."""
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_app(app: Flask) -> None:
    """Create the app's engine from its configuration."""
    url = app.config["DATABASE_URL"] or _default_url(app)
    app.config["DATABASE_URL"] = url
    app.extensions["cohortly_engine"] = make_engine(url, app.config["SQLITE_TIMEOUT"])
    app.teardown_request(close_connection)


def _default_url(app):
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    return "sqlite:///" + os.path.join(app.instance_path, "cohortly.db")
