"""A per-client token bucket: `rate_per_min` requests a minute, with bursts up to the same number."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """`check(key)` returns 0 when the request may go ahead, else the seconds to wait before retrying.

    A rate of 0 or less switches limiting off. Idle buckets are forgotten so memory stays bounded.
    """

    def __init__(self, rate_per_min: int, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 10_000) -> None:
        self.rate_per_min = rate_per_min
        self.capacity = float(max(rate_per_min, 1))
        self.refill_per_s = rate_per_min / 60.0
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def check(self, key: str) -> int:
        if self.rate_per_min <= 0:
            return 0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill_per_s)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0
            else:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / self.refill_per_s))
            if len(self._buckets) > self.max_clients:
                self._forget_idle(now)
        return wait

    def _forget_idle(self, now: float) -> None:
        full_after_s = self.capacity / self.refill_per_s
        for key in [k for k, (_, last) in self._buckets.items() if now - last > full_after_s]:
            del self._buckets[key]
        if len(self._buckets) > self.max_clients:  # still too many: drop the oldest half
            for key, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: len(self._buckets) // 2]:
                del self._buckets[key]
