"""From a happening to planned actions in the ledger.

For one new happening, in order (docs/plugins.md tells plugin authors the same story):
1. lifecycle mail (booking confirmation) and, for a waiver, the slot's open fees waived and
   the money taken or kept for them given back (see `_waive_event`; `main.py waive` uses the
   same rules for one action: `waive_by_hand`);
2. `slotguard_propose` on every enabled policy, fee policies first;
3. `slotguard_modify` on every fee, in `policies.enabled` order (fee policies first), each
   modifier seeing what the previous one left; a modifier may add proposals (a grace email);
   then the safety rules: never negative, never more than the price or `max_single_charge`;
4. `slotguard_settle`: how the final fees are paid (from a deposit, a package credit, a new
   charge), and what happens to deposits;
5. `slotguard_email_details` on every email (booking confirmation included);
6. safety again over every money action: a refund never gives back more than was taken
   and not yet refunded, a hold is released once;
7. storing: stable ids, the review window for fees, `charge_from`, zero fees recorded as
   waived, open actions a proposal supersedes waived or cancelled.
Every step is written into the action's reason ("no_show proposed 900.00 NOK ...;
first_offense_grace waived it: first incident in 365 days"), so the ledger, the digest and
the calendar note tell the same story.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable

from slotguard.config.schema import Settings
from slotguard.domain.durations import to_utc_text
from slotguard.store.ledger import Ledger
from slotguard.domain.model import (
    MONEY_KINDS,
    OPEN_STATES,
    Action,
    ActionKind,
    ActionState,
    Appointment,
    ClientHistory,
    Happening,
    HappeningKind,
    Mark,
    Proposal,
    action_id_for,
)
from slotguard.domain.money import Money
from slotguard.policies.loading import (
    CREDIT,
    DEPOSIT,
    DEPOSIT_APPLIED,
    DEPOSIT_RETURN,
    FEE,
    INCIDENT,
    PREPAYMENT,
    REFUND,
    REPLACES_NOTICES,
    SETTLES,
    SUPERSEDES,
    TARGET,
    ClientAccount,
    Policy,
    derive,
    is_fee,
    money_json,
    purpose_of,
    refund_notice,
)
from slotguard.intake.tracker import MOVED_BEFORE_SEEN

log = logging.getLogger("slotguard.planner")

LIFECYCLE = "lifecycle"
SAFETY = "safety"
# Money the practitioner gets to review before it is taken: fees and prepayments. A deposit
# is expected at booking and goes at once.
REVIEWED = frozenset({FEE, PREPAYMENT})
RECORD_KINDS = frozenset({ActionKind.WAIVE, ActionKind.WRITEOFF, ActionKind.CREDIT})
WAIVED_AMOUNT = "waived_amount"  # context of a fee a modifier took to zero: what was let go
# Money the client paid ahead for an appointment: what a waiver gives back unless it paid
# for a session the client came to.
FUNDS = frozenset({DEPOSIT, PREPAYMENT})
# A rescheduling credit (plugins/reschedule_credit.py): the credit carries `credit_id`, the
# action ending it at its deadline (a refund, or a `credit_expired` record keeping the
# deposit for good) `expires_credit`, and a booking paid by it `uses_credit`, all the same token.
CREDIT_ID, EXPIRES_CREDIT, USES_CREDIT = "credit_id", "expires_credit", "uses_credit"
MANUAL_WAIVER = "manual-waive"  # happening key prefix of what `main.py waive` plans
# Context of a money action whose outcome is unknown (left `executing` by a crash, Stripe
# not reachable to ask) that was waived meanwhile: why. The waiver is applied once the
# outcome is known (slotguard/payments/recovery.py): nothing taken, the fee is waived; money taken,
# it is refunded (released); a payment link out, it is withdrawn.
WAITING_WAIVER = "waiver_waits"
# Context of a money action whose last attempt failed in a way that may have moved money (a
# lost answer) while the provider could not be asked afterwards either: until a lookup or a
# later attempt tells, it counts as an outcome unknown (a waiver waits, as for `executing`).
OUTCOME_UNKNOWN = "outcome_unknown"


@dataclass
class _Inputs:
    """The client's history and account, read from the ledger only if a policy asks."""

    ledger: Ledger
    email: str
    _history: ClientHistory | None = None
    _account: ClientAccount | None = field(default=None)

    def history(self) -> ClientHistory:
        if self._history is None:
            self._history = self.ledger.history(self.email)
        return self._history

    def account(self) -> ClientAccount:
        if self._account is None:
            self._account = ClientAccount.from_actions(self.email, self.ledger.actions(client_email=self.email))
        return self._account

    def forget_account(self) -> None:
        self._account = None


@dataclass
class Planner:
    settings: Settings
    policies: list[Policy]
    ledger: Ledger
    charge_from: datetime

    def plan(self, happening: Happening, appointment: Appointment, now: datetime) -> list[Action]:
        """Plan and store the actions for one new happening; return those newly stored."""
        inputs = _Inputs(self.ledger, appointment.client.email)
        kind = happening.kind
        proposals: list[Proposal] = []
        if kind is HappeningKind.BOOKED:
            proposals += self._booking_mail(appointment, now, rescheduled=False)
        elif kind is HappeningKind.RESCHEDULED and happening.detail != MOVED_BEFORE_SEEN:
            self._cancel_slot_mail(appointment, happening.previous_start, now, "the appointment was moved")
            proposals += self._booking_mail(appointment, now, rescheduled=True)
        elif kind in (HappeningKind.CANCELLED_BY_CLIENT, HappeningKind.CANCELLED_BY_PRACTITIONER):
            self._cancel_slot_mail(appointment, appointment.start, now, "the appointment was cancelled")
        elif kind is HappeningKind.WAIVED:
            proposals += self._waive_event(happening, appointment, now, inputs)
        proposals += self._policy_proposals(happening, appointment, now, inputs)
        proposals = self._email_details(proposals, happening, appointment, now, inputs)
        proposals = self._final_safety(proposals, appointment, inputs)
        return self._store(happening, appointment, proposals, now)

    def _ask(self, policy: Policy, hook: str, inputs: _Inputs, **arguments) -> object:
        """Call a policy's hook, reading history and account only if it takes them."""
        if policy.wants(hook, "history"):
            arguments["history"] = inputs.history()
        if policy.wants(hook, "account"):
            arguments["account"] = inputs.account()
        return policy.call(hook, config=policy.config, **arguments)

    # -- lifecycle mail -------------------------------------------------------------------
    def _booking_mail(self, appointment: Appointment, now: datetime, rescheduled: bool) -> list[Proposal]:
        if appointment.start <= now or appointment.is_cancelled:
            return []
        if not rescheduled and self._series_confirmed(appointment):
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

    def _series_confirmed(self, appointment: Appointment) -> bool:
        """True when another instance of the same recurring series was already confirmed:
        a weekly client gets one confirmation for the series, and reminders for each."""
        if not appointment.series_id:
            return False
        return self.ledger.series_confirmed(appointment.client.email, appointment.series_id)

    def _cancel_slot_mail(self, appointment: Appointment, start: datetime | None, now: datetime, why: str) -> None:
        for action in self.ledger.actions(
            states=OPEN_STATES,
            kinds=[ActionKind.EMAIL],
            calendar_id=appointment.calendar_id,
            event_id=appointment.event_id,
        ):
            if action.policy == LIFECYCLE and (start is None or action.appointment_start == start):
                action.state = ActionState.CANCELLED
                self.ledger.update_action(action, now, why)

    # -- waivers --------------------------------------------------------------------------
    def _waiver_reason(self, happening: Happening, appointment: Appointment) -> str:
        if happening.detail:
            return happening.detail
        for policy in self.policies:
            found = policy.call("slotguard_waiver_reason", config=policy.config, happening=happening, appointment=appointment)
            if found:
                return str(found)
        return "waived by the practitioner's mark on the event"

    def _waive_event(self, happening: Happening, appointment: Appointment, now: datetime, inputs: _Inputs) -> list[Proposal]:
        """A waiver means no fee for this slot: open fees are waived; money taken for them is
        given back (refunded, a hold released, a request never paid withdrawn), and so is a
        deposit or prepayment kept for them. A rescheduling credit kept from this appointment
        is given back now. When the waiver is the appointment's outcome (the waive mark), a
        deposit or prepayment not used yet is given back too; when it only takes a no-show or
        late-cancellation mark off, the appointment stands and that money stays to pay for the
        session. Money applied to the price of a session the client came to always stays."""
        why = self._waiver_reason(happening, appointment)
        proposals: list[Proposal] = []
        # Only this client's money: after a change of client (slotguard/intake/tracker.py, hand_over)
        # the previous client's fee for the slot stays theirs.
        actions = [
            action
            for action in self.ledger.actions(calendar_id=appointment.calendar_id, event_id=appointment.event_id)
            if action.kind is not ActionKind.EMAIL and action.amount and action.client_email == appointment.client.email
        ]
        for action in actions:
            if purpose_of(action.kind, action.context) == FEE and action.appointment_start == appointment.start:
                proposals += let_go(self.ledger, action, why, now)
        for action in actions:
            if _is_reschedule_credit(action):
                inputs.forget_account()
                proposals += credit_give_back(self.ledger, inputs.account(), action, why, now)[0]
        # Fees waived above no longer keep the deposit or prepayment that paid them: read the
        # account again.
        inputs.forget_account()
        funds = [action for action in actions if purpose_of(action.kind, action.context) in FUNDS]
        proposals += funds_give_back(self.ledger, inputs.account(), funds, why, now, unused=not _mark_taken_off(happening, appointment))
        inputs.forget_account()
        return proposals + [refund_notice(proposal, why) for proposal in proposals]

    # -- policies -------------------------------------------------------------------------
    def _policy_proposals(self, happening: Happening, appointment: Appointment, now: datetime, inputs: _Inputs) -> list[Proposal]:
        common = {"happening": happening, "appointment": appointment, "now": now}
        proposals: list[Proposal] = []
        for policy in self.policies:
            if policy.implements("slotguard_propose"):
                proposals.extend(self._ask(policy, "slotguard_propose", inputs, **common) or [])
        if not proposals and not any(policy.implements("slotguard_settle") for policy in self.policies):
            return []
        modifiers = [policy for policy in self.policies if policy.implements("slotguard_modify")]
        adjusted: list[Proposal] = []
        for proposal in proposals:
            if not is_fee(proposal):
                adjusted.append(proposal)
                continue
            proposal = derive(proposal, context={INCIDENT: True})
            extras: list[Proposal] = []
            for modifier in modifiers:
                if not is_fee(proposal) or proposal.amount.minor <= 0:
                    break  # waived or turned into a record: nothing left to adjust
                changed = self._ask(modifier, "slotguard_modify", inputs, proposal=proposal, **common)
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
            adjusted.append(proposal)
            adjusted.extend(extras)
        for policy in self.policies:
            if policy.implements("slotguard_settle"):
                settled = self._ask(policy, "slotguard_settle", inputs, proposals=tuple(adjusted), **common)
                if settled is not None:
                    adjusted = list(settled)
        return adjusted

    def _email_details(
        self, proposals: list[Proposal], happening: Happening, appointment: Appointment, now: datetime, inputs: _Inputs
    ) -> list[Proposal]:
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
                        policy, "slotguard_email_details", inputs,
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

    def _final_safety(self, proposals: list[Proposal], appointment: Appointment, inputs: _Inputs) -> list[Proposal]:
        """Every money proposal within bounds; money is given back at most once."""
        bounded = [
            self._safety(proposal, appointment) if proposal.kind in MONEY_KINDS and proposal.amount is not None else proposal
            for proposal in proposals
        ]
        return give_back_once(bounded, inputs.account)

    # -- storing --------------------------------------------------------------------------
    def _store(self, happening: Happening, appointment: Appointment, proposals: list[Proposal], now: datetime) -> list[Action]:
        review = self.settings.payments.review_window
        stored: list[Action] = []
        due_by_slot: dict[str, datetime] = {}
        ids_by_slot: dict[str, str] = {}
        before_watch = appointment.start < self.charge_from
        for proposal in proposals:
            action_id = action_id_for(happening.key, proposal.policy, proposal.kind.value, proposal.slot)
            ids_by_slot[proposal.slot] = action_id
            state = ActionState.PLANNED
            reason = proposal.reason
            kind = proposal.kind
            amount = proposal.amount
            executed_at = None
            if kind in MONEY_KINDS and proposal.amount is not None:
                earliest = max(proposal.due or now, now)
                reviewed = kind in (ActionKind.CHARGE, ActionKind.CAPTURE) and purpose_of(kind, proposal.context) in REVIEWED
                due = earliest + review if reviewed else earliest
                if reviewed:
                    state = ActionState.PENDING_REVIEW
                if proposal.amount.is_zero and kind in (ActionKind.CHARGE, ActionKind.CAPTURE):
                    # Recorded as waived, with the amount that was let go.
                    kind, state, due, executed_at = ActionKind.WAIVE, ActionState.DONE, now, now
                    waived = proposal.context.get(WAIVED_AMOUNT)
                    amount = Money(**waived) if waived else proposal.amount
                elif proposal.amount.is_zero:
                    continue  # nothing to hold, release or refund
                elif before_watch:
                    state = ActionState.CANCELLED
                    reason += f"; not charged: the appointment is before charge_from ({to_utc_text(self.charge_from)}), when Slotguard started watching"
            elif kind in RECORD_KINDS:
                due = max(proposal.due or now, now)
                if kind is ActionKind.CREDIT and purpose_of(kind, proposal.context) in REVIEWED and proposal.amount:
                    # Money already paid (a deposit) kept as a fee: reviewed like any fee.
                    state, due = ActionState.PENDING_REVIEW, due + review
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
            due_by_slot[proposal.slot] = due
            context = dict(proposal.context)
            action = Action(
                id=action_id,
                kind=kind,
                state=state,
                policy=proposal.policy,
                reason=reason,
                calendar_id=appointment.calendar_id,
                event_id=appointment.event_id,
                client_email=appointment.client.email,
                client_name=appointment.client.name,
                happening_key=happening.key,
                due_at=due,
                created_at=now,
                updated_at=now,
                amount=amount,
                template=proposal.template,
                reports_on=ids_by_slot.get(proposal.reports_on) if proposal.reports_on else None,
                appointment_start=appointment.start,
                executed_at=executed_at,
                context=context,
            )
            if self.ledger.add_action(action):
                stored.append(action)
                log.info(
                    "planned action=%s kind=%s state=%s policy=%s event=%s due=%s",
                    action.id, action.kind.value, action.state.value, action.policy, action.event_ref, to_utc_text(due),
                )
                self._supersede(action, now)
        return stored

    def _supersede(self, action: Action, now: datetime) -> None:
        supersede(self.ledger, action, now)


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


def give_back_once(proposals: list[Proposal], account: Callable[[], ClientAccount]) -> list[Proposal]:
    """Money is given back at most once: a refund is capped at what is left of its target
    (taken, less the refunds done or planned, in the ledger and among `proposals`) and dropped
    when nothing is left; a hold is released once, and not after it was captured. A dropped
    give-back takes the emails reporting on it along. `account` is read only if needed."""
    refunded: dict[str, int] = {}
    released: set[str] = set()
    dropped: set[str] = set()
    kept: list[Proposal] = []
    for proposal in proposals:
        target = str(proposal.context.get(TARGET) or "")
        if proposal.kind is ActionKind.REFUND and target and proposal.amount is not None:
            left = _refundable(target, account()) - refunded.get(target, 0)
            if left <= 0:
                log.info("dropped refund target=%s: nothing left to refund", target)
                dropped.add(proposal.slot)
                continue
            if proposal.amount.minor > left:
                proposal = proposal.with_amount(
                    Money(left, proposal.amount.currency), f"safety: capped at what is left to refund ({Money(left, proposal.amount.currency)})"
                )
            refunded[target] = refunded.get(target, 0) + proposal.amount.minor
        elif proposal.kind is ActionKind.RELEASE and target:
            if target in released or _settled_hold(target, account()):
                dropped.add(proposal.slot)
                continue
            released.add(target)
        kept.append(proposal)
    return [proposal for proposal in kept if not (proposal.reports_on and proposal.reports_on in dropped)]


def _refundable(target: str, account: ClientAccount) -> int:
    entry = account.entry(target)
    if entry is None or entry.amount is None or entry.state is not ActionState.DONE:
        return 0
    return entry.amount.minor - account.refunded(target)


def _settled_hold(target: str, account: ClientAccount) -> bool:
    """True when a hold was released or captured already (or that is planned)."""
    return any(
        entry.kind in (ActionKind.RELEASE, ActionKind.CAPTURE) and entry.live and entry.context.get(TARGET) == target
        for entry in account.entries
    )


# -- waivers, shared by the waive mark (Planner._waive_event) and `main.py waive` -------------


def _mark_taken_off(happening: Happening, appointment: Appointment) -> bool:
    """True for a waiver that only takes a no-show or late-cancellation mark off (the
    tracker's keys for those end in "-withdrawn") with no waive mark on the event: the
    appointment stands, and may still be attended."""
    return happening.key.endswith("-withdrawn") and Mark.WAIVE not in appointment.marks


def _is_reschedule_credit(action: Action) -> bool:
    return action.kind is ActionKind.CREDIT and purpose_of(action.kind, action.context) == CREDIT and bool(action.context.get(CREDIT_ID))


def let_go(ledger: Ledger, action: Action, why: str, now: datetime, amount: Money | None = None) -> list[Proposal]:
    """Nothing more is asked or kept for `action` (a fee, deposit, prepayment or credit).
    Nothing taken yet: it is waived (a failed one too, so that no `retry` can charge it
    later), in the ledger at once. Money taken: the proposal giving it back, a refund of a
    charge or capture (or, for a credit keeping money paid earlier, of the charge its target
    names), or a release of a hold; `amount` gives back only that much. Returns the proposals
    (without their notices)."""
    if action.kind in MONEY_KINDS and (action.state is ActionState.EXECUTING or (
            action.context.get(OUTCOME_UNKNOWN) and action.state in (*OPEN_STATES, ActionState.FAILED))):
        wait_for_outcome(ledger, action, why, now)
    elif action.state in OPEN_STATES:
        waive_action(ledger, action, why, now)
    elif action.state is ActionState.FAILED and action.kind in (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE):
        # Refused by the provider, so nothing was taken: let it go like an open fee.
        waive_action(ledger, action, why, now, was=[ActionState.FAILED])
    elif action.state is ActionState.DONE:
        if action.kind in (ActionKind.CHARGE, ActionKind.CAPTURE):
            return [refund_proposal(action, why, amount=amount)]
        if action.kind is ActionKind.HOLD:
            return [release_proposal(action, why)]
        if action.kind is ActionKind.CREDIT and action.context.get(TARGET):
            # Money paid earlier (a deposit) kept for the fee, or carried over: give it back.
            return [refund_proposal(action, why, target=str(action.context[TARGET]), amount=amount)]
    return []


def wait_for_outcome(ledger: Ledger, action: Action, why: str, now: datetime) -> bool:
    """A money action being carried out, cut off by a crash before its result was stored, or
    whose last answer was lost (`OUTCOME_UNKNOWN`): whether money moved is not known yet, so
    "nothing was taken" cannot be concluded. The waiver is kept on the action
    (`WAITING_WAIVER`; the engine no longer carries it out) and applied once the outcome is
    known (slotguard/payments/recovery.py). True if stored."""
    action.context[WAITING_WAIVER] = why
    return ledger.update_action(action, now, f"waiver waits for the outcome of this {action.kind.value}: {why}",
                                expect=[action.state])


def funds_give_back(ledger: Ledger, account: ClientAccount, funds: Iterable[Action], why: str, now: datetime, unused: bool = True) -> list[Proposal]:
    """Give back what is left of each fund (a deposit or prepayment: charged, held, or carried
    over as a credit) now that the waived fees no longer keep it: its amount less what live
    entries apply to the price, keep for a fee or gave back already (the entries that name it
    in `settles`; plugins/funds.py). A fund nothing uses any more is given back whole (or, if
    not taken yet, waived) only with `unused`; without, it stays for the session. A fund
    applied to the price of a session the client came to has nothing left: it stays. A hold
    is never given back in part (capturing part of it released the rest)."""
    proposals: list[Proposal] = []
    for fund in funds:
        settlers = [entry for entry in account.entries if entry.live and str(entry.context.get(SETTLES) or "") == fund.id]
        if not settlers:
            if unused:
                proposals += let_go(ledger, fund, why, now)
            continue
        if fund.state is not ActionState.DONE or fund.amount is None or fund.kind is ActionKind.HOLD:
            continue
        left = fund.amount.minor - sum(entry.amount.minor for entry in settlers if entry.amount is not None)
        if left > 0:
            proposals += let_go(ledger, fund, why, now, amount=Money(left, fund.amount.currency))
    return proposals


def credit_give_back(ledger: Ledger, account: ClientAccount, credit: Action, why: str, now: datetime) -> tuple[list[Proposal], str]:
    """A rescheduling credit let go: the deposit it keeps is given back now (refunded, or the
    request withdrawn if it was never paid) and the credit is gone: the action that would end
    it at its deadline (a refund, or keeping the deposit for good) is cancelled, in the ledger
    at once. A credit that already paid a new booking's deposit is that booking's money now:
    nothing is given back, and the second value is the id of that deposit."""
    token = credit.context.get(CREDIT_ID)
    used = next((entry for entry in account.entries if entry.live and entry.context.get(USES_CREDIT) == token), None)
    if used is not None:
        return [], used.id
    for entry in account.entries:
        if entry.context.get(EXPIRES_CREDIT) == token and entry.is_open:
            end = ledger.action(entry.id)
            if end is None:
                continue
            end.state = ActionState.CANCELLED
            if ledger.update_action(end, now, f"the credit was given back: {why}", expect=OPEN_STATES):
                cancel_reports(ledger, end, now, "the credit was given back")
    if credit.state is not ActionState.DONE or not credit.context.get(TARGET):
        return [], ""
    return let_go(ledger, credit, why, now), ""


@dataclass
class HandWaiver:
    """What `main.py waive ACTION_ID` did (see `waive_by_hand`)."""

    waived: bool = False  # the action itself was let go: nothing had been taken
    waiting: bool = False  # its outcome is not known yet: the waiver is applied once it is
    planned: list[Action] = field(default_factory=list)  # give-backs and their notices, newly planned
    before: list[Action] = field(default_factory=list)  # give-backs an earlier run planned already
    problem: str = ""  # why nothing could be done


def waive_by_hand(ledger: Ledger, action: Action, why: str, now: datetime) -> HandWaiver:
    """`main.py waive ACTION_ID`: what the waive mark does, for one action. A fee still open
    (or refused by the provider) is waived; one charged is given back; a deposit or prepayment
    kept for the fee is given back (what the fee kept of it). A deposit or prepayment waived
    by its own id gives back what is left of it (nothing once applied to a session's price).
    A rescheduling credit, or the action ending it, gives the deposit back now (see
    `credit_give_back`). Each give-back is a refund or release with a `refund_notice`, with
    ids stable for `action` (running the command again plans nothing new) and never more
    than is left to give back. Call it inside a ledger transaction."""
    purpose = purpose_of(action.kind, action.context)
    key = f"{MANUAL_WAIVER}/{action.id}"

    def account() -> ClientAccount:
        return ClientAccount.from_actions(action.client_email, ledger.actions(client_email=action.client_email))

    if purpose == DEPOSIT_APPLIED:
        return HandWaiver(problem=f"{action.id}: the {action.amount} paid ahead was applied to the price of a session that took place; nothing to waive")
    was = action.state
    if _is_reschedule_credit(action) or action.context.get(EXPIRES_CREDIT):
        token = action.context.get(EXPIRES_CREDIT) or action.context.get(CREDIT_ID)
        credit = action if _is_reschedule_credit(action) else next(
            (other for other in ledger.actions(calendar_id=action.calendar_id, event_id=action.event_id)
             if _is_reschedule_credit(other) and other.context.get(CREDIT_ID) == token),
            None,
        )
        if credit is None:
            return HandWaiver(problem=f"{action.id}: the credit it ends is not in the ledger; nothing to waive")
        proposals, used_by = credit_give_back(ledger, account(), credit, why, now)
        if used_by:
            return HandWaiver(problem=(
                f"{action.id}: the credit already paid the deposit {used_by} of a new booking; waive that one "
                f"(`main.py waive {used_by}`, or the waive mark on its event)"
            ))
    elif purpose in FUNDS:
        proposals = funds_give_back(ledger, account(), [action], why, now, unused=True)
    else:
        proposals = let_go(ledger, action, why, now)
        fund = ledger.action(str(action.context.get(SETTLES) or "")) if purpose == FEE else None
        if fund is not None and fund.event_ref == action.event_ref and purpose_of(fund.kind, fund.context) in FUNDS:
            # The deposit or prepayment this fee kept: what the fee no longer keeps comes back.
            proposals += funds_give_back(ledger, account(), [fund], why, now, unused=True)
    now_is = ledger.action(action.id) or action
    result = HandWaiver(waived=now_is.state is not was and now_is.state is ActionState.WAIVED,
                        waiting=WAITING_WAIVER in now_is.context)
    proposals = proposals + [refund_notice(proposal, why) for proposal in proposals]
    result.planned, result.before, gone = store_give_backs(ledger, action, proposals, key, now)
    if not (result.waived or result.waiting or result.planned or result.before):
        result.problem = f"{action.id} is {action.state.value}; nothing to waive" + (
            _given_back_by(account(), gone) if gone else _what_uses(ledger, action)
        )
    return result


def store_give_backs(
    ledger: Ledger, action: Action, proposals: list[Proposal], key: str, now: datetime
) -> tuple[list[Action], list[Action], list[Proposal]]:
    """Store give-backs for `action` (refunds, releases, from `let_go` and the like) and
    their notices as planned actions, due now, with ids stable for `key` (storing them again
    plans nothing new), never giving back more than is left (`give_back_once`). Returns the
    actions newly planned, the give-backs planned before under `key`, and the give-back
    proposals dropped because nothing was left to give back."""

    def account() -> ClientAccount:
        return ClientAccount.from_actions(action.client_email, ledger.actions(client_email=action.client_email))

    ids = {proposal.slot: action_id_for(key, proposal.policy, proposal.kind.value, proposal.slot) for proposal in proposals}
    fresh, before, planned = [], [], []
    for proposal in proposals:
        existing = ledger.action(ids[proposal.slot])
        if existing is None:
            fresh.append(proposal)
        elif existing.kind in MONEY_KINDS:
            before.append(existing)
    safe = give_back_once(fresh, account)
    kept_slots = {proposal.slot for proposal in safe}
    gone = [proposal for proposal in fresh if proposal.kind in MONEY_KINDS and proposal.slot not in kept_slots]
    for proposal in safe:
        stored = Action(
            id=ids[proposal.slot], kind=proposal.kind, state=ActionState.PLANNED, policy=proposal.policy, reason=proposal.reason,
            calendar_id=action.calendar_id, event_id=action.event_id, client_email=action.client_email,
            client_name=action.client_name, happening_key=key, due_at=now, created_at=now, updated_at=now,
            amount=proposal.amount, template=proposal.template, appointment_start=action.appointment_start,
            reports_on=ids.get(proposal.reports_on) if proposal.reports_on else None, context=dict(proposal.context),
        )
        if ledger.add_action(stored):
            log.info("planned action=%s kind=%s policy=%s event=%s for=%s", stored.id, stored.kind.value, stored.policy,
                     stored.event_ref, key)
            planned.append(stored)
            supersede(ledger, stored, now)
    return planned, before, gone


def _given_back_by(account: ClientAccount, dropped: list[Proposal]) -> str:
    """For give-backs dropped because nothing was left: the refunds or releases that did it."""
    targets = {str(proposal.context.get(TARGET) or "") for proposal in dropped}
    found = [
        entry.id for entry in account.entries
        if entry.kind in (ActionKind.REFUND, ActionKind.RELEASE) and entry.live and entry.context.get(TARGET) in targets
    ]
    return f": the money was given back already ({', '.join(found)})." if found else ": nothing is left to give back."


def _what_uses(ledger: Ledger, fund: Action) -> str:
    """For a deposit or prepayment with nothing left to give back: what used it."""
    users = [other for other in ledger.actions(calendar_id=fund.calendar_id, event_id=fund.event_id) if other.context.get(SETTLES) == fund.id and other.state in (*OPEN_STATES, ActionState.DONE)]
    if not users:
        return "."
    parts = []
    for user in users:
        purpose = purpose_of(user.kind, user.context)
        if purpose == DEPOSIT_APPLIED:
            parts.append(f"applied to the price of the session ({user.id})")
        elif purpose == FEE:
            parts.append(f"kept for a fee ({user.id}: waive that one)")
        else:
            parts.append(f"{user.kind.value} {user.id} ({user.amount})")
    return ": it was " + "; ".join(parts) + "."


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


def refund_proposal(charge: Action, why: str, target: str | None = None, amount: Money | None = None) -> Proposal:
    """Give back the money `charge` took (a charge or capture; or, for money paid earlier and
    kept by a credit, `target` names the charge holding it), or `amount` of it. The planner
    caps it at what is left."""
    assert charge.amount is not None
    amount = amount or charge.amount
    part = f"{amount}" if amount == charge.amount else f"{amount} (of the {charge.amount})"
    returns_deposit = purpose_of(charge.kind, charge.context) in (DEPOSIT, CREDIT)
    return Proposal(
        kind=ActionKind.REFUND,
        policy=charge.policy,
        reason=f"refund of {part} charged by {charge.policy}: {why}",
        amount=amount,
        slot=f"refund-{charge.id}",
        context={
            "purpose": DEPOSIT_RETURN if returns_deposit else REFUND,
            TARGET: target or charge.id,
            "target_external_id": charge.external_id if not target else "",
            SETTLES: charge.id,
        },
    )


def release_proposal(hold: Action, why: str) -> Proposal:
    assert hold.amount is not None
    return Proposal(
        kind=ActionKind.RELEASE,
        policy=hold.policy,
        reason=f"release of the {hold.amount} hold by {hold.policy}: {why}",
        amount=hold.amount,
        slot=f"release-{hold.id}",
        context={"purpose": DEPOSIT_RETURN, TARGET: hold.id, "target_external_id": hold.external_id, SETTLES: hold.id},
    )
