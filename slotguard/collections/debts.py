"""The words of the collections ladder: what a debt is, the roles of collection actions, what the
provider can do, and the `Decision` that `evaluate` (slotguard/collections/decide.py) returns.
Pure data and pure functions (docs/collections.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.interfaces import PaymentLinks
from slotguard.domain.model import OWED, Action, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.domain.payment_status import PaymentStatus
from slotguard.domain.plan import COLLECTS as COLLECTS  # context key: the fee a collection action is about
from slotguard.policies.account import FEE, purpose_of

COLLECTIONS = "collections"  # the policy name of every collection action
SETTLED, WRITTEN_OFF, SUPERSEDED = PaymentStatus.SETTLED, PaymentStatus.WRITTEN_OFF, PaymentStatus.SUPERSEDED
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
    payable: str = ""  # the charge a payment of the balance settles: the fee, or the rest asked of it

    @property
    def open(self) -> bool:
        return self.state in ("owed", "plan", "referred")


def total(actions: Iterable[Action], currency: str) -> Money:
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
