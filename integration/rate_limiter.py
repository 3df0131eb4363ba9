"""A client-side rate limiter shared by the threads of one process that call one API.

Stripe allows about 25 requests per second in test mode and 100 in live mode; going over
earns 429 responses. Waiting a few milliseconds on our side is cheaper than a 429 and a
back-off, so every HTTP request takes a token first (integration/stripe_http.py wraps the
HTTP client, so stripe-python's own network retries take one too).

The promise is about windows, not averages: in no window of one second do more than `rate`
requests start. A token bucket cannot keep it (its saved-up burst comes on top of the rate
in the first second), so this is a sliding-window log: the n-th request waits until the
(n - rate)-th started at least a window ago.

It is a RateGate (slotguard/domain/interfaces.py): a deployment's workers use the shared one
in PostgreSQL instead (slotguard/store/shared_limits.py), which falls back to this one, at a
share of the limit, while the database cannot be reached.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from slotguard.domain.interfaces import RateGate


class RateLimiter:
    """At most `rate` requests in any window of `per` seconds (default one second; `rate`
    below 1: one request per `per`/rate seconds). A fractional rate above 1 is rounded down.

    `margin` lengthens the window a little (default 50 ms) because the limiter sees when a
    request is allowed, the server when it arrives: a sleep that oversleeps by a few
    milliseconds, or a request slower on the wire than the next one, must not put one more
    into the server's second. Callers that find the window full reserve the next free start
    time and sleep until it, so concurrent callers are served in arrival order. `clock` and
    `sleep` are injectable for tests.
    """

    def __init__(
        self,
        rate: float,
        *,
        per: float = 1.0,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0:
            raise ValueError("rate must be positive")
        if per <= 0:
            raise ValueError("per must be positive")
        if margin < 0:
            raise ValueError("margin must not be negative")
        self.rate = float(rate)
        if rate >= 1:
            self.per_window, self.window = int(math.floor(rate)), per + margin
        else:
            self.per_window, self.window = 1, per / rate + margin
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque(maxlen=self.per_window)  # the latest start times granted
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take a start time for one request, sleeping until it. Returns the seconds waited."""
        with self._lock:
            now = self._clock()
            start = now
            if len(self._starts) == self.per_window:
                start = max(now, self._starts[0] + self.window)
            self._starts.append(start)
        wait = start - now
        if wait > 0:
            self._sleep(wait)
        return wait


def take_all(gates: Iterable[RateGate]) -> float:
    """Acquire every gate in turn (a Google request may take the project's and the
    account's); return the seconds waited in all.

    A start a gate gave is used late when a later gate waits; a late start can fall closer
    to the next one than the gate meant, by up to that wait. So in-process gates are taken
    in turn only where that is harmless (one gate, or gates that rarely wait); the shared
    gates of a deployment take all their keys in one statement instead
    (slotguard/store/shared_limits.py, SharedLimits.gate with several keys)."""
    return sum(gate.acquire() for gate in gates)
