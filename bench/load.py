"""A small HTTP/1.1 load client (asyncio, keep-alive) that records the answer to every request it sends.

Why not wrk: wrk cannot tell which request an answer belongs to and drops the requests in flight at its
deadline, so it cannot prove that every event answered 2xx was stored exactly once. This client prebuilds
nothing it does not have to, formats bodies from a template, and reports its own CPU time so a reader can
see how much of the machine the load itself took.

Every loop here is bounded: by a request count, by a duration, and by a hard deadline for retries.
"""

import asyncio
import random
import resource
import time
from collections import Counter
from dataclasses import dataclass, field

CONNECTION_ERROR = 0  # the status recorded when no HTTP answer came back (refused, reset, timeout)
RETRYABLE = (CONNECTION_ERROR, 429, 503)


@dataclass
class Outcome:
    """What a load run saw: the final answer per key, every attempt's status, time and client CPU."""

    answers: dict = field(default_factory=dict)  # key -> last status
    attempts: Counter = field(default_factory=Counter)  # status -> how many attempts got it
    elapsed: float = 0.0
    client_cpu: float = 0.0  # seconds of CPU this process used during the run

    @property
    def acked(self):
        """Keys whose last answer was 2xx."""
        return {key for key, status in self.answers.items() if 200 <= status < 300}

    @property
    def unacked(self):
        """Keys that were sent but never answered 2xx."""
        return {key for key, status in self.answers.items() if not 200 <= status < 300}

    def rate(self):
        """2xx answers per second."""
        return len(self.acked) / self.elapsed if self.elapsed else 0.0


class Connection:
    """One keep-alive connection (an asyncio protocol: cheaper per request than streams); reconnects on
    the next request after any failure."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.protocol = None

    async def request(self, data):
        """Send raw request bytes; return (status, headers dict, body bytes). Raises OSError/TimeoutError."""
        try:
            async with asyncio.timeout(self.timeout):
                if self.protocol is None or self.protocol.lost:
                    loop = asyncio.get_running_loop()
                    _, self.protocol = await loop.create_connection(_Answers, self.host, self.port)
                answer = await self.protocol.send(data)
        except BaseException:
            self.close()
            raise
        if answer[1].get("connection", "").lower() == "close":
            self.close()
        return answer

    def close(self):
        if self.protocol is not None:
            self.protocol.close()
        self.protocol = None


class _Answers(asyncio.Protocol):
    """Collects the bytes of one connection and hands each complete HTTP answer to the waiting request."""

    def __init__(self):
        self.buffer = bytearray()
        self.transport = self.waiter = None
        self.lost = False

    def connection_made(self, transport):
        self.transport = transport

    def send(self, data):
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data):
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        total = end + 4 + int(headers.get("content-length", 0))
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        self.waiter.set_result((int(lines[0].split(" ", 2)[1]), headers, body))

    def connection_lost(self, exc):
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("the connection closed before the answer"))

    def close(self):
        self.lost = True
        if self.transport is not None:
            self.transport.close()


def build_request(host, port, path, body, headers):
    """The raw bytes of a POST with a Content-Length."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def drive(
    host,
    port,
    path,
    bodies,
    *,
    headers,
    concurrency,
    duration,
    max_requests,
    retry=False,
    retry_deadline=60.0,
    timeout=30.0,
    max_backoff=1.0,
    stop=None,
    abort=None,
    outcome=None,
):
    """Send `bodies` (an iterator of (key, body bytes)) over `concurrency` connections.

    New keys are taken until `duration` seconds have passed, `max_requests` keys were taken or the
    `stop` event (a threading.Event) is set; `abort` ends the retries too. Pass `outcome` to watch the answers
    from another thread. Without
    `retry` each key is sent once. With `retry`, a key answered 429, 503 or not at all is sent again (the
    same bytes, so the same messageIds) after a short backoff, until it gets a final answer or
    `retry_deadline` seconds after the start have passed.
    """
    outcome = Outcome() if outcome is None else outcome
    started = time.monotonic()
    stop_new = started + duration
    hard_stop = started + max(retry_deadline, duration)
    taken = 0
    cpu_before = _cpu()

    def next_key():
        nonlocal taken
        if taken >= max_requests or time.monotonic() >= stop_new or (stop is not None and stop.is_set()):
            return None
        item = next(bodies, None)
        if item is not None:
            taken += 1
        return item

    async def worker():
        conn = Connection(host, port, timeout)
        try:
            while (item := next_key()) is not None:
                key, body = item
                data = build_request(host, port, path, body, headers)
                backoff = 0.02
                while True:
                    try:
                        status, answer_headers, _ = await conn.request(data)
                    except (OSError, TimeoutError, ValueError):
                        status, answer_headers = CONNECTION_ERROR, {}
                    outcome.attempts[status] += 1
                    outcome.answers[key] = status
                    if (
                        not (retry and status in RETRYABLE)
                        or time.monotonic() >= hard_stop
                        or (abort is not None and abort.is_set())
                    ):
                        break
                    wait = min(_retry_after(answer_headers, backoff), max_backoff)
                    await asyncio.sleep(min(wait * random.uniform(0.5, 1.0), max(0.0, hard_stop - time.monotonic())))
                    backoff = min(backoff * 2, max_backoff)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    outcome.elapsed = time.monotonic() - started
    outcome.client_cpu = _cpu() - cpu_before
    return outcome


def run(*args, **kwargs):
    """`drive` in a fresh event loop (for callers that are not async)."""
    return asyncio.run(drive(*args, **kwargs))


def _retry_after(headers, default):
    try:
        return float(headers.get("retry-after", default))
    except ValueError:
        return default


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
