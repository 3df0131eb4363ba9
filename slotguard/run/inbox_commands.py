"""The practitioner's commands by email (docs/inbox.md): waive, charge now, mark paid, keep,
and STATUS. Each is carried out exactly once: the message is remembered (its Message-ID and
its token) in the same ledger transaction as the effect, and the reply to the practice is
planned in it too. A charge is only made due there; it is carried out after the commit, as
`main.py charge-now` does (a crash in between leaves it due: the next tick charges it).

Called by slotguard/run/inbox_step.py once the sender, the authentication and the token are
checked; nothing here reads the message's words but the note (the waiver's reason, quoted as
the practitioner's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slotguard.collections.paid_by_hand import mark_paid
from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import OPEN_STATES, Action, ActionKind, ActionState
from slotguard.domain.tick_report import TickReport
from slotguard.inbox.incoming import Incoming
from slotguard.inbox.replies import plan_reply
from slotguard.inbox.words import own_words
from slotguard.mail.links import Token
from slotguard.planning.waivers import waive_by_hand
from slotguard.run.charge_now import carry_out, prepare_charge_now
from slotguard.run.status_view import gather_status
from slotguard.store.inbox_rows import PRACTITIONER_COMMAND, STATUS

log = logging.getLogger("slotguard.inbox")
WAIVABLE = (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE, ActionKind.CREDIT)  # as `main.py waive`
STATUS_ROWS = 10  # at most this many lines per list in a STATUS reply (a phone screen)


@dataclass
class Done:
    outcome: str  # waived, charged, charge_failed, paid, kept, not_now, missing
    action_id: str = ""


def state_word(action: Action | None) -> str:
    """The state an action is in, as the reply names it (a word the template translates)."""
    if action is None:
        return "missing"
    if action.state is ActionState.DONE:
        return "done"
    if action.state in (ActionState.CANCELLED, ActionState.WAIVED):
        return "cancelled"
    if action.state is ActionState.FAILED:
        return "failed"
    return "open" if action.state in OPEN_STATES else "busy"


def about(action: Action | None) -> dict[str, Any]:
    """What the reply says of the action: the client, the amount, the appointment's start."""
    if action is None:
        return {"name": "", "client": "", "amount": None, "start": ""}
    return {
        "name": action.client_name or action.client_email,
        "client": action.client_email,
        "amount": action.amount.as_json() if action.amount is not None else None,
        "start": action.appointment_start.isoformat() if action.appointment_start else "",
    }


def _waive(engine: Any, message: Incoming, action: Action, now: datetime) -> tuple[str, dict[str, Any]]:
    if action.kind not in WAIVABLE:
        return "not_now", {}
    note = " ".join(own_words(message.note, engine.settings.mail.templates_dir).split())  # without our prefilled "Reason (optional)..."
    reason = f"waived by the practitioner by email: \u201c{note}\u201d" if note else "waived by the practitioner by email"
    done = waive_by_hand(engine.ledger, action, reason, now, note=engine.settings.mail.waiver_note)
    if done.problem:
        return "not_now", {}
    engine.ledger.queue_write_back(action.calendar_id, action.event_id, now)  # the next tick rewrites the event's status note
    given_back = any(money.kind in (ActionKind.REFUND, ActionKind.RELEASE) for money in [*done.planned, *done.before])
    return "waived", {"given_back": given_back, "waiting": done.waiting}


def practitioner_command(engine: Any, message: Incoming, token: Token, now: datetime, report: TickReport) -> Done:
    """Carry out a verified practitioner's token from a practitioner's address (the caller
    checked both, and that neither the message nor the token was used before)."""
    ledger = engine.ledger
    action_id = f"act_{token.target}"
    charge: Action | None = None
    with ledger.transaction():
        action = ledger.action(action_id)
        extra: dict[str, Any] = {}
        if action is None:
            outcome = "missing"
        elif token.command == "waive":
            outcome, extra = _waive(engine, message, action, now)
        elif token.command == "charge_now":
            ready = prepare_charge_now(ledger, action_id, now, by="charge now by email")
            outcome, charge = ("not_now", None) if ready.refused else ("charging", ready.action)  # made due; carried out below
        elif token.command == "mark_paid":
            note = "paid to the practitioner directly (marked paid by email)"
            outcome = "paid" if mark_paid(ledger, action_id, note, now).paid is not None else "not_now"
        else:  # keep: nothing changes; a fee no longer open says so
            outcome = "kept" if action.kind is ActionKind.CHARGE and action.state in OPEN_STATES else "not_now"
        current = ledger.action(action_id)
        remembered = ledger.remember_mail(
            message_key=message.message_key, token_key=token.key, received_at=message.received_at, sender=message.sender,
            kind=PRACTITIONER_COMMAND, handled_at=now, command=token.command, action_id=action_id, outcome=outcome,
            calendar_id=current.calendar_id if current else "", event_id=current.event_id if current else "",
        )
        if not remembered:
            raise RuntimeError("the message or its token was remembered meanwhile")  # undoes the effect: never twice
        details = {"kind": "command", "command": token.command, "outcome": outcome, "state": state_word(current), **about(current), **extra}
        if charge is None:
            plan_reply(engine.settings, ledger, message.message_key, details, now)
    log.info("inbox command=%s action=%s outcome=%s", token.command, action_id, outcome)
    report.happenings[f"inbox:{token.command}"] += 1
    if charge is not None:  # committed as due: carried out now, as charge-now does; the reply says how it went
        final = carry_out(engine, charge, now, report).action
        outcome = "charged" if final is not None and final.state is ActionState.DONE else "charge_failed"
        details = {"kind": "command", "command": token.command, "outcome": outcome, "state": state_word(final), **about(final)}
        plan_reply(engine.settings, ledger, message.message_key, details, now)
    return Done(outcome, action_id)


def already_done(engine: Any, message: Incoming, token: Token, used: dict[str, Any], now: datetime) -> None:
    """A practitioner's token used before, sent again from a practitioner's address: nothing
    is done; the reply says when it was done."""
    action = engine.ledger.action(f"act_{token.target}")
    details = {"kind": "command", "command": token.command, "outcome": "already", "state": state_word(action),
               "done_at": str(used.get("handled_at") or ""), **about(action)}
    plan_reply(engine.settings, engine.ledger, message.message_key, details, now)


def status_reply(engine: Any, message: Incoming, now: datetime, report: TickReport) -> None:
    """STATUS from a practitioner: the reply carries what `main.py status` shows, shortly."""
    settings, ledger = engine.settings, engine.ledger
    with ledger.transaction():
        view = gather_status(ledger, settings, now)
        if not ledger.remember_mail(message_key=message.message_key, token_key=None, received_at=message.received_at,
                                    sender=message.sender, kind=STATUS, handled_at=now, outcome="replied"):
            raise RuntimeError("the message was remembered meanwhile")
        status = {
            "unresolved": len(view.unresolved),
            "upcoming": [{"name": t.appointment.client.name or t.appointment.client.email, "start": t.appointment.start.isoformat(),
                          "amount": t.appointment.price.as_json()} for t in view.upcoming[:STATUS_ROWS]],
            "upcoming_count": len(view.upcoming),
            "pending": [{**about(a), "id": a.id, "due": to_utc_text(a.due_at)} for a in view.pending[:STATUS_ROWS]],
            "pending_count": len(view.pending),
            "receivables": [about(a) for a in view.receivables[:STATUS_ROWS]],
            "receivables_count": len(view.receivables),
            "failed": len(view.failed),
            "problems": len(view.problems),
        }
        plan_reply(settings, ledger, message.message_key, {"kind": "status", "outcome": "status", "status": status}, now)
    log.info("inbox status replied")
    report.happenings["inbox:status"] += 1
