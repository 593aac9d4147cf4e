"""A per-key token bucket, kept in each worker's memory."""
import threading
import time


class RateLimiter:
    """Allows `rate` calls per second per key, with bursts up to `burst`."""

    def __init__(self, rate, burst, clock=time.monotonic):
        self.rate = rate
        self.burst = max(burst, 1)
        self.clock = clock
        self.buckets = {}
        self.lock = threading.Lock()

    def allow(self, key):
        """Take a token for `key`; False when its bucket is empty."""
        if not self.rate:
            return True
        with self.lock:
            now = self.clock()  # read under the lock: a stale `now` would refill a negative amount
            tokens, last = self.buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1
            self.buckets[key] = (tokens - 1 if allowed else tokens, now)
        return allowed
