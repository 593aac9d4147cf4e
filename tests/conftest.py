"""Fixtures over a real database: a SQLite file, or PostgreSQL when COHORTLY_TEST_DB=postgresql; and the layer
markers, which a test takes from its folder: tests/unit, tests/integration, tests/e2e or tests/reliability."""

import contextlib
import os
import pathlib
import shutil
import uuid
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from core import sites
from core.app import create_app
from core.db import make_engine, upgrade
from core.schema import Base
from tests.helpers.live import LiveCollector
from tests.helpers.receiver import Receiver

BACKEND = os.environ.get("COHORTLY_TEST_DB", "sqlite")
PG_URL = os.environ.get("COHORTLY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


#: The layers of the suite, fastest first: each is a folder under tests/ and the marker its tests get.
LAYERS = ("unit", "integration", "e2e", "reliability")
TESTS = pathlib.Path(__file__).resolve().parent


def pytest_report_header(config):
    return f"cohortly database backend: {BACKEND}"


def layer_of(path):
    """The layer of a test file: its top folder under tests/ (None outside the four)."""
    parts = pathlib.Path(path).resolve().relative_to(TESTS).parts
    return parts[0] if len(parts) > 1 and parts[0] in LAYERS else None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    """Marks every test with the layer of its folder, so that `pytest -m "unit or integration"` selects by folder."""
    for item in items:
        layer = layer_of(item.path)
        if layer:
            item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture(scope="session")
def template_url(tmp_path_factory):
    """A migrated database made once per run: a SQLite file to copy, or a PostgreSQL schema to truncate."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "cohortly.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        yield str(path)
        return
    if BACKEND != "postgresql":
        raise RuntimeError(f"COHORTLY_TEST_DB must be sqlite or postgresql, not {BACKEND!r}")
    with pg_schema("cohortly_test") as url:  # fails the run (no skip) when PostgreSQL is down
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@contextlib.contextmanager
def pg_schema(prefix):
    """The URL of a new, empty PostgreSQL schema of its own, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def blank_database_url(tmp_path):
    """The URL of an empty database without any table (for migrations from an old schema)."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with pg_schema("cohortly_blank") as url:
        yield url


def fresh_database(template_url, directory):
    """An empty, migrated database: a copy of the SQLite template in `directory`, or the truncated schema."""
    if BACKEND == "sqlite":
        path = directory / "cohortly.db"
        shutil.copy(template_url, path)
        return f"sqlite:///{path}"
    engine = make_engine(template_url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return template_url


@pytest.fixture
def database_url(template_url, tmp_path):
    """The URL of an empty, migrated database for one test."""
    return fresh_database(template_url, tmp_path)


@pytest.fixture
def engine(database_url):
    """An engine on the test's database."""
    from core.db import make_engine as _make

    eng = _make(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def app(database_url):
    """The collector app on the test's database."""
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})
    yield app
    app.extensions["cohortly_engine"].dispose()


@pytest.fixture
def client(app):
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def site(engine):
    """A site allowing https://shop.example, with its keys."""
    return sites.create_site(engine, "shop", ["https://shop.example"])


@pytest.fixture
def runner(database_url, monkeypatch):
    """A CLI runner whose commands use the test's database."""
    monkeypatch.setenv("COHORTLY_DATABASE_URL", database_url)
    return CliRunner()


@pytest.fixture
def live_collector(database_url, tmp_path):
    """A real collector under gunicorn (2 workers) on a free port, stopped after the test."""
    server = LiveCollector(database_url, tmp_path / "gunicorn.log")
    server.start()
    yield server
    server.close()


@pytest.fixture
def receiver():
    """A running webhook receiver on this host, stopped after the test."""
    found = Receiver()
    found.start()
    yield found
    found.stop()
