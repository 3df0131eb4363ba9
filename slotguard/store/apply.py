"""Writing a plan: the one place where what planning decided becomes ledger rows.

`Store.apply(plan, key=..., now=...)` writes a whole `Plan` (slotguard/domain/plan.py) in one
ledger transaction: a crash or an error at any point leaves all of it or none of it (inside
the engine's page transaction it joins that one, and the engine undoes the event alone). It
gives each new proposal its stable id (`action_id_for(key, policy, kind, slot)`, the
idempotency key Stripe sees, so it must never change), puts fees and prepayments under the
review window (not a charge the client pays themselves through a link: `CLIENT_PAYS`), cancels
fees (and their notices) for appointments before `charge_from`, records a fee taken to zero as
a `waive` action, and waives or cancels what a new action `supersedes`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import (
    CLIENT_PAYS,
    MONEY_KINDS,
    OPEN_STATES,
    OWED,
    WAITING_WAIVER,
    Action,
    ActionKind,
    ActionState,
    ActionSubject,
    Proposal,
    action_id_for,
    new_action,
)
from slotguard.domain.money import Money
from slotguard.domain.payment_status import PaymentStatus
from slotguard.domain.plan import LATE_MARK, WAIVED_AMOUNT, Plan
from slotguard.domain.quiet_hours import QuietHours, next_allowed
from slotguard.policies.account import DEPOSIT, FEE, PREPAYMENT, SUPERSEDES, purpose_of
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.planner")

# Money the practitioner gets to review before it is taken: fees and prepayments. A deposit
# is expected at booking and goes at once. A charge the client pays themselves (`CLIENT_PAYS`:
# only a payment link is made, no card is charged) moves no money without the client acting,
# so it is asked at once too: a prepayment for a booking made at short notice must reach the
# client before the session (issue 13, item 4).
REVIEWED = frozenset({FEE, PREPAYMENT})
RECORD_KINDS = frozenset({ActionKind.WAIVE, ActionKind.WRITEOFF, ActionKind.CREDIT})


class Store:
    """Writes plans into `ledger`. `review_window` delays fees; fees for appointments
    starting before `charge_from` are stored cancelled (None: no such limit). A fee whose
    window ends in `quiet` hours (mail.quiet_hours, on the wall clock of the subject's time
    zone, else `zone`) falls due at their end, and its notice with it: a charge goes with
    the email that explains it (slotguard/domain/quiet_hours.py)."""

    def __init__(self, ledger: Ledger, review_window: timedelta = timedelta(0), charge_from: datetime | None = None,
                 quiet: QuietHours | None = None, zone: str = "UTC"):
        self.ledger = ledger
        self.review_window = review_window
        self.charge_from = charge_from
        self.quiet = quiet
        self.zone = zone

    def apply(self, plan: Plan, *, key: str = "", now: datetime) -> list[Action]:
        """Write `plan` in one transaction: waivers that wait, waivers, cancellations, then
        the new actions (`key` is the happening key their ids derive from). Returns the
        actions newly stored (an id stored before is not stored again). Raises what the
        ledger raises (LedgerError), having written nothing of the plan."""
        with self.ledger.transaction():
            for action_id, why in plan.wait.items():
                action = self.ledger.action(action_id)
                if action is not None:
                    action.context[WAITING_WAIVER] = why
                    self.ledger.update_action(action, now, f"waiver waits for the outcome of this {action.kind.value}: {why}",
                                              expect=[action.state])
            for action_id, why in plan.waive.items():
                action = self.ledger.action(action_id)
                if action is not None and action.state in (*OPEN_STATES, ActionState.FAILED):
                    was = OPEN_STATES if action.state in OPEN_STATES else [ActionState.FAILED]
                    waive_action(self.ledger, action, why, now, was=was)
            for action_id, note in plan.cancel.items():
                action = self.ledger.action(action_id)
                if action is not None and action.state in OPEN_STATES:
                    action.state = ActionState.CANCELLED
                    self.ledger.update_action(action, now, note, expect=OPEN_STATES)
            stored = self._store(plan, key, now) if plan.new else []
            for action in plan.actions:
                if self.ledger.add_action(action):
                    stored.append(action)
                    log.info("planned action=%s kind=%s template=%s event=%s", action.id, action.kind.value,
                             action.template or "", action.event_ref)
            for action_id, note in plan.withdraw.items():
                action = self.ledger.action(action_id)
                if action is not None and action.state is ActionState.DONE and action.context.get("payment_status") in OWED:
                    action.state = ActionState.CANCELLED
                    action.context["payment_status"] = PaymentStatus.SUPERSEDED
                    self.ledger.update_action(action, now, note, expect=[ActionState.DONE])
            for action_id, (payment_status, note) in plan.close.items():
                action = self.ledger.action(action_id)
                if action is not None and action.state is ActionState.DONE and action.context.get("payment_status") in OWED:
                    action.context["payment_status"] = payment_status
                    self.ledger.update_action(action, now, note)
        return stored

    def _store(self, plan: Plan, key: str, now: datetime) -> list[Action]:
        subject = plan.subject
        assert subject is not None, "a plan with new proposals names whom they are for"
        stored: list[Action] = []
        due_by_slot: dict[str, datetime] = {}
        ids_by_slot: dict[str, str] = {}
        start = subject.appointment_start
        before_watch = not plan.by_hand and self.charge_from is not None and start is not None and start < self.charge_from
        for proposal in plan.new:
            action_id = action_id_for(key, proposal.policy, proposal.kind.value, proposal.slot)
            ids_by_slot[proposal.slot] = action_id
            decided = self._decide(proposal, before_watch, due_by_slot, now, subject)
            if decided is None:
                continue  # nothing to hold, release or refund
            kind, state, due, amount, executed_at, reason = decided
            if proposal.context.get(LATE_MARK) and state in OPEN_STATES:
                # A fee whose mark came too late, and the notices about it: kept, not carried
                # out (`main.py charge-now` reopens them if the practitioner means it).
                state = ActionState.CANCELLED
            due_by_slot[proposal.slot] = due
            action = new_action(
                subject, kind, proposal.policy, reason, key=key, action_id=action_id, now=now, state=state, due=due,
                amount=amount, template=proposal.template, executed_at=executed_at, context=proposal.context,
                reports_on=ids_by_slot.get(proposal.reports_on) if proposal.reports_on else None,
            )
            if self.ledger.add_action(action):
                stored.append(action)
                log.info(
                    "planned action=%s kind=%s state=%s policy=%s event=%s due=%s",
                    action.id, action.kind.value, action.state.value, action.policy, action.event_ref, to_utc_text(due),
                )
                supersede(self.ledger, action, now)
        return stored

    def _decide(self, proposal: Proposal, before_watch: bool, due_by_slot: dict[str, datetime], now: datetime, subject: ActionSubject):
        """(kind, state, due, amount, executed_at, reason) of the action for `proposal`, or
        None when it is a zero amount to hold, release or refund."""
        review = self.review_window
        state = ActionState.PLANNED
        reason, kind, amount, executed_at = proposal.reason, proposal.kind, proposal.amount, None
        if kind in MONEY_KINDS and proposal.amount is not None:
            earliest = max(proposal.due or now, now)
            reviewed = (kind in (ActionKind.CHARGE, ActionKind.CAPTURE) and purpose_of(kind, proposal.context) in REVIEWED
                        and not (kind is ActionKind.CHARGE and proposal.context.get(CLIENT_PAYS)))
            due = earliest + review if reviewed else earliest
            if reviewed:
                state = ActionState.PENDING_REVIEW
                due = self._after_quiet_hours(due, proposal, subject)
            if proposal.amount.is_zero and kind in (ActionKind.CHARGE, ActionKind.CAPTURE):
                # Recorded as waived, with the amount that was let go.
                kind, state, due, executed_at = ActionKind.WAIVE, ActionState.DONE, now, now
                waived = proposal.context.get(WAIVED_AMOUNT)
                amount = Money(**waived) if waived else proposal.amount
            elif proposal.amount.is_zero:
                return None
            elif before_watch:
                state = ActionState.CANCELLED
                reason += (f"; not charged: the appointment is before charge_from ({to_utc_text(self.charge_from)}), "
                           "when Slotguard started watching")
        elif kind in RECORD_KINDS:
            due = max(proposal.due or now, now)
            if kind is ActionKind.CREDIT and purpose_of(kind, proposal.context) in REVIEWED and proposal.amount:
                # Money already paid (a deposit) kept as a fee: reviewed like any fee.
                state, due = ActionState.PENDING_REVIEW, self._after_quiet_hours(due + review, proposal, subject)
                if before_watch:
                    state = ActionState.CANCELLED
                    reason += "; not kept: the appointment is before charge_from"
            elif due <= now:
                state, executed_at = ActionState.DONE, now
        else:
            due = proposal.due or now
            if proposal.reports_on in due_by_slot:
                due = max(due, due_by_slot[proposal.reports_on])
            if before_watch and proposal.reports_on:
                state = ActionState.CANCELLED
                reason += "; not sent: the fee it reports on is before charge_from"
        return kind, state, due, amount, executed_at, reason

    def _after_quiet_hours(self, due: datetime, proposal: Proposal, subject: ActionSubject) -> datetime:
        """`due` moved out of the client's quiet hours: a fee is charged with its notice,
        never at night. Money asked ahead of a session (a prepayment) is not moved past
        the session's start."""
        moved = next_allowed(due, self.quiet, subject.timezone or self.zone)
        start = subject.appointment_start
        if purpose_of(proposal.kind, proposal.context) != FEE and start is not None and moved >= start:
            return due
        return moved


def supersede(ledger: Ledger, action: Action, now: datetime) -> None:
    """Open actions `action` replaces (its context `supersedes`): fees and holds are waived,
    the rest cancelled."""
    for old_id in action.context.get(SUPERSEDES) or ():
        old = ledger.action(str(old_id))
        if old is None or old.state not in OPEN_STATES:
            continue
        why = f"replaced by {action.id} ({action.policy})"
        if old.kind in (ActionKind.CHARGE, ActionKind.CAPTURE, ActionKind.HOLD):
            waive_action(ledger, old, why, now)
            continue  # its notice goes out and says there is nothing to pay
        old.state = ActionState.CANCELLED
        if ledger.update_action(old, now, why, expect=OPEN_STATES):
            cancel_reports(ledger, old, now, f"what it reports on was {why}")


def waive_action(ledger: Ledger, action: Action, why: str, now: datetime, was: Iterable[ActionState] = OPEN_STATES) -> bool:
    """Waive an open fee (or, with `was`, one in those states, e.g. failed); emails reporting
    on it will say there is no fee (a request for a deposit or prepayment no longer needed is
    not sent at all). True if waived."""
    action.state = ActionState.WAIVED
    action.reason = f"{action.reason}; waived: {why}"
    waived = ledger.update_action(action, now, f"waived: {why}", expect=was)
    if waived and purpose_of(action.kind, action.context) in (DEPOSIT, PREPAYMENT):
        cancel_reports(ledger, action, now, "the money it asks for is no longer needed")
    return waived


def cancel_reports(ledger: Ledger, action: Action, now: datetime, why: str) -> None:
    """Cancel the open emails that report on `action`."""
    for email in ledger.actions(states=OPEN_STATES, kinds=[ActionKind.EMAIL], calendar_id=action.calendar_id, event_id=action.event_id):
        if email.reports_on == action.id:
            email.state = ActionState.CANCELLED
            ledger.update_action(email, now, why, expect=OPEN_STATES)
