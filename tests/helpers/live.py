"""A real collector process for end-to-end tests, and polling with a deadline."""

import os
import signal
import socket
import subprocess
import sys
import time

import requests
from sqlalchemy import select

from core import sites
from core.db import make_engine
from core.schema import BadRow, Event

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUNICORN_CONF = os.path.join(ROOT, "core", "gunicorn_conf.py")


def wait_for(predicate, timeout=15.0, interval=0.05, message="condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveCollector:
    """gunicorn serving `core.app:create_app()` over `database_url`; stop() and start() keep the port."""

    def __init__(self, database_url, log_path, workers=2, env=None):
        self.database_url = database_url
        self.log_path = log_path
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.process = None
        self.engine = make_engine(database_url)

    def start(self):
        env = dict(
            os.environ,
            COHORTLY_DATABASE_URL=self.database_url,
            COHORTLY_BIND=f"127.0.0.1:{self.port}",
            COHORTLY_WORKERS=str(self.workers),
            **self.extra_env,
        )
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, "core.app:create_app()"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        try:
            wait_for(self._healthy, timeout=30, message=f"gunicorn on {self.url} (log: {self.log_path})")
        except BaseException:
            self.stop(signal.SIGKILL)
            raise

    def _healthy(self):
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, sig=signal.SIGTERM):
        """Stop gunicorn (SIGTERM: graceful; SIGKILL: the whole process group at once)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)
        self.process = None

    def close(self):
        self.stop()
        self.engine.dispose()

    def create_site(self, name="shop", origins=()):
        """A new site with its keys: site_id, write_key, api_key."""
        return sites.create_site(self.engine, name, list(origins))

    def events(self, site_id=None):
        """The stored events, oldest first, as dicts."""
        stmt = select(Event.__table__).order_by(Event.id)
        if site_id is not None:
            stmt = stmt.where(Event.site_id == site_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def bad_rows(self, site_id=None):
        """The stored bad rows as dicts."""
        stmt = select(BadRow.__table__).order_by(BadRow.id)
        if site_id is not None:
            stmt = stmt.where(BadRow.site_id == site_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def wait_for(self, predicate, timeout=15.0, message="condition"):
        return wait_for(predicate, timeout=timeout, message=message)
