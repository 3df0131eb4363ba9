"""Stripe's amount rules, the client-side rate limiter and the 429 back-off (no network)."""

from __future__ import annotations

import random
import threading

import pytest

import integration.stripe_calls as stripe_calls_module
from integration.rate_limiter import RateLimiter
from integration.stripe_amounts import minimum_charge, why_not_chargeable
from integration.stripe_calls import StripeCalls, retry_after_seconds
from slotguard.domain.money import Money
from tests.support.stripe_proxy import busiest_window


@pytest.mark.parametrize(
    ("amount", "chargeable"),
    [
        ("3.00 NOK", True),
        ("2.99 NOK", False),
        ("50 JPY", True),
        ("49 JPY", False),
        ("0.30 GBP", True),
        ("0.29 GBP", False),
        ("175 HUF", True),
        ("174.99 HUF", False),
        ("5.120 KWD", True),
        ("5.125 KWD", False),
        ("0.01 ISK", True),  # not in Stripe's table: Stripe itself decides (amount_too_small)
        ("999999.99 USD", True),
        ("1000000.00 USD", False),
    ],
)
def test_which_amounts_stripe_accepts(amount, chargeable):
    assert (why_not_chargeable(Money.parse(amount)) == "") is chargeable


def test_minimums_are_in_minor_units_of_each_currency():
    assert minimum_charge("jpy") == Money(50, "JPY")
    assert minimum_charge("NOK") == Money(300, "NOK")
    assert minimum_charge("XXX") is None


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def grant_times(limiter, fake, gaps):
    """Acquire once per gap (idle `gap` seconds first); return when each request may start."""
    times = []
    for gap in gaps:
        fake.now += gap
        limiter.acquire()
        times.append(fake.now)
    return times


@pytest.mark.parametrize("rate", [25, 100, 7])
def test_limiter_never_lets_more_than_the_rate_through_in_any_one_second_window(rate):
    fake = FakeClock()
    limiter = RateLimiter(rate, clock=fake.clock, sleep=fake.sleep)
    rng = random.Random(rate)
    gaps = []
    for _ in range(20):
        gaps += [4.0] + [0.0] * (3 * rate)  # a rush after a quiet spell (a token bucket saved up for it)
        gaps += [rng.choice([0.0] * 20 + [0.001, 0.03, 0.2, 1.5]) for _ in range(5 * rate)]  # uneven load

    times = grant_times(limiter, fake, gaps)

    assert busiest_window(times) == rate
    # The margin keeps the count even in a window a little longer than a second.
    assert busiest_window(times, seconds=limiter.window - 1e-9) == rate


def test_limiter_lets_the_rate_through_at_once_and_then_paces_to_it():
    fake = FakeClock()
    limiter = RateLimiter(25, margin=0.0, clock=fake.clock, sleep=fake.sleep)

    times = grant_times(limiter, fake, [0.0] * 100)

    assert times[:25] == [0.0] * 25
    assert times[-1] == pytest.approx(3.0)  # 100 requests: four seconds' worth, the first at 0
    assert busiest_window(times) == 25


def test_limiter_below_one_request_per_second_spaces_them_out():
    fake = FakeClock()
    limiter = RateLimiter(0.5, margin=0.0, clock=fake.clock, sleep=fake.sleep)

    times = grant_times(limiter, fake, [0.0, 0.0, 0.5, 0.0])

    assert times == pytest.approx([0.0, 2.0, 4.0, 6.0])


def test_limiter_holds_the_rate_across_threads():
    import time

    limiter = RateLimiter(200)
    starts = []
    lock = threading.Lock()

    def work():
        for _ in range(150):
            limiter.acquire()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert busiest_window(starts) <= 200
    assert max(starts) - min(starts) >= 2.0  # 600 requests at 200 per (1.05) second: three windows


def test_retry_after_is_only_ever_lengthened_by_jitter(monkeypatch):
    calls = StripeCalls(backoff_seconds=0.5)
    for draw in (0.0, 0.5, 0.999999):
        monkeypatch.setattr(random_module, "random", lambda draw=draw: draw)
        for retry_after in (0.0, 1.0, 7.0, 30.0):
            wait = calls.rate_limit_wait(0, retry_after)
            assert retry_after <= wait <= retry_after * 1.25 + 1e-9


def test_retry_after_header_in_seconds_or_as_a_date():
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, now=lambda: 1792567670.0) == 10.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


random_module = stripe_calls_module.random
