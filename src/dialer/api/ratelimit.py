"""Per-principal request rate limits: a token bucket per session, API token or (anonymous) client address.

One process keeps its buckets in memory (several processes each allow the full rate). The limits are generous —
a browser panel polls a few times a second — and refuse only clients that hammer the server: 429 problem details
with ``Retry-After``. ``DIALER_API_RATE_BURST`` and ``DIALER_API_RATE_PER_SECOND`` change them (``0`` turns the
limit off); a running application reads ``app.state.rate_limiter`` on every request, so it can be swapped.
"""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: Requests a principal may send at once, and how many per second it gets back (sustained rate).
DEFAULT_BURST = 60
DEFAULT_PER_SECOND = 20.0
#: Buckets kept at most (least recently used ones are forgotten beyond: they start full again).
MAX_BUCKETS = 100_000
BURST_ENV = "DIALER_API_RATE_BURST"
PER_SECOND_ENV = "DIALER_API_RATE_PER_SECOND"


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by key: ``take(key)`` answers 0 when the request may go, else the seconds to wait."""

    def __init__(self, burst: int = DEFAULT_BURST, per_second: float = DEFAULT_PER_SECOND, *,
                 clock: Callable[[], float] = time.monotonic, max_buckets: int = MAX_BUCKETS) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("burst must be at least 1 and per_second positive")
        self.burst = burst
        self.per_second = per_second
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def known(self, key: str) -> bool:
        return key in self._buckets

    def take(self, key: str, cost: float = 1.0) -> float:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.per_second)
            bucket.at = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.per_second

    @staticmethod
    def retry_after(wait_s: float) -> int:
        """The ``Retry-After`` header value (whole seconds, at least 1)."""
        return max(1, math.ceil(wait_s))


def from_environment() -> RateLimiter | None:
    """The limiter the environment asks for; ``None`` (no limit) when either value is 0."""
    burst = int(os.environ.get(BURST_ENV, DEFAULT_BURST))
    per_second = float(os.environ.get(PER_SECOND_ENV, DEFAULT_PER_SECOND))
    if burst <= 0 or per_second <= 0:
        return None
    return RateLimiter(burst, per_second)
