"""The HTTP client stripe-python sends every request through, under the rate gates.

stripe-python retries network failures, 409s and 5xx itself (`max_network_retries`), with
the same idempotency key, from inside `HTTPClient.request_with_retries`. A limiter around
our own calls would not see those retries, so the token is taken here instead, once per
HTTP request that goes on the wire: first tries, stripe-python's retries and our 429
back-offs (integration/stripe_calls.py) alike. Keeping stripe-python's retry loop (rather
than turning it off and writing our own) keeps what it knows: the `Stripe-Should-Retry`
header, the idempotency key it adds to a retried POST, and which failures are safe to retry.

The gates (slotguard/domain/interfaces.py RateGate) are an in-process RateLimiter for one
practice, or the Stripe account's limit shared by a deployment's workers in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import stripe

from integration.rate_limiter import take_all
from slotguard.domain.interfaces import RateGate


class LimitedRequestsClient(stripe.RequestsClient):
    """stripe.RequestsClient that passes every one of `gates` before each HTTP request."""

    def __init__(self, gates: Sequence[RateGate], *, timeout: float = 30.0, **options: Any):
        super().__init__(timeout=timeout, **options)
        self.gates = tuple(gates)

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:  # type: ignore[override]
        take_all(self.gates)
        return super().request(method, url, headers, post_data)

    def request_stream(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:  # type: ignore[override]
        take_all(self.gates)
        return super().request_stream(method, url, headers, post_data)
