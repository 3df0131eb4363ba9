"""A client-side rate limiter shared by the threads that call one API.

Stripe allows about 25 requests per second in test mode and 100 in live mode; going over
earns 429 responses. Waiting a few milliseconds on our side is cheaper than a 429 and a
back-off, so every request takes a token first.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class RateLimiter:
    """A token bucket: `rate` tokens per second, at most `burst` saved up.

    Callers that find the bucket empty reserve a future token and sleep until it is due, so
    concurrent callers are served in arrival order and never exceed the rate on average.
    `clock` and `sleep` are injectable for tests.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate / 5))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping if needed. Returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
