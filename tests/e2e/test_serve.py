"""`cohortly serve` and `gunicorn wsgi:app` start a real server; serve migrates an empty database; serve keeps
answering while slow clients trickle their requests, and drops those after READ_TIMEOUT."""

import base64
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from sqlalchemy import select as sql_select

from core import sites
from core.db import make_engine
from core.schema import Event
from tests.helpers.live import ROOT, free_port, wait_for


def healthy(url, process):
    assert process.poll() is None, "the server exited"
    try:
        return requests.get(url + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize(
    "command",
    [
        lambda port: [
            os.path.join(os.path.dirname(sys.executable), "cohortly"),
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        lambda port: [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
    ],
    ids=["cohortly-serve", "gunicorn-wsgi"],
)
def test_server_starts_and_answers(command, tmp_path, database_url):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = dict(os.environ, COHORTLY_DATABASE_URL=fresh if "serve" in command(port) else database_url)
    process = subprocess.Popen(
        command(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for(lambda: healthy(url, process), timeout=30, message="the server")
        answer = requests.post(url + "/v1/batch", json={"batch": []}, auth=("wk_unknown", ""), timeout=5)
        assert answer.status_code == 401  # tables exist: the key was looked up
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


SLOW_CLIENTS = 50
READ_TIMEOUT = 12


class SlowClients:
    """Sockets that send a POST's headers, then its body one byte at a time (`trickling`) or not at all."""

    def __init__(self, url, write_key, count):
        host, port = url.rsplit("/", 1)[1].split(":")
        auth = base64.b64encode(f"{write_key}:".encode()).decode()
        head = (
            f"POST /v1/batch HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Basic {auth}\r\nContent-Length: 100000\r\n\r\n"
        ).encode()
        self.sockets = []
        for index in range(count):
            # The stalled ones send a whole valid batch but announce more: a truncated body is never acted on.
            message = {"type": "track", "event": "Slow", "anonymousId": "slow", "messageId": f"slow-{index}"}
            body = b'{"batch": [' if index % 2 == 0 else json.dumps({"batch": [message]}).encode()
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(head + body)
            self.sockets.append(sock)
        self.closed = set()
        self.answers = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self):
        while not self.stop.wait(0.5):
            for index, sock in enumerate(self.sockets[::2]):  # every other one trickles; the rest stall
                try:
                    sock.send(b" ")
                except OSError:
                    self.closed.add(index * 2)

    def open_ones(self):
        """How many the server has not closed (a readable socket that reads as EOF or a reset is closed)."""
        readable, _, _ = select.select([s for i, s in enumerate(self.sockets) if i not in self.closed], [], [], 0)
        for sock in readable:
            index = self.sockets.index(sock)
            try:
                while chunk := sock.recv(65536, socket.MSG_DONTWAIT):
                    self.answers[index] = self.answers.get(index, b"") + chunk
            except BlockingIOError:
                continue
            except OSError:
                pass
            self.closed.add(index)
        return len(self.sockets) - len(self.closed)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        for sock in self.sockets:
            sock.close()


def answered(call):
    try:
        return call().status_code
    except requests.RequestException:
        return None


def test_serve_keeps_answering_with_50_slow_clients_and_drops_them_after_the_read_timeout(tmp_path, database_url):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    engine = make_engine(database_url)
    site = sites.create_site(engine, "shop", [])
    env = dict(os.environ, COHORTLY_DATABASE_URL=database_url, COHORTLY_READ_TIMEOUT=str(READ_TIMEOUT))
    command = [
        os.path.join(os.path.dirname(sys.executable), "cohortly"),
        "serve",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with open(tmp_path / "serve.log", "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    slow = None
    try:
        wait_for(lambda: healthy(url, process), timeout=30, message="the server")
        slow = SlowClients(url, site["write_key"], SLOW_CLIENTS)
        started = time.monotonic()
        batch = {"batch": [{"type": "track", "event": "Product Viewed", "anonymousId": "quick", "messageId": "m1"}]}
        post = wait_for(
            lambda: answered(
                lambda: requests.post(url + "/v1/batch", json=batch, auth=(site["write_key"], ""), timeout=2)
            ),
            timeout=8,
            message="the batch answered",
        )
        health = wait_for(
            lambda: answered(lambda: requests.get(url + "/healthz", timeout=2)), timeout=8, message="/healthz answered"
        )
        assert (post, health) == (200, 200)
        assert time.monotonic() - started < READ_TIMEOUT  # answered while the slow ones were still connected
        assert slow.open_ones() == SLOW_CLIENTS
        # Trickling or stalled, each is cut off once its request has taken READ_TIMEOUT seconds.
        wait_for(lambda: slow.open_ones() == 0, timeout=READ_TIMEOUT + 30, message="the slow clients disconnected")
        statuses = {answer.split(b"\r\n", 1)[0] for answer in slow.answers.values()}
        assert statuses == {b"HTTP/1.1 408 REQUEST TIMEOUT"} and len(slow.answers) == SLOW_CLIENTS, slow.answers
        assert all(b'"request_timeout"' in answer for answer in slow.answers.values())
        assert time.monotonic() - started >= READ_TIMEOUT * 0.9
        assert answered(lambda: requests.get(url + "/healthz", timeout=5)) == 200
        with engine.connect() as conn:
            events = conn.execute(sql_select(Event.__table__.c.message_id)).scalars().all()
        assert events == ["m1"]  # the cut-off bodies stored nothing, not even the whole batches in them
    finally:
        if slow:
            slow.close()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        engine.dispose()
