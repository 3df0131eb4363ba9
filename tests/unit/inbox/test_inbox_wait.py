"""The daemon's sleep with an inbox (slotguard/run/inbox_wait.py): mail ticks at once, never
more often than every 10 seconds; a source that cannot wait still sleeps."""

from __future__ import annotations

from slotguard.run.inbox_wait import MIN_TICK_GAP, InboxPacer


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Inbox:
    def __init__(self, clock, arrivals):
        self.clock, self.arrivals, self.waits = clock, list(arrivals), []

    def wait(self, seconds):
        self.waits.append(seconds)
        arrival = self.arrivals[0] if self.arrivals else None
        if arrival is not None and arrival <= self.clock.now + seconds:
            self.clock.now = max(self.clock.now, arrival)
            self.arrivals.pop(0)
            return True
        self.clock.now += seconds
        return False


def test_mail_arriving_ticks_at_once_but_not_within_ten_seconds_of_the_last_tick():
    clock = Clock()
    inbox = Inbox(clock, [1003.0])
    pacer = InboxPacer(inbox, clock, clock.sleep)
    ticks = []
    while clock.now < 1030:
        if pacer.pause(5):
            ticks.append(clock.now)
            pacer.ticked()
    assert ticks and MIN_TICK_GAP <= ticks[0] - 1000 < MIN_TICK_GAP + 1
    assert len(ticks) == 1


def test_without_mail_it_waits_the_time_given_and_never_ticks():
    clock = Clock()
    inbox = Inbox(clock, [])
    pacer = InboxPacer(inbox, clock, clock.sleep)
    assert not pacer.pause(5)
    assert inbox.waits == [5] and clock.now == 1005


def test_a_source_that_cannot_wait_or_no_inbox_sleeps_half_a_second():
    clock = Clock()
    pacer = InboxPacer(None, clock, clock.sleep)
    assert not pacer.pause(5)
    assert clock.now == 1000.5
