"""Collections as the practitioner and the commands see them: the charge a payment settles
(`payable`), one debt as a row (`debt_row`), charges counted with their ladder
(`owed_view`, `collections_view`). Reads only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slotguard.collections.debts import (
    COLLECTIONS,
    INSTALLMENT,
    REST,
    RETRY,
    SETTLEMENT,
    Decision,
    status,
)
from slotguard.collections.ladder import debts
from slotguard.config.schema import Settings
from slotguard.domain.model import OWED, Action, ActionKind, ActionState
from slotguard.store.ledger import Ledger

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
