"""Money the client paid ahead (a deposit, a prepayment, a rolling half deposit), and how a
fee or an attended session uses it: the refund, release and capture builders that
plugins/deposit.py, plugins/repeat_offender_prepay.py and plugins/rolling_half_deposit.py
share (policy authors import them from `slotguard.kit`); not a policy itself.

A fund is one ledger entry: a charge (money taken), a hold (money reserved on the card) or a
credit carried over from an earlier appointment (whose money sits on an earlier charge,
named by its `target_action_id`). Using a fund always names it (`settles`), so it is used once.
A waiver reads the same links to give back what a waived fee kept of a fund, and never what
was applied to an attended session's price (slotguard/planning/waivers.py, `funds_give_back`).
"""

from __future__ import annotations

from dataclasses import dataclass

from slotguard.domain.model import ActionKind, HappeningKind, Proposal
from slotguard.domain.money import Money
from slotguard.domain.payment_status import PaymentStatus
from slotguard.policies.account import DEPOSIT, DEPOSIT_APPLIED, DEPOSIT_RETURN, FEE, SETTLES, TARGET, AccountEntry, derive
from slotguard.policies.builders import refund_notice


@dataclass(frozen=True)
class Fund:
    entry: AccountEntry
    label: str  # "deposit", "prepayment", "half paid ahead"

    @property
    def amount(self) -> Money:
        assert self.entry.amount is not None
        return self.entry.amount

    @property
    def held(self) -> bool:
        """A card hold: used by capturing it, given back by releasing it."""
        return self.entry.kind is ActionKind.HOLD

    @property
    def source(self) -> str:
        """The id of the charge or hold that holds the money."""
        if self.entry.kind is ActionKind.CREDIT:
            return str(self.entry.context.get(TARGET) or self.entry.id)
        return self.entry.id

    @property
    def taken(self) -> bool:
        """Carried out (money taken or held), not just planned."""
        return not self.entry.is_open


def is_unpaid_fee(proposal: Proposal) -> bool:
    """A fee still to be charged (what a fund can pay)."""
    return proposal.kind is ActionKind.CHARGE and proposal.amount is not None and proposal.amount.minor > 0 and proposal.context.get("purpose", FEE) == FEE


def apply_to_price(fund: Fund, policy: str, slot: str) -> Proposal:
    """The session took place: the fund pays part of its price."""
    why = f"{policy}: the {fund.amount} {fund.label} is applied to the session price"
    context = {"purpose": DEPOSIT_APPLIED, TARGET: fund.source, SETTLES: fund.entry.id}
    if fund.held:
        return Proposal(kind=ActionKind.CAPTURE, policy=policy, reason=f"{why} (the hold is captured)", amount=fund.amount, slot=slot, context=context)
    return Proposal(kind=ActionKind.CREDIT, policy=policy, reason=why, amount=fund.amount, slot=slot, context=context)


def give_back(fund: Fund, policy: str, why: str, slot: str, amount: Money | None = None, notify: bool = True) -> list[Proposal]:
    """Return the fund (or `amount` of it): release a hold, refund a charge; with the
    `refund_notice` email. A fund not taken yet is simply not taken (a record says why)."""
    amount = amount or fund.amount
    context = {"purpose": DEPOSIT_RETURN, TARGET: fund.source, SETTLES: fund.entry.id}
    if not fund.taken:
        return [
            Proposal(
                kind=ActionKind.WAIVE,
                policy=policy,
                reason=f"{policy}: the {fund.amount} {fund.label} is not taken: {why}",
                amount=fund.amount,
                slot=slot,
                context={**context, "supersedes": [fund.entry.id]},
            )
        ]
    if fund.held:
        money = Proposal(
            kind=ActionKind.RELEASE, policy=policy, reason=f"{policy}: the {fund.amount} hold is released: {why}",
            amount=fund.amount, slot=slot, context=context,
        )
    else:
        money = Proposal(
            kind=ActionKind.REFUND, policy=policy, reason=f"{policy}: {amount} of the {fund.label} is returned: {why}",
            amount=amount, slot=slot, context=context,
        )
    return [money, refund_notice(money, why)] if notify else [money]


def pay_fee(fee: Proposal, fund: Fund, policy: str) -> tuple[list[Proposal], Money]:
    """Pay `fee` from `fund` as far as it goes. Returns the proposals replacing the fee (the
    fund kept for it, under the fee's slot so the notice reports on it, and a charge for the
    rest if the fund is smaller) and what is left of the fund afterwards."""
    assert fee.amount is not None
    covered = fund.amount.min(fee.amount)
    rest = fee.amount - covered
    context = {"purpose": FEE, TARGET: fund.source, SETTLES: fund.entry.id}
    if fund.held:
        kept = derive(
            fee,
            kind=ActionKind.CAPTURE,
            amount=covered,
            because=f"{policy}: {covered} of it paid from the {fund.amount} hold (captured; the rest of the hold is released)",
            context=context,
        )
    else:
        kept = derive(
            fee,
            kind=ActionKind.CREDIT,
            amount=covered,
            because=f"{policy}: {covered} of it paid from the {fund.amount} {fund.label}",
            context={**context, "payment_status": fund.entry.context.get("payment_status", PaymentStatus.PAID)},
        )
    replacing = [kept]
    if rest.minor > 0:
        replacing.append(
            Proposal(
                kind=ActionKind.CHARGE,
                policy=fee.policy,
                reason=f"{fee.policy}: the rest of the fee after the {fund.label}: {rest}",
                amount=rest,
                slot=f"{fee.slot}-rest",
                due=fee.due,
                context={k: v for k, v in fee.context.items() if k not in (TARGET, SETTLES)},
            )
        )
    left = Money.zero(fund.amount.currency) if fund.held else fund.amount - covered
    return replacing, left


def settle_funds(proposals, happening, funds: list[Fund], policy: str, leftover: str = "give_back") -> list[Proposal]:
    """Use `funds` for this outcome: apply them to the price (attended), pay the fees with
    them (no-show, late cancellation), give them back (no fee, cancelled by the practitioner).
    `leftover` says what happens to a fund a fee did not use up: "give_back" or "carry" (it
    stays paid ahead as a new fund on this appointment)."""
    kind = happening.kind
    result = list(proposals)
    for number, fund in enumerate(funds):
        slot = f"{policy}-{number}"
        if kind is HappeningKind.ATTENDED:
            result.append(apply_to_price(fund, policy, slot) if fund.taken else give_back(fund, policy, "the session took place", slot)[0])
        elif kind is HappeningKind.CANCELLED_BY_PRACTITIONER:
            result += give_back(fund, policy, "the practitioner cancelled the appointment", slot)
        elif kind in (HappeningKind.NO_SHOW, HappeningKind.CANCELLED_BY_CLIENT):
            fee = next((p for p in result if is_unpaid_fee(p)), None)
            if fee is None:
                if leftover == "give_back":
                    result += give_back(fund, policy, "no fee is due", slot)
                continue
            if not fund.taken:
                result += give_back(fund, policy, "the fee is charged instead", slot)
                continue
            replacing, left = pay_fee(fee, fund, policy)
            index = result.index(fee)
            result[index:index + 1] = replacing
            if left.minor > 0:
                if leftover == "give_back":
                    result += give_back(fund, policy, "the fee did not need all of it", slot, amount=left)
                else:
                    result.append(
                        Proposal(
                            kind=ActionKind.CREDIT,
                            policy=policy,
                            reason=f"{policy}: {left} stays paid ahead for the next session",
                            amount=left,
                            slot=slot,
                            context={"purpose": DEPOSIT, TARGET: fund.source},
                        )
                    )
    return result
