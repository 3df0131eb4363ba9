"""Collections speak to a client, not to a fee: at most one payment email a client a day, and
one reminder that lists every open fee (docs/collections.md, "One client, one email").

- `held_until`: a client who got (or gets today) an email about paying (a collections reminder
  or installment notice, a fee's notice, a declined card, a receipt) gets no new reminder step
  before the next local midnight; the step waits for that day (`evaluate`'s `not_before`).
- `combine`: when the steps of several of a client's fees fall due in the same pass, one
  email goes: the step furthest along (the firmest words; ties: the oldest fee) carries the
  list of every fee the client still owes (`fees`), each with its amount, session and
  payment link, and the totals, one per currency. The other fees' step emails are stored
  cancelled with `combined_into` naming it: each counts as that fee's step (the ladder of
  every fee listed advances as if its own email had gone), and an offer (plan, settlement)
  they would have made is not made, since the client never reads it.
- `refresh`: just before the combined email goes, the list is read again: fees paid, waived or
  written off meanwhile leave it (the email goes while one is left, even when the fee it was
  planned for is the one that was paid), and it waits while a card retry of a listed fee runs.
Pure but for `refresh`'s reads of the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slotguard.collections.debts import COLLECTIONS, INSTALLMENT, INSTALLMENT_NOTICE, RECEIPT, SETTLEMENT, STEP, Decision
from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import OPEN_STATES, Action, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.policies.account import FEE, purpose_of

COMBINED_INTO = "combined_into"  # context of a step email sent as part of another one
FEES = "fees"  # context of a combined reminder: every open fee it lists
PAYMENT_ROLES = frozenset({STEP, INSTALLMENT_NOTICE, RECEIPT})


def local_day(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The start and end of `now`'s day in `zone` (a day of 23 or 25 hours around a clock change)."""
    local = now.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=1, hours=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, end


def is_payment_email(email: Action, fee_charges: set[str]) -> bool:
    """An email to the client about paying: a collections reminder, installment notice or
    receipt, or an email reporting on one of the client's fee charges (`fee_charges`: its
    notice, a declined card, a charge receipt)."""
    if email.kind is not ActionKind.EMAIL:
        return False
    if email.policy == COLLECTIONS:
        return email.context.get("role") in PAYMENT_ROLES
    return (email.reports_on or "") in fee_charges


def held_until(client_actions: Iterable[Action], now: datetime, zone: ZoneInfo) -> datetime | None:
    """The next local midnight when the client got a payment email today or has one due
    today (sent, or open and due before the day ends); else None. Given all of one client's
    actions."""
    actions = list(client_actions)
    charges = {a.id for a in actions if a.kind is ActionKind.CHARGE and purpose_of(a.kind, a.context) == FEE}
    start, end = local_day(now, zone)
    for email in actions:
        if not is_payment_email(email, charges):
            continue
        sent_today = email.state is ActionState.DONE and email.executed_at is not None and start <= email.executed_at < end
        due_today = email.state in OPEN_STATES and email.due_at < end
        if sent_today or due_today:
            return end
    return None


def fee_entry(decision: Decision, payable: str, appointment: dict[str, Any]) -> dict[str, Any]:
    """One open fee as a combined reminder lists it. `appointment`: its "service" label,
    "start" and "timezone" (what the `about` phrase of templates/_payment.txt.j2 reads)."""
    fee = decision.fee
    assert fee.amount is not None
    return {
        "fee": fee.id, "fee_policy": fee.policy, "balance": decision.balance.as_json(), "original": fee.amount.as_json(),
        "payable": payable, "service": appointment.get("service", ""),
        "start": appointment.get("start") or (to_utc_text(fee.appointment_start) if fee.appointment_start else ""),
        "timezone": appointment.get("timezone", ""), "payment_link": "",
    }


def totals(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """`totals` (one amount per currency, in the order met) and, when there is one currency,
    `total`: for the subject line and the "in all" line."""
    by_currency: dict[str, int] = {}
    for entry in entries:
        money = Money(**entry["balance"])
        by_currency[money.currency] = by_currency.get(money.currency, 0) + money.minor
    found: dict[str, Any] = {"totals": [Money(minor, currency).as_json() for currency, minor in by_currency.items()]}
    if len(by_currency) == 1:
        found["total"] = found["totals"][0]
    return found


def _payable_of(decision: Decision, email: Action | None) -> str:
    if email is not None and email.context.get("payable"):
        return str(email.context["payable"])
    return decision.payable or decision.fee.id


def combine(decisions: list[Decision], appointment_of: Callable[[Action], dict[str, Any]]) -> None:
    """One reminder a client for the steps due in this pass (see the module docstring).
    `decisions` are every debt's, oldest fee first; the lead step email gets `fees` and the
    totals, the others are stored cancelled (`combined_into`) with their offers dropped.
    `appointment_of(fee)` gives the session a fee is for (see `fee_entry`). Changes the
    decisions' new actions in place."""
    by_client: dict[str, list[Decision]] = {}
    for decision in decisions:
        by_client.setdefault(decision.fee.client_email, []).append(decision)
    for mine in by_client.values():
        stepping = [(d, a) for d in mine for a in d.new if a.kind is ActionKind.EMAIL and a.context.get("role") == STEP]
        owed = [d for d in mine if d.state == "owed" and d.balance.minor > 0]
        if not stepping or len(owed) < 2:
            continue
        # The firmest step leads (its words fit the most overdue fee); ties: the oldest fee.
        lead_decision, lead = max(stepping, key=lambda pair: (int(pair[1].context.get("step", 0)), -mine.index(pair[0])))
        emails = {d.fee.id: a for d, a in stepping}
        ordered = [lead_decision, *[d for d in owed if d is not lead_decision]]
        entries = [fee_entry(d, _payable_of(d, emails.get(d.fee.id)), appointment_of(d.fee)) for d in ordered]
        lead.context[FEES] = entries
        lead.context.update(totals(entries))
        lead.reason += f"; one email for the client's {len(entries)} open fees"
        for decision, email in stepping:
            if email is lead:
                continue
            email.state = ActionState.CANCELLED
            email.context[COMBINED_INTO] = lead.id
            email.reason += f"; sent as part of {lead.id}, one email listing every open fee (this fee's step is taken)"
            offers = {str((email.context.get("offer") or {}).get("request", ""))} - {""}
            email.context.pop("offer", None)
            decision.new = [a for a in decision.new
                            if not (a.id in offers and a.context.get("role") in (INSTALLMENT, SETTLEMENT))]


def refresh(email: Action, evaluate_fee: Callable[[str], Decision | None], retries_of: Callable[[str], list[Action]]) -> str:
    """Just before a combined reminder goes: its `fees` read again. Returns "" to send it,
    "wait" while a card retry of a listed fee is still to run, or why it is not to be sent
    (nothing listed is owed any more). `evaluate_fee(fee_id)` gives a fee's decision now (None:
    unknown); `retries_of(fee_id)` its collections retry charges. Changes `email.context`."""
    entries = list(email.context.get(FEES) or [])
    if any(r.state in (*OPEN_STATES, ActionState.EXECUTING) and r.id != email.reports_on
           for entry in entries for r in retries_of(str(entry["fee"]))):
        return "wait"
    kept = []
    for entry in entries:
        decision = evaluate_fee(str(entry["fee"]))
        if decision is None or decision.state != "owed" or decision.balance.is_zero:
            continue
        kept.append({**entry, "balance": decision.balance.as_json()})
    if not kept:
        return "every fee it lists is paid, waived or written off"
    email.context[FEES] = kept
    email.context.pop("total", None)
    email.context.update(totals(kept))
    return ""


