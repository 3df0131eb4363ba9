"""The daemon's sleep between ticks when an inbox is configured (docs/inbox.md): it waits on
the inbox (IMAP IDLE) instead of the clock, so a command by email is carried out within
seconds, but never ticks more often than every MIN_TICK_GAP. `run --once` never waits."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slotguard.store.containment import describe

log = logging.getLogger("slotguard.inbox")
MIN_TICK_GAP = 10.0  # seconds between ticks at the least, however much mail arrives
IDLE_STEP = 0.5  # the daemon's sleep without an inbox (or one that cannot wait)


class InboxPacer:
    """Sleeps up to `longest` seconds; True when mail arrived and a tick is due now."""

    def __init__(self, inbox: Any, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.inbox = inbox
        self.clock = clock
        self.sleep = sleep
        self.last_tick = clock()
        self.mail_waiting = False

    def ticked(self) -> None:
        self.last_tick = self.clock()
        self.mail_waiting = False

    def pause(self, longest: float) -> bool:
        """Wait for mail (or the time) for at most `longest` seconds; True: tick now."""
        gap_left = MIN_TICK_GAP - (self.clock() - self.last_tick)
        if self.mail_waiting and gap_left <= 0:
            return True
        seconds = max(IDLE_STEP, min(longest, gap_left) if self.mail_waiting else longest)
        started = self.clock()
        if self.inbox is not None and not self.mail_waiting:
            try:
                self.mail_waiting = bool(self.inbox.wait(seconds))
            except Exception as error:  # noqa: BLE001 - waiting is a nicety: the clock's ticks read the inbox anyway
                log.warning("inbox wait failed error=%s", describe(error))
        waited = self.clock() - started
        if not self.mail_waiting and waited < IDLE_STEP:
            self.sleep(min(IDLE_STEP, max(0.0, seconds - waited)))  # a source that cannot wait returned at once
        elif self.mail_waiting and waited < IDLE_STEP and MIN_TICK_GAP - (self.clock() - self.last_tick) > 0:
            self.sleep(IDLE_STEP)
        return self.mail_waiting and MIN_TICK_GAP - (self.clock() - self.last_tick) <= 0
