"""Unpaid fees: the polite ladder, payment plans, settlement, write-off (docs/collections.md).

A *debt* is a fee (a `charge` with purpose fee) carried out but not paid: payment_status
"unpaid" (the client has a payment link) or "receivable" (record-only). Its ladder clock
starts when the fee became unpaid (`executed_at`). What happens to it is decided by
`evaluate`, a pure function of the fee, the actions about it and `now`:

- each step of `[collections].steps` falls due `after` the start (a step that comes late
  keeps its gap to the next one) and plans, with ids derived from the fee id and the step,
  its email and optionally a retry of the saved card (a charge of its own, so a restart
  never charges twice) and an offer: a payment plan (the first installment asked now, the
  rest charged on schedule once it is paid) or a settlement (a reduced amount, the rest
  written off when it is paid within the deadline);
- a missed installment ends the plan and the ladder resumes for the rest;
- the last step writes the debt off (below `writeoff_below`, or when the expected recovery
  after `collection_cost` is below it) or refers it: the practitioner gets an email with
  the evidence pack, and the digest lists it;
- the ladder stops at once when the balance is paid (polling, webhooks, `mark-paid`), when
  the practitioner waives, or when a refund or credit covers it; a `payment_receipt` goes
  out when payments settled it. Chasing actions still open are cancelled, and checked again
  when they are carried out (`collection_ready`, called by the engine), so no reminder and
  no charge ever follows a payment.

A collection action carries `context["collects"]` (the fee's id) and `context["role"]`.
Money the client is asked to pay through a link or by instructions, without a card being
charged (an installment to accept a plan, a settlement, the rest after a broken plan), is a
*request*: a charge stored done with payment_status "unpaid" or "receivable", like a fee
whose card was declined, so polling and `mark-paid` see it paid.

`run_collections` is the engine's glue: ledger reads, `evaluate`, ledger writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from slotguard.config.schema import Collections, Settings
from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.interfaces import AdapterError, PaymentLinks
from slotguard.store.ledger import Ledger
from slotguard.domain.model import OPEN_STATES, OWED, Action, ActionKind, ActionState, action_id_for
from slotguard.domain.money import Money
from slotguard.policies.loading import FEE, TARGET, purpose_of

if TYPE_CHECKING:
    from slotguard.domain.tick_report import TickReport

log = logging.getLogger("slotguard.collections")

COLLECTIONS = "collections"  # the policy name of every collection action
COLLECTS = "collects"  # context key: the id of the fee a collection action is about
SETTLED, WRITTEN_OFF, SUPERSEDED = "settled", "written_off", "superseded"
RECEIPT_TEMPLATE = "payment_receipt"
INSTALLMENT_TEMPLATE = "payment_plan_installment"
REFERRAL_TEMPLATE = "payment_referral"
# Roles of collection actions (context["role"]). Chasing ones stop when nothing is owed.
STEP, RETRY, INSTALLMENT, INSTALLMENT_NOTICE, SETTLEMENT, REST = "step", "retry", "installment", "installment_notice", "settlement", "rest"
RECEIPT, WRITEOFF, REFERRAL, SETTLEMENT_WRITEOFF = "receipt", "writeoff", "referral", "settlement_writeoff"
CHASING = frozenset({STEP, RETRY, INSTALLMENT, INSTALLMENT_NOTICE, REFERRAL})
REQUESTS = frozenset({INSTALLMENT, SETTLEMENT, REST, RETRY})


def status(action: Action) -> str:
    return str(action.context.get("payment_status", ""))


def is_debt(action: Action) -> bool:
    """A fee the client was asked to pay and has not paid (not a deposit or prepayment)."""
    return (
        action.kind is ActionKind.CHARGE
        and action.state is ActionState.DONE
        and action.policy != COLLECTIONS
        and action.amount is not None
        and status(action) in OWED
        and purpose_of(action.kind, action.context) == FEE
    )


@dataclass(frozen=True)
class Capabilities:
    """What the payment provider can do: make payment links (and so charge saved cards)."""

    links: bool = False

    @property
    def charge_cards(self) -> bool:
        return self.links


def capabilities(provider: Any, settings: Settings) -> Capabilities:
    return Capabilities(links=isinstance(provider, PaymentLinks) and not settings.payments.dry_run)


@dataclass
class Decision:
    """What `evaluate` found for one debt and wants done. Amounts in the fee's currency."""

    fee: Action
    balance: Money
    paid: Money
    covered: Money  # by the practitioner: refunds, credits, waivers aimed at the fee
    written_off: Money
    state: str  # "owed", "plan", "referred", "settled", "written_off", "waived", "closed"
    step: int = 0  # steps carried out so far
    plan: dict[str, int] | None = None  # {"paid": k, "of": n} while a plan runs
    next_at: datetime | None = None
    new: list[Action] = field(default_factory=list)
    cancel: dict[str, str] = field(default_factory=dict)  # open action id -> why
    supersede: dict[str, str] = field(default_factory=dict)  # request id -> why (it becomes cancelled, "superseded")
    close_fee: str = ""  # payment_status to write on the fee when the debt closed

    @property
    def open(self) -> bool:
        return self.state in ("owed", "plan", "referred")


def _sum(actions: Iterable[Action], currency: str) -> Money:
    return Money(sum(action.amount.minor for action in actions if action.amount), currency)


def split(balance: Money, installments: int, minimum: Money | None) -> list[Money]:
    """The balance in at most `installments` parts, none below `minimum`, the first ones a
    minor unit larger when it does not divide; [] when fewer than two parts are possible."""
    count = installments
    if minimum is not None and minimum.minor > 0:
        count = min(count, balance.minor // minimum.minor)
    if count < 2:
        return []
    base, extra = divmod(balance.minor, count)
    return [Money(base + (1 if index < extra else 0), balance.currency) for index in range(count)]


class _Builder:
    """Makes collection actions for one fee with stable ids."""

    def __init__(self, fee: Action, now: datetime, capabilities: Capabilities):
        self.fee, self.now, self.capabilities = fee, now, capabilities
        self.key = f"collections/{fee.id}"

    def make(self, kind: ActionKind, slot: str, role: str, reason: str, *, amount: Money | None = None,
             template: str | None = None, due: datetime | None = None, reports_on: str | None = None,
             state: ActionState = ActionState.PLANNED, to: tuple[str, str] | None = None, **context: Any) -> Action:
        fee = self.fee
        done = state is ActionState.DONE
        return Action(
            id=action_id_for(self.key, COLLECTIONS, kind.value, slot),
            kind=kind,
            state=state,
            policy=COLLECTIONS,
            reason=reason,
            calendar_id=fee.calendar_id,
            event_id=fee.event_id,
            client_email=to[0] if to else fee.client_email,
            client_name=to[1] if to else fee.client_name,
            happening_key=self.key,
            due_at=due or self.now,
            created_at=self.now,
            updated_at=self.now,
            amount=amount,
            template=template,
            reports_on=reports_on,
            appointment_start=fee.appointment_start,
            executed_at=self.now if done else None,
            context={COLLECTS: fee.id, "role": role, "fee_policy": fee.policy, **context},
        )

    def request(self, slot: str, role: str, amount: Money, reason: str, **context: Any) -> Action:
        """Money asked of the client through a link (or by instructions), no card charged."""
        owed = "unpaid" if self.capabilities.links else "receivable"
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
) -> Decision:
    """Decide what happens to one debt at `now`. Pure: no I/O, no clock.

    Given the fee, every action that may be about it (collection actions with
    context["collects"] == fee.id; refunds, credits and waivers whose target_action_id is the
    fee; others are ignored), the validated `[collections]` config, what the provider can do
    and the practitioner's (email, name) for the referral email. Returns a Decision: the
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
    payments = [c for c in charges if c.state is ActionState.DONE and status(c) == "paid"]
    paid = _sum(payments, currency) + (fee.amount if status(fee) == "paid" else Money.zero(currency))
    covered = _sum(covering, currency)
    written = _sum((w for w in mine if w.kind is ActionKind.WRITEOFF and w.state is ActionState.DONE), currency)
    decision = Decision(fee, Money.zero(currency), paid, covered, written, "owed")
    by_id = {a.id: a for a in mine}

    # A settlement paid in time: the rest is written off as offered.
    left = fee.amount - paid - covered - written
    for offer in charges:
        if offer.context.get("role") == SETTLEMENT and status(offer) == "paid" and left.minor > 0:
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
    _fire(decision, index, config, mine, builder, now, started, practitioner)
    decision.step = index + 1
    return decision


def _close(decision: Decision, mine: list[Action], fee_owed: bool, builder: _Builder) -> None:
    """The debt is paid, waived or written off: stop chasing; a receipt for payments."""
    fee = decision.fee
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
             if a.kind is ActionKind.CHARGE and status(a) == "paid" and a.amount),
            key=lambda item: item[0],
        )
        if status(fee) == "paid":
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
    firsts = [a for a in mine if a.context.get("role") == INSTALLMENT and a.context.get("installment") == 1 and status(a) == "paid"]
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
        if status(installment) == "paid":
            continue
        if installment.state is ActionState.CANCELLED:
            # Withdrawn when the plan broke (missed), or not charged (the balance changed).
            broken_at = due + every if status(installment) == SUPERSEDED else installment.updated_at
            break
        unpaid = installment.state is ActionState.FAILED or (installment.state is ActionState.DONE and status(installment) in OWED)
        if unpaid and now >= due + every:
            broken_at = due + every
            break
    paid_count = sum(1 for a in existing.values() if status(a) == "paid")
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


# -- the engine's glue: ledger in, evaluate, ledger out ------------------------------------


def _related(ledger: Ledger, fee: Action, mine: list[Action], cache: dict[str, list[Action]]) -> list[Action]:
    """The fee's collection actions and the client's refunds, credits and waivers."""
    if fee.client_email not in cache:
        cache[fee.client_email] = [
            action for action in ledger.actions(client_email=fee.client_email, kinds=[ActionKind.REFUND, ActionKind.CREDIT, ActionKind.WAIVE])
        ]
    return [*mine, *cache[fee.client_email]]


def _finished(fee: Action, mine: list[Action]) -> bool:
    """Nothing can change for a debt that is no longer owed, has nothing open and has its
    receipt (or never had a payment to thank for)."""
    if is_debt(fee):
        return False
    if any(a.state in OPEN_STATES or (a.kind is ActionKind.CHARGE and status(a) in OWED) for a in mine):
        return False
    paid = status(fee) == "paid" or any(status(a) == "paid" for a in mine)
    return not paid or any(a.context.get("role") == RECEIPT for a in mine)


def debts(ledger: Ledger, settings: Settings, now: datetime, caps: Capabilities = Capabilities(),
          everything: bool = False) -> list[Decision]:
    """Evaluate every debt still open (with `everything`, also those finished), oldest first.
    Reads the ledger only."""
    mine_by_fee: dict[str, list[Action]] = {}
    for action in ledger.actions(policy=COLLECTIONS):
        mine_by_fee.setdefault(str(action.context.get(COLLECTS, "")), []).append(action)
    if not settings.collections.enabled and not mine_by_fee and not everything:
        return []  # no ladder, never was one: every unpaid fee is owed in full
    fees = {fee.id: fee for fee in ledger.owed_charges() if is_debt(fee)}
    for fee_id in mine_by_fee:
        if fee_id not in fees:
            fee = ledger.action(fee_id)
            if fee is not None and fee.amount is not None and fee.kind is ActionKind.CHARGE:
                fees[fee_id] = fee
    practitioner = (settings.practice.email, settings.practice.name)
    cache: dict[str, list[Action]] = {}
    found = []
    for fee in sorted(fees.values(), key=lambda item: (item.executed_at or item.created_at, item.id)):
        mine = mine_by_fee.get(fee.id, [])
        if not everything and _finished(fee, mine):
            continue
        found.append(evaluate(fee, _related(ledger, fee, mine, cache), settings.collections, now, caps, practitioner))
    return found


def _apply(ledger: Ledger, decision: Decision, now: datetime) -> list[Action]:
    """Store what `decision` wants done; return the actions newly stored."""
    stored = []
    for action in decision.new:
        if ledger.add_action(action):
            stored.append(action)
            log.info("planned action=%s kind=%s role=%s fee=%s state=%s", action.id, action.kind.value,
                     action.context.get("role"), decision.fee.id, action.state.value)
    for action_id, why in decision.cancel.items():
        action = ledger.action(action_id)
        if action is not None and action.state in OPEN_STATES:
            action.state = ActionState.CANCELLED
            ledger.update_action(action, now, f"collections: {why}", expect=OPEN_STATES)
    for action_id, why in decision.supersede.items():
        action = ledger.action(action_id)
        if action is not None and action.state is ActionState.DONE and status(action) in OWED:
            # Cancelled, so nothing polls it, counts it or gives back money it never took.
            action.state = ActionState.CANCELLED
            action.context["payment_status"] = SUPERSEDED
            ledger.update_action(action, now, f"collections: no longer asked for: {why}", expect=[ActionState.DONE])
    if decision.close_fee:
        fee = ledger.action(decision.fee.id)
        if fee is not None and fee.state is ActionState.DONE and status(fee) in OWED:
            fee.context["payment_status"] = decision.close_fee
            what = "settled through collections" if decision.close_fee == SETTLED else "written off by collections"
            ledger.update_action(fee, now, f"{what}: paid {decision.paid}, written off {decision.written_off}")
    return stored


def run_collections(settings: Settings, ledger: Ledger, provider: Any, now: datetime, report: TickReport | None = None) -> set[tuple[str, str]]:
    """One pass of the ladder over every open debt (engine.tick, before execute_due).

    Given the settings (nothing happens while `collections.steps` is empty), the ledger, the
    payment provider (only asked what it can do), `now` and the tick's report (new actions
    counted under "planned"). Returns the (calendar_id, event_id) of appointments whose fee
    was settled or written off, for the calendar write-back. Each debt is one transaction.
    """
    if not settings.collections.enabled:
        return set()
    touched: set[tuple[str, str]] = set()
    for decision in debts(ledger, settings, now, capabilities(provider, settings)):
        if not (decision.new or decision.cancel or decision.supersede or decision.close_fee):
            continue
        with ledger.transaction():
            stored = _apply(ledger, decision, now)
        for action in stored:
            if report is not None:
                report.planned[f"{action.kind.value}:{action.state.value}"] += 1
        if decision.close_fee or any(action.kind is not ActionKind.EMAIL for action in stored):
            touched.add((decision.fee.calendar_id, decision.fee.event_id))
    return touched


def collection_ready(ledger: Ledger, provider: Any, settings: Settings, action: Action, now: datetime) -> bool:
    """Checked by the engine just before a collection action is carried out: a chasing
    email or charge whose debt was paid, waived or written off meanwhile (a webhook, a
    `mark-paid`) is cancelled instead; an email asking for money gets a fresh payment link
    where the provider makes them. Returns whether to go ahead. Never raises for a
    provider failure (the email goes without a link and says how else to pay)."""
    role = action.context.get("role")
    fee = ledger.action(str(action.context.get(COLLECTS, "")))
    if role not in CHASING or fee is None or fee.amount is None:
        return True
    mine = [a for a in ledger.actions(policy=COLLECTIONS, calendar_id=fee.calendar_id, event_id=fee.event_id)
            if a.context.get(COLLECTS) == fee.id]
    decision = evaluate(fee, _related(ledger, fee, mine, {}), settings.collections, now, capabilities(provider, settings),
                        (settings.practice.email, settings.practice.name))
    why = decision.cancel.get(action.id)
    if why is None and not decision.open:
        why = "the balance is settled" if decision.balance.is_zero else "the fee is no longer owed"
    if why is None and action.kind is ActionKind.CHARGE and action.amount and action.amount > decision.balance:
        why = f"only {decision.balance} is still owed"
    if why is not None:
        action.state = ActionState.CANCELLED
        ledger.update_action(action, now, f"collections: not {'sent' if action.kind is ActionKind.EMAIL else 'charged'}: {why}",
                             expect=OPEN_STATES)
        log.info("collections_stopped action=%s fee=%s why=%r", action.id, fee.id, why)
        return False
    if action.kind is ActionKind.EMAIL and role == STEP and capabilities(provider, settings).links:
        _fresh_links(ledger, provider, action, mine)
    return True


def _fresh_links(ledger: Ledger, provider: Any, email: Action, mine: list[Action]) -> None:
    """Put a working payment link for the balance (and for an offer) into the email."""
    by_id = {a.id: a for a in mine}
    targets = {"payment_link": str(email.context.get("payable", ""))}
    retry = by_id.get(email.reports_on or "")
    if retry is not None and status(retry) == "unpaid":
        targets["payment_link"] = retry.id  # the retry was declined: its link asks for the balance
    offer = email.context.get("offer")
    for key, target_id in targets.items():
        _link_into(ledger, provider, email.context, key, target_id, by_id)
    if isinstance(offer, dict):
        _link_into(ledger, provider, offer, "payment_link", str(offer.get("request", "")), by_id)


def _link_into(ledger: Ledger, provider: Any, holder: dict, key: str, target_id: str, by_id: dict[str, Action]) -> None:
    target = by_id.get(target_id) or ledger.action(target_id)
    if target is None or status(target) != "unpaid":
        return
    try:
        holder[key] = provider.payment_link(target)
    except AdapterError as error:
        log.warning("collections_link_failed action=%s error=%r", target.id, str(error))


# -- helpers for commands and replay -----------------------------------------------------

PARTS = ("settlement", "installment", "rest", "fee")


def payable(actions: Sequence[Action], part: str = "") -> Action | None:
    """The charge a client's payment settles, among one appointment's actions: with `part`
    ("settlement", "installment", "rest", "fee") that kind; by default the open settlement
    offer, else the next installment asked, else the rest, else the fee. None when nothing
    is owed. Pure."""
    owed = [a for a in actions if a.kind is ActionKind.CHARGE and a.state is ActionState.DONE and status(a) in OWED and a.amount]

    def role_of(action: Action) -> str:
        return str(action.context.get("role")) if action.policy == COLLECTIONS else "fee"

    order = {"settlement": (SETTLEMENT,), "installment": (INSTALLMENT,), "rest": (REST, RETRY), "fee": ("fee",)}
    roles = order[part] if part else (SETTLEMENT, INSTALLMENT, REST, RETRY, "fee")
    for role in roles:
        found = sorted((a for a in owed if role_of(a) == role),
                       key=lambda a: (int(a.context.get("plan", 0)), int(a.context.get("installment", 0)), a.created_at))
        if found:
            return found[0] if role == INSTALLMENT else found[-1]
    return None


def debt_row(decision: Decision, settings: Settings) -> dict[str, Any]:
    """One open debt as plain data, for the digest, `status` and `balance`."""
    fee = decision.fee
    return {
        "id": fee.id,
        "client": fee.client_email,
        "name": fee.client_name or fee.client_email,
        "policy": fee.policy,
        "amount": fee.amount,
        "balance": decision.balance,
        "paid": decision.paid,
        "state": decision.state,
        "step": decision.step,
        "steps": len(settings.collections.steps),
        "plan_paid": (decision.plan or {}).get("paid", 0),
        "plan_of": (decision.plan or {}).get("of", 0),
        "appointment_start": fee.appointment_start,
        "since": fee.executed_at or fee.updated_at,
        "next_at": decision.next_at,
    }


def owed_view(charges: list[Action], decisions: list[Decision]) -> list[Action]:
    """Done charges as the practitioner should count them: requests the ladder made (an
    installment, a settlement, the rest) are part of their fee, and a fee partly paid shows
    what is still owed. Given the charges and the open debts; returns copies where changed."""
    balances = {decision.fee.id: decision.balance for decision in decisions}
    shown = []
    for charge in charges:
        if charge.policy == COLLECTIONS:
            continue
        balance = balances.get(charge.id)
        if balance is not None and charge.amount is not None and balance != charge.amount:
            charge = Action(**{name: getattr(charge, name) for name in charge.__slots__})
            charge.amount = balance
        shown.append(charge)
    return shown


def collections_view(ledger: Ledger, settings: Settings, now: datetime, done: list[Action]) -> tuple[list[Action], list[dict[str, Any]]]:
    """For the digest: (done charges counted as in `owed_view`, rows of the debts the
    ladder follows, oldest first). Reads the ledger only."""
    decisions = debts(ledger, settings, now)
    rows = [debt_row(decision, settings) for decision in decisions if settings.collections.enabled and decision.open]
    return owed_view(done, decisions), rows
