"""The token bucket under threads (gunicorn's gthread workers): a limit far above the load never refuses.

Found by bench/ingest: with the clock read before taking the lock, a thread could refill a negative amount
(its `now` older than the bucket's last update) and answer a spurious 429.
"""
import threading

import pytest

from collector.ratelimit import RateLimiter

pytestmark = pytest.mark.reliability


def test_a_limit_far_above_the_load_never_refuses_under_threads():
    limiter = RateLimiter(rate=10**9, burst=2000)
    refused = []

    def take():
        refused.extend(1 for _ in range(20_000) if not limiter.allow("key"))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert refused == []
