"""Token buckets kept in each worker's memory: per write key, and per client of a write key."""

import ipaddress
import threading
import time
from collections.abc import Hashable
from functools import lru_cache


class RateLimiter:
    """Allows `rate` calls per second per key, with bursts up to `burst`.

    At most `max_keys` buckets are kept: past that, the buckets that have refilled (the same as no bucket) are
    dropped, and all of them if that is not enough, so a flood of new clients cannot grow a worker's memory."""

    def __init__(self, rate, burst, clock=time.monotonic, max_keys=100_000):
        self.rate = rate
        self.burst = max(burst, 1)
        self.clock = clock
        self.max_keys = max_keys
        self.buckets = {}
        self.lock = threading.Lock()

    def allow(self, key: Hashable) -> bool:
        """Take a token for `key`; False when its bucket is empty."""
        if not self.rate:
            return True
        with self.lock:
            now = self.clock()  # read under the lock: a stale `now` would refill a negative amount
            bucket = self.buckets.get(key)
            if bucket is None:
                if len(self.buckets) >= self.max_keys:
                    self._prune(now)
                bucket = (self.burst, now)
            tokens, last = bucket
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1
            self.buckets[key] = (tokens - 1 if allowed else tokens, now)
        return allowed

    def _prune(self, now):
        refill = self.burst / self.rate
        self.buckets = {key: (tokens, last) for key, (tokens, last) in self.buckets.items() if now - last < refill}
        if len(self.buckets) >= self.max_keys // 2:
            self.buckets.clear()  # so pruning stays rare; the cost: busy clients get a fresh burst


@lru_cache(maxsize=4096)
def client_of(remote_addr: str | None) -> str:
    """Who a request comes from, for rate limits: its IPv4 address, or the /64 of its IPv6 address (one
    host usually holds a whole /64)."""
    try:
        address = ipaddress.ip_address(remote_addr)
    except (TypeError, ValueError):
        return str(remote_addr)
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)
