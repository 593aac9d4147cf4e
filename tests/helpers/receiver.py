"""Real local HTTP receivers for webhook tests: one that records what arrives, answers as told and can go
down; one that trickles its answer a byte at a time."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.helpers.live import free_port

HOLD_SECONDS = 30


class Receiver:
    """Listens on 127.0.0.1:port; `statuses` (a list) answers the next requests, then 200."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received = []
        self.statuses = []
        self.delay = None  # an Event each answer waits for (at most HOLD_SECONDS): a receiver that hangs
        self.pause = 0.0  # seconds each answer takes (a receiver doing some work)
        self.location = None  # the Location header of a 3xx answer
        self.server = None
        self.lock = threading.Lock()

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.delay:
                    receiver.delay.wait(HOLD_SECONDS)
                if receiver.pause:
                    time.sleep(receiver.pause)
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append(
                        {"headers": dict(self.headers), "body": body, "status": status, "json": json.loads(body)}
                    )
                self.send_response(status)
                if receiver.location and 300 <= status < 400:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):  # a followed redirect would arrive here
                with receiver.lock:
                    receiver.received.append(
                        {"headers": dict(self.headers), "body": b"", "status": 200, "json": None, "method": "GET"}
                    )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        # stop() waits for the loop to see the shutdown: poll every 50 ms, not the default 500 ms, per test.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def accepted(self):
        """Bodies answered 2xx, in arrival order."""
        return [item["json"] for item in self.received if 200 <= item["status"] < 300]


class Trickler:
    """A receiver that reads each request, then answers one byte every `interval` seconds and never
    finishes the headers (until `give_up_after` seconds, so a test of unbounded code ends too).
    With `trickle = False` it answers 200 at once."""

    def __init__(self, interval=1.0, give_up_after=60.0):
        self.interval = interval
        self.give_up_after = give_up_after
        self.trickle = True
        self.requests = []  # the header block of each request, as a dict
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/slow"

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.stopped.set()
        self.listener.close()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            reader = conn.makefile("rb")
            lines = []
            while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
                lines.append(line.decode("latin-1").rstrip("\r\n"))
            headers = dict(line.split(": ", 1) for line in lines[1:])
            reader.read(int(headers.get("Content-Length", 0)))
            with self.lock:
                self.requests.append(headers)
            if not self.trickle:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                return
            answer = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: yes\r\n" * 1000
            ends = time.monotonic() + self.give_up_after
            try:
                for byte in answer:
                    if self.stopped.wait(self.interval) or time.monotonic() > ends:
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up: what a bounded client does
