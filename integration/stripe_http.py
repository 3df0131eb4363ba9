"""The HTTP client stripe-python sends every request through, under the rate limiter.

stripe-python retries network failures, 409s and 5xx itself (`max_network_retries`), with
the same idempotency key, from inside `HTTPClient.request_with_retries`. A limiter around
our own calls would not see those retries, so the token is taken here instead, once per
HTTP request that goes on the wire: first tries, stripe-python's retries and our 429
back-offs (integration/stripe_calls.py) alike. Keeping stripe-python's retry loop (rather
than turning it off and writing our own) keeps what it knows: the `Stripe-Should-Retry`
header, the idempotency key it adds to a retried POST, and which failures are safe to retry.
"""

from __future__ import annotations

from typing import Any

import stripe

from integration.rate_limiter import RateLimiter


class LimitedRequestsClient(stripe.RequestsClient):
    """stripe.RequestsClient that takes a token from `limiter` before each HTTP request."""

    def __init__(self, limiter: RateLimiter, *, timeout: float = 30.0, **options: Any):
        super().__init__(timeout=timeout, **options)
        self.limiter = limiter

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:  # type: ignore[override]
        self.limiter.acquire()
        return super().request(method, url, headers, post_data)

    def request_stream(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:  # type: ignore[override]
        self.limiter.acquire()
        return super().request_stream(method, url, headers, post_data)
