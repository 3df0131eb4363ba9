"""The evidence pack labels every time with what it is (issue 13, item 9): a booking found at
Slotguard's first look of a calendar has no booking time, only when it was first seen; its
event's last change (a move, the cancellation at 05:30) is never shown as "booked"."""

from __future__ import annotations

from slotguard.intake.tracker import FIRST_LOOK, MOVED_BEFORE_SEEN
from slotguard.practitioner.evidence import time_label

AT, SEEN = "2026-03-04T04:30:00Z", "2026-03-04T07:00:00Z"


def row(kind: str, detail: str = "") -> dict:
    return {"kind": kind, "detail": detail, "at": AT, "seen_at": SEEN}


def test_a_booking_found_at_the_first_look_shows_when_it_was_first_seen_not_a_booking_time():
    assert time_label(row("booked", FIRST_LOOK)) == (SEEN, "first seen by Slotguard")
    assert time_label(row("rescheduled", MOVED_BEFORE_SEEN)) == (SEEN, "first seen by Slotguard")


def test_each_other_time_says_what_it_is():
    assert time_label(row("booked")) == (AT, "booked")
    assert time_label(row("rescheduled")) == (AT, "moved")
    assert time_label(row("cancelled_by_client")) == (AT, "cancelled")
    assert time_label(row("cancelled_by_practitioner")) == (AT, "cancelled")
    assert time_label(row("no_show")) == (AT, "session start (marked as not come)")
    assert time_label(row("attended")) == (AT, "session start")
    assert time_label(row("waived", "the no-show mark was removed")) == (AT, "marked")
