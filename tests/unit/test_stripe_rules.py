"""Stripe's amount rules and the client-side rate limiter (no network)."""

from __future__ import annotations

import threading

import pytest

from integration.rate_limiter import RateLimiter
from integration.stripe_amounts import minimum_charge, why_not_chargeable
from slotguard.money import Money


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


def test_limiter_spaces_requests_to_the_rate_after_the_burst():
    fake = FakeClock()
    limiter = RateLimiter(25, burst=5, clock=fake.clock, sleep=fake.sleep)

    for _ in range(55):
        limiter.acquire()

    # 5 from the burst, the other 50 at 25 per second: two seconds in all.
    assert fake.now == pytest.approx(2.0)
    assert max(fake.slept) == pytest.approx(1 / 25)


def test_limiter_refills_while_idle_but_never_beyond_the_burst():
    fake = FakeClock()
    limiter = RateLimiter(10, burst=3, clock=fake.clock, sleep=fake.sleep)
    for _ in range(3):
        limiter.acquire()
    fake.now += 60  # a quiet minute saves up no more than the burst
    for _ in range(4):
        limiter.acquire()
    assert sum(fake.slept) == pytest.approx(0.1)


def test_limiter_holds_the_rate_across_threads():
    import time

    limiter = RateLimiter(200, burst=1)
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: [limiter.acquire() for _ in range(10)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - start >= 39 / 200 * 0.9
