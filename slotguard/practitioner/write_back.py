"""Writing each appointment's fee status onto its calendar event, and never losing a write.

Given the events the tick touched (a fee planned, carried out, waived, paid, a client's
cancellation by email: written even when it carries no fee) and the notes
still owed from before (`pending_writes` in the ledger: a write the calendar refused, or a
command such as `main.py waive` that changed a fee outside a tick), write the status note
and machine state of each (slotguard/practitioner/notes.py) through the calendar's `CalendarWriteBack`.

A refused write (a 5xx after the adapter's own retries, Google's daily quota) is kept and
tried again after 2m, 4m, 8m ... then hourly, until a write of that event succeeds (a later
one for any reason clears it) or the event is gone; one the calendar can never take (the
event deleted, not ours) is dropped with a problem saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.interfaces import AdapterError, CalendarWriteBack, NullWriteBack, ReauthorizationNeeded
from slotguard.domain.model import ActionKind, Appointment
from slotguard.practitioner.notes import status_note
from slotguard.store.inbox_rows import CANCEL
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.write_back")

RETRY_BASE = timedelta(minutes=2)
RETRY_MAX = timedelta(hours=1)
REAUTH_WAIT = timedelta(minutes=15)


def write_statuses(
    ledger: Ledger,
    settings: Settings,
    write_backs: Mapping[str, CalendarWriteBack],
    touched: set[tuple[str, str]],
    now: datetime,
    report: Any,
) -> None:
    """Write the status of every (calendar_id, event_id) in `touched` and of every pending
    write due by `now`. Failures go to `report.problem(...)` and the ledger; never raises
    for the calendar's refusals."""
    pending = {(row["calendar_id"], row["event_id"]): row for row in ledger.pending_write_backs()}
    due = {key for key, row in pending.items() if from_utc_text(row["due_at"]) <= now}
    for calendar_id, event_id in sorted(touched | due):
        key = (calendar_id, event_id)
        write_back = write_backs.get(calendar_id)
        if write_back is None or isinstance(write_back, NullWriteBack):
            if key in pending:  # the calendar is no longer watched, or no longer written to
                ledger.write_back_done(calendar_id, event_id)
            continue  # a read-only calendar: skip the two queries per touched event
        fees = ledger.actions(kinds=[ActionKind.CHARGE, ActionKind.REFUND, ActionKind.WAIVE], calendar_id=calendar_id, event_id=event_id)
        tracked = ledger.tracked(calendar_id, event_id)
        cancelled_by_email = _cancelled_by_email(ledger, tracked.appointment) if tracked is not None else None
        if tracked is None or not (fees or cancelled_by_email):
            if key in pending:
                ledger.write_back_done(calendar_id, event_id)
            continue
        state, note = status_note(fees, settings, cancelled_by_email)
        try:
            write_back.write_status(tracked.appointment, state, note)
        except AdapterError as error:
            attempts = 1 + (pending[key]["attempts"] if key in pending else 0)
            _failed(ledger, calendar_id, event_id, error, attempts, now, report)
            continue
        if key in pending:
            ledger.write_back_done(calendar_id, event_id)
            log.info("write_back_caught_up calendar=%s event=%s", calendar_id, event_id)


def _cancelled_by_email(ledger: Ledger, appointment: Appointment) -> datetime | None:
    """When the inbox received the client's cancellation by email of the appointment as it
    stands (its start, its client), or None (slotguard/inbox/signals.py lays it over)."""
    if not appointment.client_declined:
        return None  # cheap: an appointment cancelled by email is always stored declined
    signal = ledger.email_signal(appointment.calendar_id, appointment.event_id, appointment.start, CANCEL)
    if signal is None or signal["client_email"] != appointment.client.email.strip().lower():
        return None
    return from_utc_text(signal["received_at"])


def _failed(ledger: Ledger, calendar_id: str, event_id: str, error: AdapterError, attempts: int, now: datetime, report: Any) -> None:
    """Keep a refused write for a later tick (backing off by its `attempts`, this one
    included), or drop it when trying again cannot help; say so either way."""
    where = f"calendar {calendar_id}: could not write the status onto event {event_id}: {error}"
    if isinstance(error, ReauthorizationNeeded):
        ledger.queue_write_back(calendar_id, event_id, now + REAUTH_WAIT, str(error))
        report.problem(f"{where}; it is written once the account is connected again")
    elif error.retryable:
        retry_at = now + min(RETRY_BASE * 2 ** (attempts - 1), RETRY_MAX)
        ledger.queue_write_back(calendar_id, event_id, retry_at, str(error))
        report.problem(f"{where}; Slotguard tries again from {to_utc_text(retry_at)} (attempt {attempts})")
    else:
        ledger.write_back_done(calendar_id, event_id)
        report.problem(f"{where}; not tried again")
