"""What happens to one debt at `now`: `evaluate`, a pure function of the fee, the actions about
it, the `[collections]` config and `now` (no I/O, no clock). Its `Decision` is written by
slotguard/collections/ladder.py through the store (docs/collections.md)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from slotguard.collections.debts import (
    CHASING,
    COLLECTIONS,
    COLLECTS,
    INSTALLMENT,
    INSTALLMENT_NOTICE,
    INSTALLMENT_TEMPLATE,
    RECEIPT,
    RECEIPT_TEMPLATE,
    REFERRAL,
    REFERRAL_TEMPLATE,
    REQUESTS,
    REST,
    RETRY,
    SETTLED,
    SETTLEMENT,
    SETTLEMENT_WRITEOFF,
    STEP,
    SUPERSEDED,
    WRITEOFF,
    WRITTEN_OFF,
    Capabilities,
    Decision,
    split,
    status,
    total,
)
from slotguard.config.schema import Collections
from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.model import (
    OPEN_STATES,
    OWED,
    Action,
    ActionKind,
    ActionState,
    ActionSubject,
    action_id_for,
    new_action,
)
from slotguard.domain.money import Money
from slotguard.domain.payment_status import PaymentStatus
from slotguard.policies.account import FEE, TARGET

log = logging.getLogger("slotguard.collections")


class _Builder:
    """Makes collection actions for one fee with stable ids."""

    def __init__(self, fee: Action, now: datetime, capabilities: Capabilities):
        self.fee, self.now, self.capabilities = fee, now, capabilities
        self.key = f"collections/{fee.id}"

    def make(self, kind: ActionKind, slot: str, role: str, reason: str, *, amount: Money | None = None,
             template: str | None = None, due: datetime | None = None, reports_on: str | None = None,
             state: ActionState = ActionState.PLANNED, to: tuple[str, str] | None = None, **context: Any) -> Action:
        fee = self.fee
        email, name = to or (fee.client_email, fee.client_name)
        return new_action(
            ActionSubject(fee.calendar_id, fee.event_id, email, name, fee.appointment_start),
            kind, COLLECTIONS, reason, key=self.key, slot=slot, now=self.now, state=state, due=due, amount=amount,
            template=template, reports_on=reports_on, executed_at=self.now if state is ActionState.DONE else None,
            context={COLLECTS: fee.id, "role": role, "fee_policy": fee.policy, **context},
        )

    def request(self, slot: str, role: str, amount: Money, reason: str, **context: Any) -> Action:
        """Money asked of the client through a link (or by instructions), no card charged."""
        owed = PaymentStatus.UNPAID if self.capabilities.links else PaymentStatus.RECEIVABLE
        return self.make(ActionKind.CHARGE, slot, role, reason, amount=amount, state=ActionState.DONE,
                         payment_status=owed, purpose=FEE, **context)


def _days(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 86400))


def evaluate(
    fee: Action,
    related: Sequence[Action],
    config: Collections,
    now: datetime,
    capabilities: Capabilities = Capabilities(),
    practitioner: tuple[str, str] = ("", ""),
    not_before: datetime | None = None,
) -> Decision:
    """Decide what happens to one debt at `now`. Pure: no I/O, no clock.

    Given the fee, every action that may be about it (collection actions with
    context["collects"] == fee.id; refunds, credits and waivers whose target_action_id is the
    fee; others are ignored), the validated `[collections]` config, what the provider can do
    and the practitioner's (email, name) for the referral email; with `not_before`, no reminder
    step is planned before then (the client had a payment email today:
    slotguard/collections/together.py), though the write-off or referral step is. Returns a Decision: the
    balance and state, the actions to add (at most one step per call), open actions to
    cancel and requests to mark superseded. Raises nothing for well-formed actions.
    """
    assert fee.amount is not None
    currency = fee.amount.currency
    mine = [a for a in related if a.policy == COLLECTIONS and a.context.get(COLLECTS) == fee.id]
    covering = [
        a for a in related
        if a.policy != COLLECTIONS and a.kind in (ActionKind.REFUND, ActionKind.CREDIT, ActionKind.WAIVE)
        and a.context.get(TARGET) == fee.id and a.state is not ActionState.CANCELLED and a.amount
    ]
    builder = _Builder(fee, now, capabilities)
    charges = [a for a in mine if a.kind is ActionKind.CHARGE]
    payments = [c for c in charges if c.state is ActionState.DONE and status(c) == PaymentStatus.PAID]
    paid = total(payments, currency) + (fee.amount if status(fee) == PaymentStatus.PAID else Money.zero(currency))
    covered = total(covering, currency)
    written = total((w for w in mine if w.kind is ActionKind.WRITEOFF and w.state is ActionState.DONE), currency)
    decision = Decision(fee, Money.zero(currency), paid, covered, written, "owed")
    by_id = {a.id: a for a in mine}

    # A settlement paid in time: the rest is written off as offered.
    left = fee.amount - paid - covered - written
    for offer in charges:
        if offer.context.get("role") == SETTLEMENT and status(offer) == PaymentStatus.PAID and left.minor > 0:
            assert offer.amount is not None  # a settlement offer asks for an amount (_fire)
            writeoff = builder.make(
                ActionKind.WRITEOFF, f"settlement-writeoff-{offer.id}", SETTLEMENT_WRITEOFF,
                f"collections: settlement accepted: {offer.amount} paid of {offer.amount + left}; the rest, {left}, written off as offered",
                amount=left, state=ActionState.DONE,
            )
            if writeoff.id not in by_id:
                decision.new.append(writeoff)
            written, left = written + left, Money.zero(currency)
    decision.written_off = written
    decision.balance = Money(max(0, left.minor), currency)
    asked = [c for c in charges if c.context.get("role") in (REST, RETRY) and c.state is ActionState.DONE and status(c) in OWED]
    decision.payable = max(asked, key=lambda c: c.created_at).id if asked and decision.balance != fee.amount else fee.id
    fee_owed = fee.state is ActionState.DONE and status(fee) in OWED
    decision.step = len({a.context.get("step") for a in mine if a.context.get("role") in (STEP, WRITEOFF, REFERRAL)})

    if decision.balance.is_zero or not fee_owed:
        _close(decision, mine, fee_owed, builder)
        return decision
    if any(a.context.get("role") == REFERRAL and a.state is not ActionState.CANCELLED for a in mine):
        decision.state = "referred"
        return decision

    # Settlement offers end at their deadline (one paid late before we noticed still counts).
    for offer in charges:
        if offer.context.get("role") == SETTLEMENT and status(offer) in OWED:
            until = from_utc_text(str(offer.context["valid_until"]))
            if now >= until:
                decision.supersede[offer.id] = f"the settlement offer ended on {to_utc_text(until)}"

    broken_at = _plan(decision, mine, builder, now)
    if decision.state == "plan":
        return decision

    steps = config.steps
    fired = sorted(
        (a for a in mine if a.context.get("role") in (STEP, WRITEOFF, REFERRAL) and a.context.get("step") is not None),
        key=lambda a: int(a.context["step"]),
    )
    index = int(fired[-1].context["step"]) + 1 if fired else 0
    if index >= len(steps):
        return decision
    started = fee.executed_at or fee.updated_at
    if fired:
        previous = fired[-1]
        anchor = max(previous.created_at, broken_at) if broken_at else previous.created_at
        due = anchor + (steps[index].after - steps[int(previous.context["step"])].after)
    else:
        due = started + steps[index].after
        if broken_at:
            due = max(due, broken_at)
    if now < due:
        decision.next_at = due
        return decision
    if not_before is not None and now < not_before and steps[index].action != "writeoff_or_refer":
        decision.next_at = not_before  # one payment email a client a day: this step waits for the next day
        return decision
    _fire(decision, index, config, mine, builder, now, started, practitioner)
    decision.step = index + 1
    return decision


def _close(decision: Decision, mine: list[Action], fee_owed: bool, builder: _Builder) -> None:
    """The debt is paid, waived or written off: stop chasing; a receipt for payments."""
    fee = decision.fee
    assert fee.amount is not None  # evaluate takes only fees with an amount (asserted there)
    why = "the balance is settled" if decision.balance.is_zero else "the fee is no longer owed"
    for action in mine:
        if action.context.get("role") in CHASING and action.state in OPEN_STATES:
            decision.cancel[action.id] = why
        elif action.kind is ActionKind.CHARGE and action.state is ActionState.DONE and status(action) in OWED:
            decision.supersede[action.id] = why
    made_payments = decision.paid.minor > 0
    if decision.covered.minor >= fee.amount.minor:
        decision.state = "waived"  # the practitioner gave it up: no thank-you for a payment
    elif made_payments:
        decision.state = "settled"
    elif decision.written_off.minor > 0:
        decision.state = "written_off"
    elif decision.covered.minor > 0:
        decision.state = "waived"
    else:
        decision.state = "closed"
    if fee_owed and decision.balance.is_zero:
        decision.close_fee = {"settled": SETTLED, "written_off": WRITTEN_OFF}.get(decision.state, "")
    receipt_id = action_id_for(builder.key, COLLECTIONS, ActionKind.EMAIL.value, "receipt")
    ladder_ran = any(a.context.get("role") != RECEIPT for a in mine)
    if made_payments and ladder_ran and decision.state == "settled" and not any(a.id == receipt_id for a in mine):
        paid_by = sorted(
            ((a.executed_at or a.updated_at, a.amount) for a in mine
             if a.kind is ActionKind.CHARGE and status(a) == PaymentStatus.PAID and a.amount),
            key=lambda item: item[0],
        )
        if status(fee) == PaymentStatus.PAID:
            paid_by.append((fee.updated_at, fee.amount))
        decision.new.append(builder.make(
            ActionKind.EMAIL, "receipt", RECEIPT, f"collections: thank the client: {decision.paid} received, nothing more is owed",
            template=RECEIPT_TEMPLATE, reports_on=fee.id,
            paid_total=decision.paid.as_json(), original=fee.amount.as_json(),
            written_off=decision.written_off.as_json() if decision.written_off.minor else None,
            payments=[{"amount": amount.as_json(), "at": to_utc_text(at)} for at, amount in paid_by],
        ))


def _plan(decision: Decision, mine: list[Action], builder: _Builder, now: datetime) -> datetime | None:
    """An accepted plan: schedule its installments, or find it broken (return when it broke).
    Sets decision.state to "plan" while it runs."""
    firsts = [a for a in mine if a.context.get("role") == INSTALLMENT and a.context.get("installment") == 1 and status(a) == PaymentStatus.PAID]
    if not firsts:
        return None
    first = max(firsts, key=lambda a: int(a.context.get("plan", 0)))
    plan = int(first.context.get("plan", 0))
    amounts = [Money(**item) for item in first.context["amounts"]]
    every = timedelta(seconds=int(first.context["every_seconds"]))
    offered = from_utc_text(str(first.context["offered_at"]))
    existing = {int(a.context["installment"]): a for a in mine if a.context.get("role") == INSTALLMENT and int(a.context.get("plan", -1)) == plan}
    notices = [a for a in mine if a.context.get("role") == INSTALLMENT_NOTICE and int(a.context.get("plan", -1)) == plan]
    # The schedule runs from the offer; a first installment paid after its time (found late,
    # or recorded late) starts it from now, so the rest is never charged all at once.
    anchor = offered if now < offered + every else now
    broken_at: datetime | None = None
    for number, amount in enumerate(amounts, start=1):
        installment = existing.get(number)
        due = offered if number == 1 else anchor + (number - 1) * every
        if installment is not None and installment.context.get("due_on"):
            due = from_utc_text(str(installment.context["due_on"]))
        if installment is None:
            reason = f"collections: installment {number} of {len(amounts)} of the payment plan the client accepted ({amount}, due {to_utc_text(due)})"
            charge = builder.make(ActionKind.CHARGE, f"plan{plan}-{number}", INSTALLMENT, reason, amount=amount, due=due,
                                  plan=plan, installment=number, of=len(amounts), purpose=FEE, due_on=to_utc_text(due))
            decision.new.append(charge)
            decision.new.append(builder.make(
                ActionKind.EMAIL, f"plan{plan}-{number}-notice", INSTALLMENT_NOTICE, f"tell the client about installment {number} of {len(amounts)}",
                template=INSTALLMENT_TEMPLATE, due=due, reports_on=charge.id, plan=plan, installment=number, of=len(amounts),
                due_on=to_utc_text(due), chases=True,
            ))
            continue
        if status(installment) == PaymentStatus.PAID:
            continue
        if installment.state is ActionState.CANCELLED:
            # Withdrawn when the plan broke (missed), or not charged (the balance changed).
            broken_at = due + every if status(installment) == SUPERSEDED else installment.updated_at
            break
        unpaid = installment.state is ActionState.FAILED or (installment.state is ActionState.DONE and status(installment) in OWED)
        if unpaid and now >= due + every:
            broken_at = due + every
            break
    paid_count = sum(1 for a in existing.values() if status(a) == PaymentStatus.PAID)
    if broken_at is None:
        decision.state = "plan"
        decision.plan = {"paid": paid_count, "of": len(amounts)}
        return None
    why = f"the payment plan ended: an installment was not paid by {to_utc_text(broken_at)}; the reminders resume for the rest"
    for action in [*existing.values(), *notices]:
        if action.state in OPEN_STATES:
            decision.cancel[action.id] = why
        elif action.kind is ActionKind.CHARGE and action.state is ActionState.DONE and status(action) in OWED:
            decision.supersede[action.id] = why
    return broken_at


def _fire(decision: Decision, index: int, config: Collections, mine: list[Action], builder: _Builder,
          now: datetime, started: datetime, practitioner: tuple[str, str]) -> None:
    """Plan step `index` now: its email (with an offer, a card retry) or the final decision."""
    fee, balance = decision.fee, decision.balance
    assert fee.amount is not None  # evaluate takes only fees with an amount (asserted there)
    step = config.steps[index]
    number = index + 1
    overdue = _days(now - started)
    # Links and requests of earlier steps give way to this one (an open settlement stands).
    for action in mine:
        role = action.context.get("role")
        if action.kind is ActionKind.CHARGE and action.state is ActionState.DONE and status(action) in OWED and role in REQUESTS:
            if role == SETTLEMENT and action.id not in decision.supersede:
                continue
            decision.supersede.setdefault(action.id, f"replaced by step {number} of the ladder")
    payable = fee
    if balance != fee.amount:
        rest = builder.request(f"rest-{balance.minor}", REST, balance, f"collections: the rest still owed, {balance} of {fee.amount}, asked at step {number}")
        decision.new.append(rest)
        decision.supersede.pop(rest.id, None)
        payable = rest
        decision.payable = rest.id
    if step.action == "writeoff_or_refer":
        _decide(decision, index, config, builder, overdue, practitioner, mine)
        return
    context: dict[str, Any] = {
        "step": index, "balance": balance.as_json(), "original": fee.amount.as_json(),
        "days_overdue": overdue, "payable": payable.id, "chases": True,
    }
    reason = f"collections step {number}: {balance} unpaid for {overdue} days; {step.template}"
    reports_on = fee.id
    if step.retry_charge and builder.capabilities.charge_cards:
        retry = builder.make(
            ActionKind.CHARGE, f"step{index}-retry", RETRY,
            f"collections step {number}: the saved card tried again for the {balance} still owed (once for this step)",
            amount=balance, step=index, purpose=FEE,
        )
        decision.new.append(retry)
        reports_on = retry.id
        context["retried"] = True  # the email goes only if the retry did not settle it
        reason += ", after one retry of the saved card"
    if step.offer == "plan":
        amounts = split(balance, config.plan.installments, config.plan.min_installment)
        if amounts:
            every = config.plan.every
            schedule = [{"number": n, "amount": a.as_json(), "due": to_utc_text(now + (n - 1) * every)} for n, a in enumerate(amounts, start=1)]
            first = builder.request(
                f"plan{index}-1", INSTALLMENT, amounts[0],
                f"collections step {number}: payment plan offered, {len(amounts)} installments of about {amounts[-1]} every {_days(every)} days; paying this first one accepts it",
                plan=index, installment=1, of=len(amounts), amounts=[a.as_json() for a in amounts],
                every_seconds=int(every.total_seconds()), offered_at=to_utc_text(now),
            )
            decision.new.append(first)
            context["offer"] = {"kind": "plan", "installments": schedule, "every_days": _days(every), "request": first.id}
            reason += f", offering a plan of {len(amounts)} installments"
        else:
            reason += f"; no plan offered: {balance} is too small to split (min_installment {config.plan.min_installment})"
    elif step.offer == "settlement":
        discount = balance.percent(config.settlement.discount)
        amount = balance - discount
        until = now + config.settlement.valid_for
        offer = builder.request(
            f"settlement{index}", SETTLEMENT, amount,
            f"collections step {number}: settlement offered: {amount} instead of {balance} if paid by {to_utc_text(until)}",
            step=index, valid_until=to_utc_text(until), discount=f"{config.settlement.discount.normalize():f}%",
        )
        decision.new.append(offer)
        context["offer"] = {
            "kind": "settlement", "amount": amount.as_json(), "discount": offer.context["discount"],
            "forgiven": discount.as_json(), "valid_until": to_utc_text(until), "request": offer.id,
        }
        reason += f", offering to settle for {amount} until {to_utc_text(until)}"
    decision.new.append(builder.make(ActionKind.EMAIL, f"step{index}", STEP, reason, template=step.template,
                                     reports_on=reports_on, **context))


def _decide(decision: Decision, index: int, config: Collections, builder: _Builder, overdue: int,
            practitioner: tuple[str, str], mine: list[Action]) -> None:
    """The last step: write off or refer, with the computation in the reason."""
    balance = decision.balance
    assert decision.fee.amount is not None  # evaluate takes only fees with an amount (asserted there)
    threshold = config.writeoff_below
    cost = config.collection_cost.of(balance)
    recovery = balance - cost
    number = index + 1
    computation = f"referring it would cost about {cost} ({config.collection_cost} collection cost) and recover about {recovery}"
    if threshold is not None and balance < threshold:
        why = f"{balance} unpaid for {overdue} days is below writeoff_below {threshold}: written off, not chased further"
    elif recovery.minor <= 0 or (threshold is not None and recovery < threshold):
        limit = f"below writeoff_below {threshold}" if threshold is not None else "nothing"
        why = f"{balance} unpaid for {overdue} days: {computation}, {limit}: not worth it, written off"
    else:
        limit = f", at least writeoff_below {threshold}" if threshold is not None else ""
        why = f"{balance} unpaid for {overdue} days after {index} reminder step(s): {computation}{limit}: refer it (your decision: an agency, small claims, or let it go)"
        decision.new.append(builder.make(
            ActionKind.EMAIL, "referral", REFERRAL, f"collections step {number}: {why}", template=REFERRAL_TEMPLATE,
            reports_on=decision.fee.id, to=practitioner, step=index, chases=True,
            balance=balance.as_json(), original=decision.fee.amount.as_json(), days_overdue=overdue,
            cost=cost.as_json(), recovery=recovery.as_json(), collection_cost=str(config.collection_cost),
            debtor={"email": decision.fee.client_email, "name": decision.fee.client_name},
        ))
        decision.state = "referred"
        return
    decision.new.append(builder.make(ActionKind.WRITEOFF, "writeoff", WRITEOFF, f"collections step {number}: {why}",
                                     amount=balance, state=ActionState.DONE, step=index))
    decision.written_off = decision.written_off + balance
    decision.balance = Money.zero(balance.currency)
    decision.state = "written_off"
    decision.close_fee = WRITTEN_OFF
    decision.new = [action for action in decision.new if action.context.get("role") != REST]
    for action in mine:
        if action.kind is ActionKind.CHARGE and action.state is ActionState.DONE and status(action) in OWED:
            decision.supersede[action.id] = "the debt was written off"
