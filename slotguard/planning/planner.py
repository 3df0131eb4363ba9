"""From a happening to a plan: what one new happening calls for, decided without writing.

`plan_happening` is pure: it is given the happening, the appointment, an account view (the
client's history and actions and the event's actions, slotguard/planning/view.py) and `now`,
and returns a `Plan` (slotguard/domain/plan.py); `Planner.plan` reads the view and has the
store write the plan in one transaction (slotguard/store/apply.py). In order (docs/plugins.md
tells plugin authors the same story):
1. lifecycle mail (booking confirmation; at the first sync of a calendar, one introduction of
   the policy per client instead, for bookings made before Slotguard watched); a move or cancellation cancels the old slot's open
   lifecycle mail; for a waiver, the slot's open fees waived and the money taken or kept for
   them given back (slotguard/planning/waivers.py, `waive_slot`; `main.py waive` uses the
   same rules for one action: `waive_by_hand`);
2. `slotguard_propose` on every enabled policy, fee policies first;
3. `slotguard_modify` on every fee, in `policies.enabled` order (fee policies first), each
   modifier seeing what the previous one left; a modifier may add proposals (a grace email);
   then the safety rules: never negative, never more than the price or `max_single_charge`;
   then when a fee may stand (slotguard/planning/fee_stands.py): a fee whose mark came more
   than `calendar.marks.honour_for` after the end is set aside before the modifiers, kept but
   not charged; a fee for a client who had not been told the policy becomes a kind warning
   (`payments.require_policy_notice`);
4. `slotguard_settle`: how the final fees are paid (from a deposit, a package credit, a new
   charge), and what happens to deposits;
5. `slotguard_email_details` on every email (booking confirmation included);
6. safety again over every money action: a refund never gives back more than was taken
   and not yet refunded, a hold is released once (slotguard/planning/give_back.py);
7. storing, by the store: stable ids, the review window for fees, `charge_from`, zero fees
   recorded as waived, open actions a proposal supersedes waived or cancelled.
What planning decided earlier in the same plan (a fee waived) shows in what it reads later
(the account policies see), through the plan's `Draft`; nothing reads the ledger to see its
own writes. Every step is written into the action's reason ("no_show proposed 900.00 NOK
...; first_offense_grace waived it: first incident in 365 days"), so the ledger, the digest
and the calendar note tell the same story.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.model import (
    MONEY_KINDS,
    OPEN_STATES,
    OUTCOME_UNKNOWN,
    WAITING_WAIVER,
    Action,
    ActionKind,
    ActionState,
    ActionSubject,
    Appointment,
    Happening,
    HappeningKind,
    Proposal,
)
from slotguard.domain.money import Money
from slotguard.domain.plan import LATE_MARK, POLICY_TOLD, WAIVED_AMOUNT, Plan
from slotguard.intake.tracker import FIRST_LOOK, MOVED_BEFORE_SEEN
from slotguard.planning.fee_stands import how_told, late_mark, not_charged, untold
from slotguard.planning.give_back import give_back_once
from slotguard.planning.view import AccountView, Draft
from slotguard.planning.waivers import AskUndo, ask_undo, waive_by_hand, waive_slot, waiver_reason
from slotguard.policies.account import DEPOSIT, INCIDENT, PREPAYMENT, REPLACES_NOTICES, derive, is_fee, money_json, purpose_of
from slotguard.policies.info import Policy
from slotguard.store.apply import Store, cancel_reports
from slotguard.store.ledger import Ledger

# Imported from here by the executor, payments and the CLI.
__all__ = ["LIFECYCLE", "OUTCOME_UNKNOWN", "WAITING_WAIVER", "Planner", "plan_happening", "cancel_reports", "waive_by_hand"]

log = logging.getLogger("slotguard.planner")

LIFECYCLE = "lifecycle"
SAFETY = "safety"
EXISTING_BOOKING = "existing_booking"  # a booking confirmation that introduces the policy for a booking made earlier


@dataclass
class Planner:
    """Plans each new happening (`plan_happening`, pure) and has the store write the plan."""

    settings: Settings
    policies: list[Policy]
    ledger: Ledger
    charge_from: datetime
    undo: AskUndo = ask_undo

    def __post_init__(self) -> None:
        self.store = Store(self.ledger, self.settings.payments.review_window, self.charge_from,
                           quiet=self.settings.mail.quiet, zone=self.settings.practice.timezone)

    def plan(self, happening: Happening, appointment: Appointment, now: datetime) -> list[Action]:
        """Plan and store the actions for one new happening; return those newly stored."""
        view = AccountView.read(self.ledger, appointment.client.email, appointment.calendar_id, appointment.event_id)
        plan = plan_happening(happening, appointment, view, now, settings=self.settings, policies=self.policies, undo=self.undo)
        return self.store.apply(plan, key=happening.key, now=now)


def plan_happening(
    happening: Happening,
    appointment: Appointment,
    view: AccountView,
    now: datetime,
    *,
    settings: Settings,
    policies: list[Policy],
    undo: AskUndo = ask_undo,
) -> Plan:
    """What one new happening calls for (steps 1-6 of the module docstring), from the client's
    account as `view` has it; nothing is written. Pure but for what `view` reads."""
    return _Planning(settings, policies, undo, Draft(view, ActionSubject.of_appointment(appointment))).run(happening, appointment, now)


@dataclass
class _Planning:
    """One happening being planned into `draft`."""

    settings: Settings
    policies: list[Policy]
    undo: AskUndo
    draft: Draft

    def run(self, happening: Happening, appointment: Appointment, now: datetime) -> Plan:
        kind = happening.kind
        proposals: list[Proposal] = []
        if kind is HappeningKind.BOOKED and happening.detail == FIRST_LOOK:
            proposals += self._introduction(appointment, now)
        elif kind is HappeningKind.BOOKED:
            proposals += self._booking_mail(appointment, now, rescheduled=False)
        elif kind is HappeningKind.RESCHEDULED and happening.detail != MOVED_BEFORE_SEEN:
            self._cancel_slot_mail(happening.previous_start, "the appointment was moved")
            proposals += self._booking_mail(appointment, now, rescheduled=True)
        elif kind in (HappeningKind.CANCELLED_BY_CLIENT, HappeningKind.CANCELLED_BY_PRACTITIONER):
            self._cancel_slot_mail(appointment.start, "the appointment was cancelled")
        elif kind is HappeningKind.WAIVED:
            why = waiver_reason(happening, appointment, self.policies)
            proposals += waive_slot(self.draft, happening, appointment, why, self.undo, note=self.settings.mail.waiver_note)
        proposals += self._policy_proposals(happening, appointment, now)
        if happening.detail == FIRST_LOOK:
            proposals = _nothing_asked_ahead(proposals, appointment)
        proposals = self._email_details(proposals, happening, appointment, now)
        self.draft.new = self._final_safety(proposals, appointment)
        return self.draft.plan()

    def _ask(self, policy: Policy, hook: str, **arguments) -> Any:
        """Call a policy's hook, reading history and account only if it takes them. Returns
        the hook's answer, of the type its hookspec gives (slotguard/policies/hookspecs.py)."""
        if policy.wants(hook, "history"):
            arguments["history"] = self.draft.view.history()
        if policy.wants(hook, "account"):
            arguments["account"] = self.draft.account()
        return policy.call(hook, config=policy.config, **arguments)

    # -- lifecycle mail -------------------------------------------------------------------
    def _booking_mail(self, appointment: Appointment, now: datetime, rescheduled: bool) -> list[Proposal]:
        if appointment.start <= now or appointment.is_cancelled:
            return []
        # A weekly client gets one confirmation for the series, and reminders for each.
        if not rescheduled and appointment.series_id and self.draft.view.series_confirmed(appointment.series_id):
            return []
        # Reminders are planned when they fall due: see slotguard/planning/reminders.py.
        return [
            Proposal(
                kind=ActionKind.EMAIL,
                policy=LIFECYCLE,
                reason="the appointment was moved" if rescheduled else "confirm the booking and state the policy",
                template="booking_confirmation",
                slot="confirmation",
                context={"rescheduled": rescheduled, "series_id": appointment.series_id or ""},
            )
        ]

    def _introduction(self, appointment: Appointment, now: datetime) -> list[Proposal]:
        """A booking made before Slotguard watched the calendar (its first sync): one
        introduction of the policy per client (the booking confirmation with
        `existing_booking`), for their earliest appointment ahead. A client who already has
        one, or was sent a booking confirmation, gets none; one planned for a later
        appointment of the same client is replaced by one for this earlier appointment."""
        if appointment.start <= now or appointment.is_cancelled:
            return []
        for action in self.draft.view.client_actions():
            if action.kind is not ActionKind.EMAIL or action.template != "booking_confirmation":
                continue
            if action.state in OPEN_STATES and action.context.get(EXISTING_BOOKING) and action.appointment_start \
                    and action.appointment_start > appointment.start:
                self.draft.cancel(action, "the client's introduction goes with an earlier appointment")
            elif action.state in (*OPEN_STATES, ActionState.EXECUTING, ActionState.DONE):
                return []
        return [
            Proposal(
                kind=ActionKind.EMAIL,
                policy=LIFECYCLE,
                reason="introduce the policy for a booking made before Slotguard watched the calendar",
                template="booking_confirmation",
                slot="confirmation",
                context={"rescheduled": False, "series_id": appointment.series_id or "", EXISTING_BOOKING: True},
            )
        ]

    def _cancel_slot_mail(self, start: datetime | None, why: str) -> None:
        for action in self.draft.event_actions():
            if (action.kind is ActionKind.EMAIL and action.state in OPEN_STATES and action.policy == LIFECYCLE
                    and (start is None or action.appointment_start == start)):
                self.draft.cancel(action, why)

    # -- policies -------------------------------------------------------------------------
    def _policy_proposals(self, happening: Happening, appointment: Appointment, now: datetime) -> list[Proposal]:
        common = {"happening": happening, "appointment": appointment, "now": now}
        proposals: list[Proposal] = []
        for policy in self.policies:
            if policy.implements("slotguard_propose"):
                proposals.extend(self._ask(policy, "slotguard_propose", **common) or [])
        if not proposals and not any(policy.implements("slotguard_settle") for policy in self.policies):
            return []
        proposals, too_late = self._set_aside_late(proposals, happening, appointment)
        modifiers = [policy for policy in self.policies if policy.implements("slotguard_modify")]
        adjusted: list[Proposal] = []
        for proposal in proposals:
            if not is_fee(proposal):
                adjusted.append(proposal)
                continue
            proposal = derive(proposal, context={INCIDENT: True})
            extras: list[Proposal] = []
            for modifier in modifiers:
                if not is_fee(proposal) or proposal.amount is None or proposal.amount.minor <= 0:
                    break  # waived or turned into a record: nothing left to adjust
                changed = self._ask(modifier, "slotguard_modify", proposal=proposal, **common)
                before = proposal.amount
                if isinstance(changed, Proposal):
                    proposal = changed
                elif changed:
                    proposal, *more = list(changed)
                    extras.extend(more)
                if proposal.amount is not None and proposal.amount.minor <= 0 < before.minor:
                    proposal = derive(proposal, context={WAIVED_AMOUNT: money_json(before)})
            if proposal.kind in MONEY_KINDS and proposal.amount is not None:
                proposal = self._safety(proposal, appointment)
            if is_fee(proposal) and proposal.amount is not None and proposal.amount.minor > 0:
                proposal, *warning = self._told_first(proposal, happening, appointment)
                extras.extend(warning)
            adjusted.append(proposal)
            adjusted.extend(extras)
        for policy in self.policies:
            if policy.implements("slotguard_settle"):
                settled = self._ask(policy, "slotguard_settle", proposals=tuple(adjusted), **common)
                if settled is not None:
                    adjusted = list(settled)
        return adjusted + too_late

    def _set_aside_late(self, proposals: list[Proposal], happening: Happening, appointment: Appointment) -> tuple[list[Proposal], list[Proposal]]:
        """(the proposals to go on with, the fees whose mark came too late with the notices
        about them): those are kept, not charged, and no modifier or settlement sees them
        (slotguard/planning/fee_stands.py, `late_mark`)."""
        late = late_mark(happening, appointment, self.settings.calendar.marks.honour_for)
        fee_slots = {proposal.slot for proposal in proposals if is_fee(proposal)}
        if late is None or not fee_slots:
            return proposals, []
        aside = [is_fee(proposal) or (proposal.kind is ActionKind.EMAIL and proposal.reports_on in fee_slots) for proposal in proposals]
        kept = [proposal for proposal, late_one in zip(proposals, aside) if not late_one]
        told = how_told(self.draft.client_actions(), appointment, happening, self.settings)
        return kept, [
            not_charged(proposal, late, told) if is_fee(proposal)
            else derive(proposal, because="not sent: the fee it reports on was marked too late", context={LATE_MARK: late})
            for proposal, late_one in zip(proposals, aside) if late_one
        ]

    def _told_first(self, fee: Proposal, happening: Happening, appointment: Appointment) -> list[Proposal]:
        """The fee with how the client had been told the policy; or, with
        `payments.require_policy_notice` and no such word, no fee and a kind warning quoting
        the policy (slotguard/planning/fee_stands.py)."""
        told = how_told(self.draft.client_actions(), appointment, happening, self.settings)
        if told is not None:
            return [derive(fee, context={POLICY_TOLD: told})]
        if not self.settings.payments.require_policy_notice:
            return [fee]
        return untold(fee, happening)

    def _email_details(self, proposals: list[Proposal], happening: Happening, appointment: Appointment, now: datetime) -> list[Proposal]:
        """Let policies add details to each email; drop notices an email replaces."""
        replaced = {proposal.reports_on for proposal in proposals if proposal.context.get(REPLACES_NOTICES) and proposal.reports_on}
        detailing = [policy for policy in self.policies if policy.implements("slotguard_email_details")]
        result = []
        for proposal in proposals:
            if proposal.kind is ActionKind.EMAIL:
                if proposal.reports_on in replaced and not proposal.context.get(REPLACES_NOTICES):
                    continue
                for policy in detailing:
                    extra = self._ask(
                        policy, "slotguard_email_details",
                        proposal=proposal, happening=happening, appointment=appointment, now=now,
                    )
                    if extra:
                        proposal = derive(proposal, context=extra)
            result.append(proposal)
        return result

    def _safety(self, proposal: Proposal, appointment: Appointment) -> Proposal:
        amount = proposal.amount
        assert amount is not None
        if amount.minor < 0:
            return proposal.with_amount(Money.zero(amount.currency), "safety: a negative amount became zero")
        if proposal.kind in (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE) and amount > appointment.price:
            proposal = proposal.with_amount(appointment.price, f"safety: capped at the price {appointment.price}")
            amount = appointment.price
        cap = self.settings.payments.max_single_charge
        if cap is not None and proposal.kind in (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE) and amount > cap:
            proposal = proposal.with_amount(cap, f"safety: capped at max_single_charge {cap}")
        return proposal

    def _final_safety(self, proposals: list[Proposal], appointment: Appointment) -> list[Proposal]:
        """Every money proposal within bounds; money is given back at most once."""
        bounded = [
            self._safety(proposal, appointment) if proposal.kind in MONEY_KINDS and proposal.amount is not None else proposal
            for proposal in proposals
        ]
        return give_back_once(bounded, self.draft.account)


def _nothing_asked_ahead(proposals: list[Proposal], appointment: Appointment) -> list[Proposal]:
    """`proposals` without a deposit or prepayment (money, hold or request): a booking made
    before Slotguard watched the calendar was made without that condition, so the client is
    not asked for money they never agreed to; the introduction states the policy, and the
    bookings that follow carry it."""
    asked = {proposal.slot for proposal in proposals if purpose_of(proposal.kind, proposal.context) in (DEPOSIT, PREPAYMENT)}
    if asked:
        log.info("first_look event=%s not asked ahead: %s", appointment.ref, ",".join(sorted(asked)))
    return [proposal for proposal in proposals
            if purpose_of(proposal.kind, proposal.context) not in (DEPOSIT, PREPAYMENT) and proposal.reports_on not in asked]
