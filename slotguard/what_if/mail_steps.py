"""Replay's mail steps: a message sent to the Slotguard inbox, as the real link would make it.

A step `{"at": ..., "mail": {"from": "ana@example.com", "command": "cancel", "event_id": "e2"}}`
delivers into the replay's MemoryInbox, received at "at", a message from "from" whose subject
carries the command's signed token (slotguard/mail/links.py `sign`, under the replay's own
secret held in memory, never a file):

- "cancel", "confirm": the client's link of the appointment "event_id" as it stands at "at"
  (signed for its client and start, valid until the start, as the reminder's link is);
- "waive", "charge_now", "mark_paid", "keep": the practitioner's link of a fee: "action" names
  it, else "event_id" means that event's open fee (its latest charge not waived or
  cancelled), valid for `inbox.link_valid_for` from "at";
- "token": "bad" sends a forged token (signed with another secret); any other text is sent
  as the token itself. "text" is the message's body (what a practitioner writes becomes the
  reason). Every message has a Message-ID of its own.

What the inbox then does with it is the tick's inbox step (slotguard/run/inbox_step.py).
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from slotguard.domain.model import ActionKind, ActionState
from slotguard.mail.links import CLIENT_COMMANDS, COMMANDS, PRACTITIONER_COMMANDS, action_target, appointment_target, sign
from slotguard.store.ledger import Ledger

REPLAY_SECRET = b"slotguard-replay-only-secret-0123456789abcdef"  # fixed: a replay is deterministic
FORGED_SECRET = b"not-this-installations-secret-0123456789abcdef"
CALENDAR = "primary"
SUBJECTS = {"cancel": "Cancel my appointment", "confirm": "I'll be there", "waive": "Waive the fee",
            "charge_now": "Charge the fee now", "mark_paid": "Mark the fee paid", "keep": "Keep the fee as is"}


class MailStepError(ValueError):
    """A mail step that cannot be used; the message says why (replay raises it as a ScenarioError)."""


def check_mail_step(mail: Any) -> None:
    """Raise MailStepError naming what is wrong with a step's "mail" object."""
    if not isinstance(mail, dict):
        raise MailStepError('"mail" is an object: {"from", "command", "event_id" or "action", optional "token", "text"}')
    unknown = sorted(set(mail) - {"from", "command", "event_id", "action", "token", "text"})
    if unknown:
        raise MailStepError(f'"mail" has no {", ".join(repr(key) for key in unknown)}; it takes from, command, event_id, action, token, text')
    sender = mail.get("from")
    if not isinstance(sender, str) or "@" not in sender or any(c in sender for c in "<>\r\n, "):
        raise MailStepError('"mail" needs "from", one email address, e.g. "ana@example.com"')
    command = mail.get("command")
    if command not in COMMANDS:
        raise MailStepError(f'"mail" needs "command", one of {", ".join(CLIENT_COMMANDS + PRACTITIONER_COMMANDS)}')
    for key in ("event_id", "action", "token", "text"):
        if key in mail and not isinstance(mail[key], str):
            raise MailStepError(f'"mail": "{key}" is text')
    if command in CLIENT_COMMANDS and not mail.get("event_id"):
        raise MailStepError(f'"mail": a client\'s "{command}" needs "event_id", the appointment its link was for')
    if command not in CLIENT_COMMANDS and not (mail.get("event_id") or mail.get("action")):
        raise MailStepError(f'"mail": "{command}" needs "event_id" (that event\'s open fee) or "action" (a fee\'s id)')


def _target(ledger: Ledger, mail: dict[str, Any], at: datetime, link_valid_for) -> tuple[str, datetime]:
    """(target, expiry) of the link the step sends; KeyError saying why when there is none."""
    command = mail["command"]
    if command in CLIENT_COMMANDS:
        tracked = ledger.tracked(CALENDAR, mail["event_id"])
        if tracked is None:
            raise KeyError(f"no appointment {mail['event_id']!r} for a {command} link")
        appointment = tracked.appointment
        return appointment_target(CALENDAR, appointment.event_id, appointment.start, appointment.client.email), appointment.start
    if mail.get("action"):
        if ledger.action(mail["action"]) is None:
            raise KeyError(f"no action {mail['action']!r} for a {command} link")
        return action_target(mail["action"]), at + link_valid_for
    fees = [fee for fee in ledger.actions(kinds=[ActionKind.CHARGE], calendar_id=CALENDAR, event_id=mail["event_id"])
            if fee.state not in (ActionState.CANCELLED, ActionState.WAIVED)]
    if not fees:
        raise KeyError(f"no open fee of event {mail['event_id']!r} for a {command} link")
    return action_target(fees[-1].id), at + link_valid_for


def mail_message(ledger: Ledger, mail: dict[str, Any], at: datetime, index: int, to: str, link_valid_for) -> bytes:
    """The message of a mail step (checked by `check_mail_step`), as sent at `at`. Raises
    KeyError saying why when the appointment or fee it names is not there."""
    command = mail["command"]
    token = mail.get("token", "")
    if not token or token == "bad":
        target, expires = _target(ledger, mail, at, link_valid_for)
        token = sign(FORGED_SECRET if token == "bad" else REPLAY_SECRET, command, target, expires)
    message = EmailMessage()
    message["From"] = mail["from"]
    message["To"] = to
    message["Subject"] = f"{SUBJECTS[command]} [{token}]"
    message["Date"] = format_datetime(at)
    message["Message-ID"] = f"<replay-step-{index}@replay.slotguard.invalid>"
    message.set_content(mail.get("text", ""))
    return message.as_bytes()
