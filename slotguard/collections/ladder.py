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

`run_collections` is the engine's glue: ledger reads, `evaluate` (slotguard/collections/decide.py),
and the decisions written as plans by the store (`Store.apply`, one transaction a client); a
client's steps due together become one email listing every open fee, and a client gets at most
one payment email a day (slotguard/collections/together.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from slotguard.collections.debts import (
    CHASING,
    COLLECTIONS,
    COLLECTS,
    RECEIPT,
    RETRY,
    SETTLED,
    STEP,
    Capabilities,
    Decision,
    capabilities,
    is_debt,
    status,
)
from slotguard.collections.decide import evaluate
from slotguard.collections.together import FEES, combine, held_until, refresh
from slotguard.config.schema import Settings
from slotguard.domain.durations import to_utc_text
from slotguard.domain.interfaces import AdapterError
from slotguard.domain.model import OPEN_STATES, OWED, Action, ActionKind
from slotguard.domain.payment_status import PaymentStatus
from slotguard.domain.plan import Plan
from slotguard.domain.tick_report import TickReport
from slotguard.mail.context import recipient_locale, service_label
from slotguard.store.apply import Store
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.collections")


def _client_actions(ledger: Ledger, email: str, cache: dict[str, list[Action]]) -> list[Action]:
    if email not in cache:
        cache[email] = list(ledger.actions(client_email=email))
    return cache[email]


def _related(ledger: Ledger, fee: Action, mine: list[Action], cache: dict[str, list[Action]]) -> list[Action]:
    """The fee's collection actions and the client's refunds, credits and waivers."""
    covering = (ActionKind.REFUND, ActionKind.CREDIT, ActionKind.WAIVE)
    return [*mine, *(action for action in _client_actions(ledger, fee.client_email, cache) if action.kind in covering)]


def _finished(fee: Action, mine: list[Action]) -> bool:
    """Nothing can change for a debt that is no longer owed, has nothing open and has its
    receipt (or never had a payment to thank for)."""
    if is_debt(fee):
        return False
    if any(a.state in OPEN_STATES or (a.kind is ActionKind.CHARGE and status(a) in OWED) for a in mine):
        return False
    paid = status(fee) == PaymentStatus.PAID or any(status(a) == PaymentStatus.PAID for a in mine)
    return not paid or any(a.context.get("role") == RECEIPT for a in mine)


def debts(ledger: Ledger, settings: Settings, now: datetime, caps: Capabilities = Capabilities(),
          everything: bool = False) -> list[Decision]:
    """Evaluate every debt still open (with `everything`, also those finished), oldest first;
    a client who had a payment email today gets no new reminder step before tomorrow
    (slotguard/collections/together.py, `held_until`). Reads the ledger only."""
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
        if "@" not in fee.client_email:
            # Kept for bookkeeping under a pseudonym (retention, client forget): closed money,
            # its emails pruned; a missing receipt must not be planned again for no one.
            continue
        mine = mine_by_fee.get(fee.id, [])
        if not everything and _finished(fee, mine):
            continue
        held = held_until(_client_actions(ledger, fee.client_email, cache), now, settings.zone)
        found.append(evaluate(fee, _related(ledger, fee, mine, cache), settings.collections, now, caps, practitioner, held))
    return found


def _session_of(ledger: Ledger, settings: Settings) -> Callable[[Action], dict[str, Any]]:
    """For `combine`: the service label (in the client's language), start and time zone of
    the session a fee is for."""
    def session(fee: Action) -> dict[str, Any]:
        tracked = ledger.tracked(fee.calendar_id, fee.event_id)
        if tracked is None:
            return {}
        appointment = tracked.appointment
        label = service_label(settings, appointment.service, recipient_locale(settings, fee, appointment))
        return {"service": label, "start": to_utc_text(appointment.start), "timezone": appointment.timezone or settings.practice.timezone}
    return session


def plan_of(decision: Decision) -> Plan:
    """What `decision` wants written, as a plan for the store: the new collection actions, open
    ones to cancel, requests no longer asked for, and the fee closed as settled or written off."""
    close = {}
    if decision.close_fee:
        what = "settled through collections" if decision.close_fee == SETTLED else "written off by collections"
        close[decision.fee.id] = (decision.close_fee, f"{what}: paid {decision.paid}, written off {decision.written_off}")
    return Plan(
        actions=tuple(decision.new),
        cancel={action_id: f"collections: {why}" for action_id, why in decision.cancel.items()},
        withdraw={action_id: f"collections: no longer asked for: {why}" for action_id, why in decision.supersede.items()},
        close=close,
    )


def run_collections(settings: Settings, ledger: Ledger, provider: Any, now: datetime, report: TickReport | None = None) -> set[tuple[str, str]]:
    """One pass of the ladder over every open debt (engine.tick, before execute_due).

    Given the settings (nothing happens while `collections.steps` is empty), the ledger, the
    payment provider (only asked what it can do), `now` and the tick's report (new actions
    counted under "planned"). Returns the (calendar_id, event_id) of appointments whose fee
    was settled or written off, for the calendar write-back. A client whose steps fall due
    together gets one email listing every open fee (`combine`). Each client is one transaction.
    """
    if not settings.collections.enabled:
        return set()
    touched: set[tuple[str, str]] = set()
    decisions = debts(ledger, settings, now, capabilities(provider, settings))
    combine(decisions, _session_of(ledger, settings))
    plans: dict[str, Plan] = {}
    for decision in decisions:
        if not (decision.new or decision.cancel or decision.supersede or decision.close_fee):
            continue
        plans[decision.fee.client_email] = merged(plans.get(decision.fee.client_email, Plan()), plan_of(decision))
    for client, plan in plans.items():
        stored = Store(ledger).apply(plan, key=f"collections/{client}", now=now)
        for action in stored:
            if report is not None:
                report.planned[f"{action.kind.value}:{action.state.value}"] += 1
        touched |= {(action.calendar_id, action.event_id) for action in stored if action.kind is not ActionKind.EMAIL}
        touched |= {(fee.calendar_id, fee.event_id) for fee in (ledger.action(fee_id) for fee_id in plan.close) if fee is not None}
    return touched


def merged(first: Plan, second: Plan) -> Plan:
    """Two collections plans (new actions, cancellations, withdrawals, closings) as one."""
    return Plan(actions=(*first.actions, *second.actions), cancel={**first.cancel, **second.cancel},
                withdraw={**first.withdraw, **second.withdraw}, close={**first.close, **second.close})


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
    if action.kind is ActionKind.EMAIL and action.context.get(FEES):
        return _combined_ready(ledger, provider, settings, action, fee, now)
    mine = _fee_actions(ledger, fee)
    decision = evaluate(fee, _related(ledger, fee, mine, {}), settings.collections, now, capabilities(provider, settings),
                        (settings.practice.email, settings.practice.name))
    why = decision.cancel.get(action.id)
    if why is None and not decision.open:
        why = "the balance is settled" if decision.balance.is_zero else "the fee is no longer owed"
    if why is None and action.kind is ActionKind.CHARGE and action.amount and action.amount > decision.balance:
        why = f"only {decision.balance} is still owed"
    if why is not None:
        Store(ledger).apply(Plan(cancel={action.id: f"collections: not {'sent' if action.kind is ActionKind.EMAIL else 'charged'}: {why}"}),
                            now=now)
        log.info("collections_stopped action=%s fee=%s why=%r", action.id, fee.id, why)
        return False
    if action.kind is ActionKind.EMAIL and role == STEP and capabilities(provider, settings).links:
        _fresh_links(ledger, provider, action, mine)
    return True


def _fee_actions(ledger: Ledger, fee: Action) -> list[Action]:
    """The collection actions of one fee."""
    return [a for a in ledger.actions(policy=COLLECTIONS, calendar_id=fee.calendar_id, event_id=fee.event_id)
            if a.context.get(COLLECTS) == fee.id]


def _combined_ready(ledger: Ledger, provider: Any, settings: Settings, email: Action, lead: Action, now: datetime) -> bool:
    """`collection_ready` for a reminder listing several fees (`together.refresh`): it goes
    while one of them is owed, each with a fresh payment link; it waits while a card retry of
    one runs."""
    caps = capabilities(provider, settings)
    practitioner = (settings.practice.email, settings.practice.name)
    cache: dict[str, list[Action]] = {}

    def decision_now(fee_id: str) -> Decision | None:
        fee = ledger.action(fee_id)
        if fee is None or fee.amount is None:
            return None
        return evaluate(fee, _related(ledger, fee, _fee_actions(ledger, fee), cache), settings.collections, now, caps, practitioner)

    def retries_of(fee_id: str) -> list[Action]:
        fee = ledger.action(fee_id)
        return [a for a in _fee_actions(ledger, fee) if a.context.get("role") == RETRY] if fee is not None else []

    why = refresh(email, decision_now, retries_of)
    if why == "wait":
        email.due_at = now + timedelta(minutes=1)
        ledger.update_action(email, now, "waiting for the card retry of a fee it lists")
        return False
    if why:
        Store(ledger).apply(Plan(cancel={email.id: f"collections: not sent: {why}"}), now=now)
        log.info("collections_stopped action=%s fee=%s why=%r", email.id, lead.id, why)
        return False
    if not any(entry["fee"] == lead.id for entry in email.context[FEES]):
        # The fee it was planned for was paid meanwhile (its card retry went through): the
        # email still goes for the others, without that fee's retry or offer.
        email.context.pop("retried", None)
        email.context.pop("offer", None)
    if caps.links:
        _fresh_links(ledger, provider, email, _fee_actions(ledger, lead))
        for entry in email.context[FEES]:
            if entry["fee"] == lead.id and email.context.get("payment_link"):
                entry["payment_link"] = email.context["payment_link"]  # one link for one charge, never two
            else:
                _link_into(ledger, provider, entry, "payment_link", str(entry.get("payable", "")), {})
    return True


def _fresh_links(ledger: Ledger, provider: Any, email: Action, mine: list[Action]) -> None:
    """Put a working payment link for the balance (and for an offer) into the email."""
    by_id = {a.id: a for a in mine}
    targets = {"payment_link": str(email.context.get("payable", ""))}
    retry = by_id.get(email.reports_on or "")
    if retry is not None and status(retry) == PaymentStatus.UNPAID:
        targets["payment_link"] = retry.id  # the retry was declined: its link asks for the balance
    offer = email.context.get("offer")
    for key, target_id in targets.items():
        _link_into(ledger, provider, email.context, key, target_id, by_id)
    if isinstance(offer, dict):
        _link_into(ledger, provider, offer, "payment_link", str(offer.get("request", "")), by_id)


def _link_into(ledger: Ledger, provider: Any, holder: dict, key: str, target_id: str, by_id: dict[str, Action]) -> None:
    target = by_id.get(target_id) or ledger.action(target_id)
    if target is None or status(target) != PaymentStatus.UNPAID:
        return
    try:
        holder[key] = provider.payment_link(target)
    except AdapterError as error:
        log.warning("collections_link_failed action=%s error=%r", target.id, str(error))
