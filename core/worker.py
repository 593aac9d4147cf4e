"""gunicorn's threaded worker with a deadline on reading each request, for `cohortly serve`.

gthread hands a connection to a thread once its first bytes arrive; the thread then reads the headers and the
body with blocking reads. A client that trickles its body holds that thread for as long as it likes, so a few
dozen slow clients used to stop the worker from answering anyone. Here every request must arrive whole within
READ_TIMEOUT seconds of its first read (a total deadline, not a per-read timeout, so one byte a second does
not keep it alive). When the time is up, a half-read header reads as end-of-file (gunicorn drops the
connection quietly); a body the app is reading raises werkzeug's RequestTimeout, so the app answers 408 in
the one error shape, never acting on a truncated body; then the connection is closed. Sending the
answer is not bounded here (a slow reader of a big export is a legitimate client).
"""

import os
import time

from gunicorn.http.message import Request
from gunicorn.workers.gthread import TConn, ThreadWorker
from werkzeug.exceptions import RequestTimeout

from core.settings import SETTINGS


class DeadlineSocket:
    """A socket whose reads stop at `deadline` (see `_too_late`); everything else passes through."""

    def __init__(self, sock, read_timeout):
        self._sock = sock
        self._read_timeout = read_timeout
        self._timeout = sock.gettimeout()  # what gunicorn asked for (None: blocking, 0.0: non-blocking)
        self.deadline = None
        self.expired = False
        self.in_app = False  # reads now come from the app (the body), not from gunicorn's parser

    def start(self) -> None:
        """A new request: its clock starts at the first read."""
        self.deadline = None
        self.expired = False

    def recv(self, size: int, *flags: int) -> bytes:
        if self._timeout == 0.0:  # gunicorn's own non-blocking peeks are not requests' reads
            return self._sock.recv(size, *flags)
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self._read_timeout
        remaining = self.deadline - now
        if remaining <= 0:
            return self._too_late()
        self._sock.settimeout(remaining if self._timeout is None else min(remaining, self._timeout))
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            if time.monotonic() >= self.deadline:
                return self._too_late()
            raise  # gunicorn's own, shorter timeout (a bounded drain): its caller handles it
        finally:
            self._sock.settimeout(self._timeout)

    def _too_late(self):
        self.expired = True
        if self.in_app:
            raise RequestTimeout(f"The request did not arrive whole within {self._read_timeout:g} seconds.")
        return b""

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0
        self._sock.setblocking(flag)

    def gettimeout(self) -> float | None:
        return self._timeout

    def __getattr__(self, name):
        return getattr(self._sock, name)


class ReadDeadlineWorker(ThreadWorker):
    """gthread, with READ_TIMEOUT on reading each request (see the module's docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_timeout = float(os.environ.get("COHORTLY_READ_TIMEOUT", SETTINGS["READ_TIMEOUT"][0]))

    def handle(self, conn: TConn) -> object:
        if not self.cfg.is_ssl:  # TLS sockets cannot be wrapped; terminate TLS in a proxy in front
            if not isinstance(conn.sock, DeadlineSocket):
                conn.sock = DeadlineSocket(conn.sock, self.read_timeout)
                unreader = getattr(conn.parser, "unreader", None)
                if unreader is not None and hasattr(unreader, "sock"):  # gunicorn < 23 made the parser earlier
                    unreader.sock = conn.sock
            conn.sock.start()
        keep_alive = super().handle(conn)
        if keep_alive and isinstance(conn.sock, DeadlineSocket) and conn.sock.expired:
            return False  # the rest of a timed-out body is still on its way: close rather than parse it
        return keep_alive

    def handle_request(self, req: Request, conn: TConn) -> bool:
        deadline_socket = conn.sock if isinstance(conn.sock, DeadlineSocket) else None
        if deadline_socket:
            deadline_socket.in_app = True
        try:
            return super().handle_request(req, conn)
        finally:
            if deadline_socket:
                deadline_socket.in_app = False
