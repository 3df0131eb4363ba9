"""Waivers: what a waiver gives back, decided into a plan (nothing is written here).

The same rules serve the waive mark on the calendar (`waive_slot`, called by the planner for
a `waived` happening) and `main.py waive ACTION_ID` (`plan_hand_waiver`, written by
`waive_by_hand`): open fees are waived, money taken is refunded or released, a request never
paid is withdrawn, and a deposit or prepayment kept for the fee comes back. An account entry
that a policy created with rules of its own (a rescheduling credit) is undone the way that
policy says (`slotguard_undo`, see `ask_undo`). Every decision goes into a `Draft`
(slotguard/planning/view.py), so what is decided later sees it; the store writes the plan
(slotguard/store/apply.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

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
    Mark,
    Proposal,
    Undo,
    action_id_for,
)
from slotguard.domain.money import Money
from slotguard.domain.plan import COLLECTS, Plan
from slotguard.planning.give_back import give_back_once, refund_proposal, release_proposal
from slotguard.planning.view import AccountView, Draft
from slotguard.policies.account import DEPOSIT, DEPOSIT_APPLIED, FEE, PREPAYMENT, SETTLES, TARGET, AccountEntry, ClientAccount, purpose_of
from slotguard.policies.builders import refund_notice
from slotguard.policies.owners import default_manager
from slotguard.store.apply import Store

# Money the client paid ahead for an appointment: what a waiver gives back unless it paid
# for a session the client came to.
FUNDS = frozenset({DEPOSIT, PREPAYMENT})
MANUAL_WAIVER = "manual-waive"  # happening key prefix of what `main.py waive` plans

AskUndo = Callable[[AccountEntry, ClientAccount], "Undo | None"]


def ask_undo(entry: AccountEntry, account: ClientAccount) -> Undo | None:
    """How the policy that created `entry` undoes it (`slotguard_undo`, first answer wins;
    every installed policy is asked, enabled or not, since its entries outlive its being
    enabled), or None when the usual rules apply."""
    return default_manager().hook.slotguard_undo(entry=entry, account=account)


def let_go(draft: Draft, action: Action, why: str, amount: Money | None = None) -> list[Proposal]:
    """Nothing more is asked or kept for `action` (a fee, deposit, prepayment or credit).
    Nothing taken yet: it is waived (a failed one too, so that no `retry` can charge it
    later). Its outcome not known yet: the waiver waits on it. Money taken: the proposal
    giving it back, a refund of a charge or capture (or, for a credit keeping money paid
    earlier, of the charge its target names), or a release of a hold; `amount` gives back
    only that much. Returns the proposals (without their notices)."""
    if action.kind in MONEY_KINDS and (action.state is ActionState.EXECUTING or (
            action.context.get(OUTCOME_UNKNOWN) and action.state in (*OPEN_STATES, ActionState.FAILED))):
        draft.wait(action, why)
    elif action.state in OPEN_STATES:
        draft.waive(action, why)
    elif action.state is ActionState.FAILED and action.kind in (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE):
        # Refused by the provider, so nothing was taken: let it go like an open fee.
        draft.waive(action, why)
    elif action.state is ActionState.DONE:
        if action.kind in (ActionKind.CHARGE, ActionKind.CAPTURE):
            return [refund_proposal(action, why, amount=amount)]
        if action.kind is ActionKind.HOLD:
            return [release_proposal(action, why)]
        if action.kind is ActionKind.CREDIT and action.context.get(TARGET):
            # Money paid earlier (a deposit) kept for the fee, or carried over: give it back.
            return [refund_proposal(action, why, target=str(action.context[TARGET]), amount=amount)]
    return []


def funds_give_back(draft: Draft, funds: Iterable[Action], why: str, unused: bool = True) -> list[Proposal]:
    """Give back what is left of each fund (a deposit or prepayment: charged, held, or carried
    over as a credit) now that the waived fees no longer keep it: its amount less what live
    entries apply to the price, keep for a fee or gave back already (the entries that name it
    in `settles`; slotguard/policies/funds.py). A fund nothing uses any more is given back whole (or, if
    not taken yet, waived) only with `unused`; without, it stays for the session. A fund
    applied to the price of a session the client came to has nothing left: it stays. A hold
    is never given back in part (capturing part of it released the rest)."""
    proposals: list[Proposal] = []
    account = draft.account()  # as the fees' waivers left it
    for fund in funds:
        fund = draft.action(fund.id) or fund
        settlers = [entry for entry in account.entries if entry.live and str(entry.context.get(SETTLES) or "") == fund.id]
        if not settlers:
            if unused:
                proposals += let_go(draft, fund, why)
            continue
        if fund.state is not ActionState.DONE or fund.amount is None or fund.kind is ActionKind.HOLD:
            continue
        left = fund.amount.minor - sum(entry.amount.minor for entry in settlers if entry.amount is not None)
        if left > 0:
            proposals += let_go(draft, fund, why, amount=Money(left, fund.amount.currency))
    return proposals


def undo(draft: Draft, action: Action, why: str, ask: AskUndo) -> tuple[list[Proposal], Undo] | None:
    """`action` undone as the policy that created it says (`ask`), or None when that policy
    has no rules of its own for it: the entries ending with it are cancelled (with their
    emails) and the money of `Undo.give_back` is let go. With `Undo.problem`, nothing."""
    answer = ask(AccountEntry.of(action), draft.account())
    if answer is None:
        return None
    if answer.problem:
        return [], answer
    for end_id, note in answer.cancel.items():
        end = draft.action(end_id)
        if end is not None and end.state in OPEN_STATES:
            draft.cancel(end, f"{note}: {why}")
            draft.cancel_reports(end, note)
    given = draft.action(answer.give_back) if answer.give_back else None
    return (let_go(draft, given, why) if given is not None else []), answer


def waiver_reason(happening: Happening, appointment: Appointment, policies) -> str:
    """Why the slot is waived: the happening's own words, else a policy's (the claim tag)."""
    if happening.detail:
        return happening.detail
    for policy in policies:
        found = policy.call("slotguard_waiver_reason", config=policy.config, happening=happening, appointment=appointment)
        if found:
            return str(found)
    return "waived by the practitioner's mark on the event"


def waive_slot(draft: Draft, happening: Happening, appointment: Appointment, why: str, ask: AskUndo = ask_undo,
               note: bool = True) -> list[Proposal]:
    """The waive mark (a `waived` happening): no fee for this slot. Open fees are waived;
    money taken for them is given back (refunded, a hold released, a request never paid
    withdrawn), and so is a deposit or prepayment kept for them; an entry a policy undoes its
    own way (a rescheduling credit kept from this appointment) is undone now. When the waiver
    is the appointment's outcome (the waive mark), a deposit or prepayment not used yet is
    given back too; when it only takes a no-show or late-cancellation mark off, the
    appointment stands and that money stays to pay for the session. Money applied to the
    price of a session the client came to always stays. Emails about the slot's fees not sent
    yet are cancelled (`silence_fee_mail`): all of them when a mark was taken off (the client
    came, or did not cancel: there is nothing to tell), and for the waive mark all but the
    fee's own notice, which then says there is no fee, and only with `note`
    (`mail.waiver_note`). Returns the give-backs and their notices; waivers and cancellations
    go into `draft`."""
    # Only this client's money: after a change of client (slotguard/intake/tracker.py, hand_over)
    # the previous client's fee for the slot stays theirs.
    actions = [
        action for action in draft.event_actions()
        if action.kind is not ActionKind.EMAIL and action.amount and action.client_email == appointment.client.email
    ]
    proposals: list[Proposal] = []
    for action in actions:
        if purpose_of(action.kind, action.context) == FEE and action.appointment_start == appointment.start:
            proposals += let_go(draft, draft.action(action.id) or action, why)
    undone: set[str] = set()
    for action in actions:
        if purpose_of(action.kind, action.context) in (FEE, *FUNDS):
            continue
        answered = undo(draft, draft.action(action.id) or action, why, ask)
        if answered is not None and answered[1].entry not in undone:
            undone.add(answered[1].entry)
            proposals += answered[0]
    funds = [action for action in actions if purpose_of(action.kind, action.context) in FUNDS]
    taken_off = _mark_taken_off(happening, appointment)
    proposals += funds_give_back(draft, funds, why, unused=not taken_off)
    fees = [action.id for action in draft.event_actions()
            if action.kind is not ActionKind.EMAIL and action.client_email == appointment.client.email
            and action.appointment_start == appointment.start and purpose_of(action.kind, action.context) == FEE]
    if taken_off:
        silence_fee_mail(draft, fees, f"not sent: {why}, so there is no fee to tell the client about")
    else:
        silence_fee_mail(draft, fees, f"not sent: the fee was waived ({why}) and mail.waiver_note is off", keep_notice=note)
    return proposals + [refund_notice(proposal, why) for proposal in proposals]


def silence_fee_mail(draft: Draft, fee_ids: Iterable[str], note: str, keep_notice: bool = False) -> None:
    """Cancel (into `draft`) every email not sent yet that is about one of the fees `fee_ids`:
    its notice or follow-up (an email reporting on it), a grace warning, and what collections
    planned for it (reminders, installment notices: anything naming it in `collects`, or
    reporting on an action that does). With `keep_notice`, the fee's own notices stay (they
    say there is no fee); collections mail about it goes anyway. Refund notices report on a
    refund, not on the fee, and stay: money given back is always told."""
    fees = set(fee_ids)
    if not fees:
        return
    about = {action.id for action in draft.event_actions() if str(action.context.get(COLLECTS) or "") in fees}
    for email in draft.event_actions():
        if email.kind is not ActionKind.EMAIL or email.state not in OPEN_STATES:
            continue
        collecting = email.id in about or (email.reports_on or "") in about
        if collecting or (email.reports_on in fees and not keep_notice):
            draft.cancel(email, note)


def _mark_taken_off(happening: Happening, appointment: Appointment) -> bool:
    """True for a waiver that only takes a no-show or late-cancellation mark off (the
    tracker's keys for those end in "-withdrawn") with no waive mark on the event: the
    appointment stands, and may still be attended."""
    return happening.key.endswith("-withdrawn") and Mark.WAIVE not in appointment.marks


# -- one action: `main.py waive`, a waiver that waited, `reconcile --repair` ------------------


@dataclass(frozen=True)
class GiveBacks:
    """The give-backs decided for one action, with stable ids for `key`."""

    plan: Plan
    before: tuple[Action, ...] = ()  # give-backs planned under `key` before (not planned again)
    gone: tuple[Proposal, ...] = ()  # give-backs dropped because nothing was left to give back


def give_backs(draft: Draft, action: Action, proposals: list[Proposal], key: str) -> GiveBacks:
    """Give-backs for `action` (from `let_go` and the like, with their notices) as a plan for
    `key`: those planned before under `key` are not planned again, and money is never given
    back twice (`give_back_once`)."""
    ids = {proposal.slot: action_id_for(key, proposal.policy, proposal.kind.value, proposal.slot) for proposal in proposals}
    fresh, before = [], []
    for proposal in proposals:
        existing = draft.action(ids[proposal.slot])
        if existing is None:
            fresh.append(proposal)
        elif existing.kind in MONEY_KINDS:
            before.append(existing)
    safe = give_back_once(fresh, draft.account)
    kept_slots = {proposal.slot for proposal in safe}
    gone = [proposal for proposal in fresh if proposal.kind in MONEY_KINDS and proposal.slot not in kept_slots]
    draft.subject = ActionSubject.of_action(action)
    draft.new = list(safe)
    return GiveBacks(draft.plan(by_hand=True), tuple(before), tuple(gone))


def plan_let_go(view: AccountView, action: Action, why: str, key: str) -> GiveBacks:
    """Let `action` go (`let_go`) and give back what it took, with its notices, as a plan
    with ids stable for `key` (slotguard/payments/recovery.py)."""
    draft = Draft(view)
    proposals = let_go(draft, draft.action(action.id) or action, why)
    return give_backs(draft, action, proposals + [refund_notice(p, why) for p in proposals], key)


@dataclass
class HandWaiver:
    """What `main.py waive ACTION_ID` did (see `waive_by_hand`)."""

    waived: bool = False  # the action itself was let go: nothing had been taken
    waiting: bool = False  # its outcome is not known yet: the waiver is applied once it is
    planned: list[Action] = field(default_factory=list)  # give-backs and their notices, newly planned
    before: list[Action] = field(default_factory=list)  # give-backs an earlier run planned already
    problem: str = ""  # why nothing could be done


def plan_hand_waiver(view: AccountView, action: Action, why: str, ask: AskUndo = ask_undo,
                     note: bool = True) -> tuple[GiveBacks | None, HandWaiver]:
    """`main.py waive ACTION_ID`, decided: what the waive mark does, for one action (see
    `waive_by_hand`), its mail too: for a fee, the emails about it not sent yet are cancelled
    but for its notice, which stays (saying there is no fee) only with `note`
    (`mail.waiver_note`). Returns the give-backs to write (None when nothing can be done) and
    what the waiver does (`planned` is filled in once written)."""
    purpose = purpose_of(action.kind, action.context)
    key = f"{MANUAL_WAIVER}/{action.id}"
    if purpose == DEPOSIT_APPLIED:
        return None, HandWaiver(problem=f"{action.id}: the {action.amount} paid ahead was applied to the price of a session that took place; nothing to waive")
    draft = Draft(view)
    answered = undo(draft, action, why, ask)
    if answered is not None:
        proposals, answer = answered
        if answer.problem:
            return None, HandWaiver(problem=f"{action.id}: {answer.problem}")
    elif purpose in FUNDS:
        proposals = funds_give_back(draft, [action], why, unused=True)
    else:
        proposals = let_go(draft, action, why)
        fund = draft.action(str(action.context.get(SETTLES) or "")) if purpose == FEE else None
        if fund is not None and fund.event_ref == action.event_ref and purpose_of(fund.kind, fund.context) in FUNDS:
            # The deposit or prepayment this fee kept: what the fee no longer keeps comes back.
            proposals += funds_give_back(draft, [fund], why, unused=True)
        if purpose == FEE:
            silence_fee_mail(draft, [action.id], f"not sent: the fee was waived ({why}) and mail.waiver_note is off", keep_notice=note)
    now_is = draft.action(action.id) or action
    result = HandWaiver(waived=now_is.state is not action.state and now_is.state is ActionState.WAIVED,
                        waiting=WAITING_WAIVER in now_is.context)
    decided = give_backs(draft, action, proposals + [refund_notice(proposal, why) for proposal in proposals], key)
    result.before = list(decided.before)
    if not (result.waived or result.waiting or decided.plan.new or decided.before):
        result.problem = f"{action.id} is {action.state.value}; nothing to waive" + (
            _given_back_by(draft.account(), list(decided.gone)) if decided.gone else _what_uses(draft, action)
        )
    return decided, result


def waive_by_hand(ledger, action: Action, why: str, now: datetime, ask: AskUndo = ask_undo, note: bool = True) -> HandWaiver:
    """`main.py waive ACTION_ID`: what the waive mark does, for one action. A fee still open
    (or refused by the provider) is waived; one charged is given back; a deposit or prepayment
    kept for the fee is given back (what the fee kept of it). A deposit or prepayment waived
    by its own id gives back what is left of it (nothing once applied to a session's price).
    An entry its policy undoes its own way (a rescheduling credit, or the action ending it:
    the deposit comes back now) is undone that way. Each give-back is a refund or release
    with a `refund_notice`, with ids stable for `action` (running the command again plans
    nothing new) and never more than is left to give back. Emails about a waived fee not sent
    yet are cancelled, its notice kept only with `note` (`mail.waiver_note`). Decided from one read of the
    ledger (`ledger`, a slotguard.store.ledger.Ledger), written in one transaction."""
    view = AccountView.read(ledger, action.client_email, action.calendar_id, action.event_id)
    decided, result = plan_hand_waiver(view, action, why, ask, note)
    if decided is not None:  # with a problem too: a credit's end cancelled stays cancelled
        result.planned = Store(ledger).apply(decided.plan, key=f"{MANUAL_WAIVER}/{action.id}", now=now)
    return result


def _given_back_by(account: ClientAccount, dropped: list[Proposal]) -> str:
    """For give-backs dropped because nothing was left: the refunds or releases that did it."""
    targets = {str(proposal.context.get(TARGET) or "") for proposal in dropped}
    found = [
        entry.id for entry in account.entries
        if entry.kind in (ActionKind.REFUND, ActionKind.RELEASE) and entry.live and entry.context.get(TARGET) in targets
    ]
    return f": the money was given back already ({', '.join(found)})." if found else ": nothing is left to give back."


def _what_uses(draft: Draft, fund: Action) -> str:
    """For a deposit or prepayment with nothing left to give back: what used it."""
    users = [other for other in draft.event_actions()
             if other.context.get(SETTLES) == fund.id and other.state in (*OPEN_STATES, ActionState.DONE)]
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
