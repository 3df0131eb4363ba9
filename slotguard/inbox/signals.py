"""A client's cancellation by email, laid over the appointment as the calendar shows it
(docs/inbox.md, "Clients").

The ledger's `email_signals` are the truth: a CANCEL signal from the appointment's own client
for its calendar, event and start makes the appointment the client's cancellation at the
inbox's receipt time, exactly as a declined invitation with a `cancelled:` line would be
(slotguard/intake/tracker.py `cancellation_of`): the CANCELLED_BY_CLIENT happening is at
`received_at`, and the policies decide any fee. A signal for another start (the appointment
moved since) or from another client (the event changed hands) is not laid over. What
Slotguard writes back onto the event about it (the status note) is taken out before the
event is read (slotguard/intake/own_note.py), so nothing on the event can undo or forge it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from slotguard.domain.durations import from_utc_text
from slotguard.domain.model import Appointment
from slotguard.store.inbox_rows import CANCEL


def email_cancellation(ledger: Any, appointment: Appointment) -> dict[str, Any] | None:
    """The ledger's CANCEL signal for this appointment at its start from its own client, or None."""
    signal = ledger.email_signal(appointment.calendar_id, appointment.event_id, appointment.start, CANCEL)
    if signal is None or signal["client_email"] != appointment.client.email.strip().lower():
        return None
    return signal


def with_email_signals(ledger: Any, appointment: Appointment, known: object = True) -> Appointment:
    """`appointment` as the calendar shows it, with what its client said by email laid over.

    `known` falsy: the ledger does not know the event (no signal can name it: a signal is
    only recorded for a tracked appointment), so no query is made. One primary-key lookup
    otherwise.
    """
    if not known:
        return appointment
    signal = email_cancellation(ledger, appointment)
    if signal is None:
        return appointment
    return replace(appointment, client_declined=True, cancelled_at=from_utc_text(signal["received_at"]))
