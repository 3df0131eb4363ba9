"""A client's "I need to cancel" or "I'll be there" by email (docs/inbox.md, "Clients").

The inbox step (slotguard/run/inbox_step.py `read_inbox`) hands over a message whose token
verified and names a client command; `client_command` finds the appointment the token was
signed for and carries the command out at most once:

- cancel: the ledger records the client's cancellation (an `email_signals` row, timed by the
  inbox's receipt, never the message's Date header), and the appointment is observed again at
  once, as a declined invitation timed at that receipt would be: the CANCELLED_BY_CLIENT
  happening, the policies' fee (a late-cancel tier, or none), the status note written back;
- confirm: the confirmation is recorded; nothing else changes.

Refused (nothing done, nothing recorded; the reason is returned for the caller's REFUSED row
and the log): no appointment of the sender matches the token (it moved, was deleted, names
another client now, or the link was sent from another address), it is cancelled already, or
the message reached the inbox at or after the start (a no-show question for the
practitioner). Carried out, the message is recorded (`remember_mail`, kind CLIENT_COMMAND,
the token's key) in the same transaction as what it did, so a replayed message or a second
use of the token does nothing; a second cancel link of the same appointment finds it
cancelled. The outcome is a short text of our own: never anything the client wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from slotguard.domain.tick_report import TickReport
from slotguard.inbox.incoming import Incoming
from slotguard.inbox.replies import plan_receipt
from slotguard.inbox.signals import with_email_signals
from slotguard.intake.tracker import Tracked
from slotguard.mail.links import Token, appointment_target
from slotguard.store.inbox_rows import CANCEL, CLIENT_COMMAND, CONFIRM

# How far back a client's appointments are looked through for the one a link names: a link
# expires at its appointment's start, and one received after the start is refused anyway.
LOOK_BACK = timedelta(days=2)
COMMAND_SIGNALS = {"cancel": CANCEL, "confirm": CONFIRM}
LEFT = "left"  # as slotguard/run/inbox_step.py: a message left unread in the mailbox


def find_appointment(ledger: Any, sender: str, target: str, received_at: datetime) -> Tracked | None:
    """The sender's tracked appointment whose link target is `target`, or None."""
    for tracked in ledger.client_appointments(sender, received_at - LOOK_BACK):
        appointment = tracked.appointment
        if appointment_target(appointment.calendar_id, appointment.event_id, appointment.start, appointment.client.email) == target:
            return tracked
    return None


def refusal(tracked: Tracked | None, sender: str, command: str, received_at: datetime, ledger: Any) -> str:
    """Why the command cannot be carried out, "" when it can."""
    if tracked is None:
        return "refused: no appointment of the sender matches the link (moved, deleted, another client, or another address)"
    appointment = tracked.appointment
    if not sender or appointment.client.email.strip().lower() != sender:
        return "refused: the sender is not the appointment's client"
    if received_at >= appointment.start:
        return "refused: received at or after the start (attendance is the practitioner's to mark)"
    if tracked.cancellation or appointment.is_cancelled:
        return "refused: the appointment is cancelled already"
    if tracked.outcome:  # a no-show or a waiver marked meanwhile: whether and how it counts is the practitioner's call
        return "refused: the practitioner has marked the appointment already"
    signal = COMMAND_SIGNALS[command]
    if ledger.email_signal(appointment.calendar_id, appointment.event_id, appointment.start, signal) is not None:
        return f"refused: the client's {command} was recorded already"
    return ""


def client_command(engine: Any, incoming: Incoming, token: Token, now: datetime, report: TickReport,
                   also: Callable[[], None] | None = None, left: bool = False) -> str:
    """Carry out a client's verified cancel or confirm (`token.command`); return the outcome
    (a short text for the inbox_mail row and the log). Records the message (CLIENT_COMMAND)
    only when it acts; a refusal records nothing and the caller records it as refused.
    `also`, when given, runs in the same transaction once the command is carried out (the
    inbox step plans the forward of what the client wrote beside it there, so a crash never
    keeps the one without the other); `left`: the message is to stay unread in the mailbox
    (its remembered outcome says so, for a read after a crash)."""
    if token.command not in COMMAND_SIGNALS:
        return f"refused: {token.command!r} is not a client's command"
    ledger = engine.ledger
    sender = incoming.sender.strip().lower()
    received_at = incoming.received_at
    with ledger.transaction():
        tracked = find_appointment(ledger, sender, token.target, received_at) if sender else None
        why = refusal(tracked, sender, token.command, received_at, ledger)
        if why:
            return why
        assert tracked is not None  # refusal() said why otherwise
        appointment = tracked.appointment
        outcome = "cancelled by the client" if token.command == "cancel" else "confirmed by the client"
        if not ledger.remember_mail(
            message_key=incoming.message_key, token_key=token.key, received_at=received_at, sender=sender,
            kind=CLIENT_COMMAND, handled_at=now, command=token.command, calendar_id=appointment.calendar_id,
            event_id=appointment.event_id, outcome=f"{outcome}; {LEFT}" if left else outcome,
        ):
            return "not acted on: this message or its link was used before"
        ledger.add_email_signal(appointment.calendar_id, appointment.event_id, appointment.start,
                                COMMAND_SIGNALS[token.command], sender, received_at, incoming.message_key)
        if also is not None:
            also()
        if token.command == "cancel":
            # Observed again now: the happening and the policies' actions this tick, and the note written back.
            engine._observe(tracked, with_email_signals(ledger, appointment), now, report)
            engine._touched.add((appointment.calendar_id, appointment.event_id))
        plan_receipt(engine.settings, ledger, appointment, token.command, incoming, now)  # after what the policies planned
    return outcome
