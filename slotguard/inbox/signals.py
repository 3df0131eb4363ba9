"""A client's cancellation by email, laid over the appointment as the calendar shows it
(docs/inbox.md, "Clients").

The ledger's `email_signals` are the truth: a CANCEL signal from the appointment's own client
for its calendar, event and start makes the appointment the client's cancellation at the
inbox's receipt time, exactly as a declined invitation with a `cancelled:` line would be
(slotguard/intake/tracker.py `cancellation_of`): the CANCELLED_BY_CLIENT happening is at
`received_at`, and the policies decide any fee. A signal for another start (the appointment
moved since) or from another client (the event changed hands) is not laid over, and
the practitioner moving a cancelled appointment withdraws the cancellation (a waiver). What
Slotguard writes back onto the event about it (the status note) is taken out before the
event is read (slotguard/intake/own_note.py), so nothing on the event can undo or forge it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from slotguard.domain.durations import from_utc_text
from slotguard.domain.model import Appointment
from slotguard.store.inbox_rows import CANCEL


def email_cancellation(ledger: Any, appointment: Appointment) -> dict[str, Any] | None:
    """The ledger's CANCEL signal for this appointment at its start from its own client, or None."""
    signal = ledger.email_signal(appointment.calendar_id, appointment.event_id, appointment.start, CANCEL)
    if signal is None or signal["client_email"] != appointment.client.email.strip().lower():
        return None
    return signal


def with_email_signals(ledger: Any, appointment: Appointment, known: tuple[str, bool] | None | Literal[False] = False) -> Appointment:
    """`appointment` as the calendar shows it, with what its client said by email laid over.

    `known` is what the engine knows of the event (`Engine.process_event`): None, an event
    the ledger does not know; (fingerprint, open), a known one; False, look it up. A cancel
    signal is recorded only together with the appointment stored as cancelled by the client
    (slotguard/run/client_mail.py), so only a known appointment that is no longer open can
    carry one: for every other event no query is made (a page's open events cost nothing).
    The same rule means a cancellation the practitioner withdrew by moving the appointment
    (a waiver) does not come back when it is moved back to the cancelled time.
    """
    if known is None or (known is not False and known[1]):
        return appointment
    signal = email_cancellation(ledger, appointment)
    if signal is None:
        return appointment
    return replace(appointment, client_declined=True, cancelled_at=from_utc_text(signal["received_at"]))
