"""Reminders, planned when they fall due rather than at booking.

A booking made months ahead would otherwise put one row per reminder offset into the
ledger at once; planning each reminder only when its time comes keeps a first sync of a
large calendar cheap, and a reschedule or cancellation needs no clean-up: reminders follow
whatever the calendar says at the time they are due.

Rules: a reminder is due `offset` before the start; it is planned (and then sent) when
that time has come and the appointment has not started, is not cancelled, and was booked
before the reminder time (a booking made 30 h ahead gets the 24 h reminder, not the 48 h
one, which its booking confirmation already covers). An event the client organised (with
`calendar.client_organised = "remind"`) gets its reminders too, marked so that they quote
no policy and offer no card: no fee can arise from it. When several are due at once (after a
pause), only the latest is sent. Ids are stable, so each is planned once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from slotguard.domain.durations import format_duration, to_utc_text
from slotguard.domain.model import Action, ActionKind, ActionSubject, action_id_for, new_action
from slotguard.domain.plan import Plan
from slotguard.intake.tracker import Tracked
from slotguard.store.apply import Store
from slotguard.store.ledger import Ledger

POLICY = "lifecycle"
# In a reminder's context: its event is one the client organised (calendar.client_organised),
# so no policy applies to it: the email quotes none and offers no card (slotguard/mail/context.py).
CLIENT_ORGANISED = "client_organised"


def reminder_key(tracked: Tracked) -> str:
    appointment = tracked.appointment
    # A booking after a change of client gets its own reminders (slotguard/intake/tracker.py).
    booking = f"/{appointment.booking}" if appointment.booking else ""
    return f"{appointment.calendar_id}/{appointment.event_id}{booking}/reminders"


def plan_due_reminders(ledger: Ledger, offsets: list[timedelta], now: datetime) -> list[Action]:
    """Plan every reminder that has fallen due and is not planned yet; return the new ones."""
    if not offsets:
        return []
    horizon = max(offsets)
    candidates: list[tuple[str, Tracked, timedelta]] = []
    for tracked in ledger.upcoming_open(now, now + horizon):
        appointment = tracked.appointment
        due_offsets = [offset for offset in offsets if tracked.first_seen <= appointment.start - offset <= now]
        # After a pause (the daemon was down), only the latest due reminder goes out, not a burst.
        for offset in sorted(due_offsets)[:1]:
            slot = f"reminder-{format_duration(offset)}-{to_utc_text(appointment.start)}"
            candidates.append((action_id_for(reminder_key(tracked), POLICY, ActionKind.EMAIL.value, slot), tracked, offset))
    if not candidates:
        return []
    known = ledger.existing_action_ids([action_id for action_id, _, _ in candidates])
    due = []
    for action_id, tracked, offset in candidates:
        if action_id in known:
            continue
        appointment = tracked.appointment
        action = new_action(
            ActionSubject.of_appointment(appointment), ActionKind.EMAIL, POLICY,
            f"reminder {format_duration(offset)} before the start",
            key=reminder_key(tracked), action_id=action_id, now=now, due=appointment.start - offset,
            template="reminder", context={"offset_hours": int(offset.total_seconds() // 3600),
                                          **({CLIENT_ORGANISED: True} if appointment.client_organised else {})},
        )
        due.append(action)
    return Store(ledger).apply(Plan(actions=tuple(due)), now=now)
