"""Fixtures of the reliability suite: a live collector, and one whose database a test can take away."""

import os

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from tests.conftest import BACKEND
from tests.helpers.live import LiveCollector
from tests.helpers.tcp_proxy import TcpProxy
from tests.reliability.helpers import BackgroundLoad

# The load client is one address standing for many visitors: the per-client limit (tested in
# test_rate_limit.py) would turn these load tests into tests of 429s.
ONE_CLIENT_MANY_VISITORS = {"COHORTLY_CLIENT_RATE_LIMIT": "0"}

settings.register_profile(
    "reliability",
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=bool(os.environ.get("CI")),  # CI repeats the same examples; a developer's run explores new ones
)


@pytest.fixture
def start_load():
    """start_load(collector, write_key, prefix, seconds, ...) -> a started BackgroundLoad, closed after the test."""
    started = []

    def start(*args, **kwargs):
        background = BackgroundLoad(*args, **kwargs)
        started.append(background)
        return background.start()

    yield start
    for background in started:
        background.close()


@pytest.fixture
def collector(database_url, tmp_path):
    """A real collector (gunicorn, 2 workers, default settings but no per-client limit) on the test's database."""
    server = LiveCollector(database_url, tmp_path / "gunicorn.log", env=ONE_CLIENT_MANY_VISITORS)
    yield server
    server.close()


@pytest.fixture
def outage(database_url, tmp_path):
    """(collector, cut, restore): a running collector whose database a test can take away and give back.

    PostgreSQL: the collector reaches the server through a TCP proxy that cut() closes (the real server,
    which others use, keeps running). SQLite: cut() holds an exclusive lock from another connection.
    """
    if BACKEND == "postgresql":
        url = make_url(database_url)
        proxy = TcpProxy(url.host, url.port or 5432)
        proxy.start()
        through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        server = LiveCollector(through_proxy, tmp_path / "gunicorn.log", env=ONE_CLIENT_MANY_VISITORS)
        yield server, proxy.stop, proxy.start
        server.close()
        proxy.stop()
        return
    path = make_url(database_url).database
    holder = create_engine(f"sqlite:///{path}", isolation_level="AUTOCOMMIT", connect_args={"timeout": 30})
    conn = holder.connect()
    server = LiveCollector(
        database_url, tmp_path / "gunicorn.log", env={"COHORTLY_SQLITE_TIMEOUT": "0.3", **ONE_CLIENT_MANY_VISITORS}
    )

    def cut():
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        conn.exec_driver_sql(
            "INSERT INTO sites (name, write_key, api_key_hash, origins, settings, created_at) "
            "VALUES ('lock', 'lock', 'lock', '[]', '{}', 0)"
        )

    def restore():
        conn.exec_driver_sql("ROLLBACK")

    yield server, cut, restore
    server.close()
    conn.close()
    holder.dispose()
