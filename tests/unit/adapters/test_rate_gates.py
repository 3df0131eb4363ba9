"""RateGate: the in-process RateLimiter with windows other than a second, and gates taken
together (integration/rate_limiter.py)."""

from __future__ import annotations

from integration.rate_limiter import RateLimiter, take_all
from slotguard.domain.interfaces import RateGate
from tests.support.stripe_proxy import busiest_window


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_limit_per_minute_lets_its_rate_through_in_any_minute_and_no_more():
    fake = FakeClock()
    limiter = RateLimiter(5, per=60.0, margin=0.0, clock=fake.clock, sleep=fake.sleep)
    times = []
    for gap in [0.0] * 12 + [30.0] + [0.0] * 6:
        fake.now += gap
        limiter.acquire()
        times.append(fake.now)

    assert times[:5] == [0.0] * 5 and times[5] == 60.0
    assert busiest_window(times, 60.0) == 5


def test_below_one_per_window_the_starts_are_spread_over_several_windows():
    fake = FakeClock()
    limiter = RateLimiter(0.5, per=60.0, margin=0.0, clock=fake.clock, sleep=fake.sleep)
    waits = [limiter.acquire() for _ in range(3)]
    assert waits == [0.0, 120.0, 120.0]


def test_gates_taken_together_wait_for_each_and_report_the_sum():
    fake = FakeClock()
    fast = RateLimiter(10, margin=0.0, clock=fake.clock, sleep=fake.sleep)
    slow = RateLimiter(1, margin=0.0, clock=fake.clock, sleep=fake.sleep)
    assert isinstance(fast, RateGate)

    assert take_all([fast, slow]) == 0.0
    assert take_all([fast, slow]) == 1.0 and fake.now == 1.0
    assert take_all([]) == 0.0
