"""Stripe's rate limits, seen from the server: the test proxy timestamps every request it
receives, which is what Stripe's own limiter counts.

What a practitioner relies on: Slotguard never earns a ban for hammering Stripe. After a 429
it waits at least as long as Stripe asked (Retry-After), and no one-second window carries
more requests than the configured rate, stripe-python's own network retries included.
"""

from __future__ import annotations

import time

import pytest

import integration.stripe_calls as stripe_calls
from integration.stripe_provider import open_provider
from slotguard.domain.interfaces import AdapterError
from tests.support.stripe_fixtures import intents_for_action, make_action

INTENTS = r"/v1/payment_intents"


@pytest.fixture
def shortest_jitter(monkeypatch):
    """Every jitter draw is the smallest possible, the case that used to retry too early."""
    monkeypatch.setattr(stripe_calls.random, "random", lambda: 0.0)


def test_a_rate_limited_request_is_retried_no_sooner_than_retry_after(
    stripe_settings, stripe_client_with_card, stripe_proxy, stripe_admin, shortest_jitter
):
    stripe_client_with_card("ana@example.com")
    provider = open_provider(stripe_settings(), timeout_seconds=5.0, backoff_seconds=0.01, rate_per_second=1000)
    stripe_proxy.inject("rate_limit", path=INTENTS, retry_after="1")
    action = make_action("charge", "450 NOK")

    result = provider.execute(action)

    assert result.status == "done"
    limited, retried = stripe_proxy.requests("POST", INTENTS)
    assert (limited.status, retried.status) == (429, 200)
    assert retried.at - limited.at >= 1.0, f"retried {retried.at - limited.at:.3f}s after a Retry-After of 1s"
    assert len(intents_for_action(stripe_admin, action.id)) == 1


def test_a_retry_after_too_long_to_sleep_is_handed_to_the_engine_not_cut_short(
    stripe_settings, stripe_client_with_card, stripe_proxy, shortest_jitter
):
    stripe_client_with_card("ana@example.com")
    provider = open_provider(stripe_settings(), timeout_seconds=5.0, backoff_seconds=0.01, rate_per_second=1000,
                             rate_limit_retries=1)
    stripe_proxy.inject("rate_limit", path=INTENTS, retry_after="120")

    started = time.monotonic()
    with pytest.raises(AdapterError) as raised:
        provider.execute(make_action("charge", "450 NOK"))

    assert raised.value.retryable and raised.value.retry_after == 120
    assert len(stripe_proxy.requests("POST", INTENTS)) == 1, "no second try before Stripe's two minutes are up"
    assert time.monotonic() - started < 10


def test_stripe_pythons_own_network_retries_take_a_token_too(stripe_settings, stripe_client_with_card, stripe_proxy, stripe_admin):
    stripe_client_with_card("ana@example.com")
    provider = open_provider(stripe_settings(), timeout_seconds=5.0, rate_per_second=1)
    provider.customers.customer_id("ana@example.com")  # known already, as in a running daemon
    stripe_proxy.inject("error", path=INTENTS, status=500, times=2)  # stripe-python retries these itself
    since = time.monotonic()
    action = make_action("charge", "450 NOK")

    result = provider.execute(action)

    assert result.status == "done"
    assert [exchange.status for exchange in stripe_proxy.requests("POST", INTENTS)] == [500, 500, 200]
    assert stripe_proxy.busiest_second(since) == 1, "more than 1 request in one second at a limit of 1/s"
    assert len(intents_for_action(stripe_admin, action.id)) == 1
