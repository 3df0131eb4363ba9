"""The inbox's own emails to the practice (docs/inbox.md): the reply to a command or STATUS,
and a message that is no command forwarded as it came. Both are email actions (policy
"inbox", template `inbox_reply`, to practice.email) with ids stable from the message's key,
so they go through the outbox with its retries and are planned once.

What the template gets (`details`) is kept in the action's context under REPLY, in JSON:
words chosen by Slotguard (an outcome, a state) and data from the ledger (a client's name,
an amount, a time), never text from the message, but the sender's address of a forwarded
message. A forwarded message waits in a 0600 file under DATA_DIR/inbox-spool until its email
is sent (SPOOL in the context names it); `sweep_spool` removes the files whose email is done.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.model import OPEN_STATES, Action, ActionKind, ActionState, ActionSubject, Appointment, action_id_for, new_action
from slotguard.inbox.incoming import Incoming
from slotguard.mail.links import PRACTITIONER_COMMANDS, BadToken, load_secret, secret_path, verify
from slotguard.policies.account import purpose_of
from slotguard.store.ledger import Ledger
from slotguard.store.private_files import private_file, private_folder

log = logging.getLogger("slotguard.inbox")

POLICY = "inbox"
TEMPLATE = "inbox_reply"
RECEIPT_TEMPLATE = "inbox_receipt"  # to the client: their cancel or confirm by email is carried out
REPLY = "reply"  # context: the template's details
SPOOL = "spool"  # context: the file name of the forwarded message under spool_folder()
PRACTICE = "practice"  # the calendar id of mail to the practice itself (as the digest's)


def spool_folder(settings: Settings) -> Path:
    return Path(settings.storage.data_dir) / "inbox-spool"


def reply_id(message_key: str, what: str = "reply") -> str:
    return action_id_for(f"inbox/{message_key}", POLICY, ActionKind.EMAIL.value, what)


def plan_reply(settings: Settings, ledger: Ledger, message_key: str, details: dict[str, Any], now: datetime, what: str = "reply") -> Action | None:
    """Store the email to the practice about the message `message_key` (in the caller's
    transaction); None when it was planned before."""
    action_id = reply_id(message_key, what)
    context: dict[str, Any] = {REPLY: details}
    if what == "forward":
        context[SPOOL] = f"{action_id}.eml"
    action = new_action(
        ActionSubject(PRACTICE, "", settings.practice.email, settings.practice.name),
        ActionKind.EMAIL, POLICY, f"inbox {what}: {details.get('kind', '')} {details.get('outcome', '')}".strip(),
        key=f"inbox/{message_key}", action_id=action_id, now=now, template=TEMPLATE, context=context,
    )
    with ledger.transaction():
        added = ledger.add_action(action)
    if added:
        log.info("planned action=%s kind=email template=%s what=%s", action.id, TEMPLATE, what)
    return action if added else None


def plan_receipt(settings: Settings, ledger: Ledger, appointment: Appointment, command: str, message: Incoming, now: datetime) -> Action | None:
    """The client's receipt for a carried-out cancel or confirm by email (in the caller's
    transaction, after the policies planned what the cancellation asks): none when an email
    to the client about this appointment was planned in this tick and goes now (a fee notice
    without a review window says more than a receipt); None when there is none to send."""
    client = appointment.client.email.strip().lower()
    already = [email for email in ledger.actions(kinds=[ActionKind.EMAIL], calendar_id=appointment.calendar_id, event_id=appointment.event_id)
               if email.client_email.strip().lower() == client and email.created_at >= now and email.due_at <= now
               and email.state in OPEN_STATES and email.template != RECEIPT_TEMPLATE]
    if already:
        return None
    action = new_action(
        ActionSubject.of_appointment(appointment),
        ActionKind.EMAIL, POLICY, f"receipt of the client's {command} by email", key=f"inbox/{message.message_key}", slot="receipt",
        now=now, template=RECEIPT_TEMPLATE, context={REPLY: {"command": command, "received_at": message.received_at.isoformat()}},
    )
    with ledger.transaction():
        added = ledger.add_action(action)
    if added:
        log.info("planned action=%s kind=email template=%s", action.id, RECEIPT_TEMPLATE)
    return action if added else None


def what_fee(action: Action | None) -> dict[str, Any]:
    """What a note about the practitioner's command says of its action: the client, the
    amount, the appointment's start, what the money is (fee, deposit, prepayment) and, for a
    charge still waiting, when it is charged."""
    if action is None:
        return {"name": "", "client": "", "amount": None, "start": "", "purpose": "", "due": ""}
    waiting = action.kind is ActionKind.CHARGE and action.state in OPEN_STATES
    return {
        "name": action.client_name or action.client_email,
        "client": action.client_email,
        "amount": action.amount.as_json() if action.amount is not None else None,
        "start": action.appointment_start.isoformat() if action.appointment_start else "",
        "purpose": purpose_of(action.kind, action.context),
        "due": action.due_at.isoformat() if waiting else "",
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # verify() at this time checks the signature, not the expiry


def plan_refused_note(settings: Settings, ledger: Ledger, message: Incoming, reason: str, now: datetime) -> Action | None:
    """A practitioner's command link refused (`reason`: "sender", "authentication",
    "expired"; others get nothing): a note to practice.email, never to the sender, at most
    one per token, and only when the token's signature holds (a forged or changed token
    gets nothing: a forger learns nothing, the practice is not flooded). Says who sent it,
    that nothing was done, and when a fee still waiting is charged."""
    if reason not in ("sender", "authentication", "expired") or not message.token:
        return None
    try:
        token = verify(load_secret(secret_path(settings)), message.token, _EPOCH)
    except BadToken:
        return None
    action = ledger.action(f"act_{token.target}")
    if token.command not in PRACTITIONER_COMMANDS or action is None:
        return None
    ours = bool(message.sender) and message.sender in settings.inbox.practitioners(settings.practice.email)
    outcome = {"authentication": "refused_auth", "expired": "refused_expired" if ours else "refused_sender"}.get(reason, "refused_sender")
    details = {"kind": "command", "command": token.command, "outcome": outcome, "sender": message.sender,
               "valid_days": settings.inbox.link_valid_for.days, **what_fee(action)}
    return plan_reply(settings, ledger, f"token:{token.key}", details, now, what="refused")


def spool(settings: Settings, message_key: str, raw: bytes) -> Path:
    """Keep `raw` (0600) until the email forwarding it is sent; written before the action
    that names it is committed, so a crash leaves at worst a file `sweep_spool` removes."""
    folder = private_folder(spool_folder(settings))
    path = folder / f"{reply_id(message_key, 'forward')}.eml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    private_file(path)
    return path


def spooled(settings: Settings, action: Action) -> bytes:
    """The forwarded message of `action`; raises OSError when its file is gone."""
    name = Path(str(action.context.get(SPOOL) or "")).name
    if not name:
        raise ValueError(f"{action.id}: no forwarded message")
    return (spool_folder(settings) / name).read_bytes()


def sweep_spool(settings: Settings, ledger: Ledger) -> int:
    """Remove the spooled messages whose email is done or cancelled (or was never stored);
    return how many."""
    folder = spool_folder(settings)
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.glob("act_*.eml"):
        action = ledger.action(path.stem)
        if action is None or action.state in (ActionState.DONE, ActionState.CANCELLED):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
