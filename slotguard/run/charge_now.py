"""Charge one fee now instead of after its review window: `main.py charge-now` and the
practitioner's "charge now" by email (docs/inbox.md) share this one copy.

A fee kept uncharged because its mark came too late (`calendar.marks.honour_for`) is charged
the same way, with the notices kept with it: the practitioner means it. Only that fee and the
email that reports on it (its notice) go now, even in quiet hours; every other due action is
left to the tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slotguard.domain.model import OPEN_STATES, Action, ActionKind, ActionState
from slotguard.domain.plan import LATE_MARK
from slotguard.domain.tick_report import TickReport
from slotguard.planning.quiet import AT_ONCE
from slotguard.policies.account import INCIDENT


@dataclass
class ChargeNow:
    """What happened: `refused` says why nothing was done ("" when the fee was carried out);
    `action` is the fee as it is now (None: no such action)."""

    action: Action | None
    refused: str = ""

    @property
    def charged(self) -> bool:
        return not self.refused and self.action is not None and self.action.state is ActionState.DONE


def reopen_late_mark(ledger: Any, fee: Action, now: datetime, by: str = "charge-now") -> None:
    """A fee kept uncharged because its mark came after `calendar.marks.honour_for`: the
    practitioner means it. The fee (now an incident) and the notices kept with it are open
    again, to be carried out at once."""
    fee.state = ActionState.PENDING_REVIEW
    fee.context[INCIDENT] = True
    fee.reason += f"; charged by hand with {by} (the mark came late)"
    ledger.update_action(fee, now, f"{by}: the practitioner means the late mark")
    for email in ledger.actions(states=[ActionState.CANCELLED], kinds=[ActionKind.EMAIL], calendar_id=fee.calendar_id, event_id=fee.event_id):
        if email.reports_on == fee.id and email.context.get(LATE_MARK):
            email.state = ActionState.PLANNED
            ledger.update_action(email, now, f"{by}: sent with the fee it reports on")


def prepare_charge_now(ledger: Any, action_id: str, now: datetime, by: str = "charge-now") -> ChargeNow:
    """Make the fee `action_id` due now (and not held by quiet hours); `refused` says why not.
    Only ledger writes: the email command does this in the transaction that remembers the
    message, so a crash before `carry_out` leaves the fee due, charged by the next tick."""
    action = ledger.action(action_id)
    if action is not None and action.kind is ActionKind.CHARGE and action.state is ActionState.CANCELLED and action.context.get(LATE_MARK):
        reopen_late_mark(ledger, action, now, by)
    if action is None or action.kind is not ActionKind.CHARGE or action.state not in OPEN_STATES:
        return ChargeNow(action, "not a fee waiting to be charged")
    action.due_at = now
    action.context[AT_ONCE] = True  # asked for now: not held by quiet hours (slotguard/planning/quiet.py)
    if not ledger.update_action(action, now, f"{by} requested by the practitioner"):
        return ChargeNow(ledger.action(action.id), "changed meanwhile (waived?)")
    return ChargeNow(action)


def carry_out(engine: Any, action: Action, now: datetime, report: TickReport) -> ChargeNow:
    """Carry out the fee made due by `prepare_charge_now`, and its notice with it."""
    ledger = engine.ledger
    engine.execute(action, now, report)
    final = ledger.action(action.id)
    if final.state is ActionState.DONE:
        # Its notice, which waits for the fee: the client hears now, not at the window's end.
        for email in ledger.actions(states=OPEN_STATES, kinds=[ActionKind.EMAIL], calendar_id=action.calendar_id, event_id=action.event_id):
            if email.reports_on == action.id:
                email.due_at = now
                email.context[AT_ONCE] = True
                if ledger.update_action(email, now, "sent with its fee, charged now by the practitioner", expect=OPEN_STATES):
                    engine.execute(email, now, report)
    return ChargeNow(final)


def charge_now(engine: Any, action_id: str, now: datetime, report: TickReport, by: str = "charge-now") -> ChargeNow:
    """Carry out the fee `action_id` now, and its notice with it."""
    ready = prepare_charge_now(engine.ledger, action_id, now, by)
    if ready.refused or ready.action is None:
        return ready
    return carry_out(engine, ready.action, now, report)
