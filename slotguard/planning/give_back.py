"""Giving money back: refund and release proposals, and the rule that money goes back once.

Pure: given actions and an account, returns proposals. Used by waivers
(slotguard/planning/waivers.py) and by the planner's last safety step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slotguard.domain.model import Action, ActionKind, ActionState, Proposal
from slotguard.domain.money import Money
from slotguard.policies.account import CREDIT, DEPOSIT, DEPOSIT_RETURN, REFUND, SETTLES, TARGET, ClientAccount, purpose_of

log = logging.getLogger("slotguard.planner")


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
    """Release the card hold `hold`, all of it."""
    assert hold.amount is not None
    return Proposal(
        kind=ActionKind.RELEASE,
        policy=hold.policy,
        reason=f"release of the {hold.amount} hold by {hold.policy}: {why}",
        amount=hold.amount,
        slot=f"release-{hold.id}",
        context={"purpose": DEPOSIT_RETURN, TARGET: hold.id, "target_external_id": hold.external_id, SETTLES: hold.id},
    )


def give_back_once(proposals: list[Proposal], account: Callable[[], ClientAccount]) -> list[Proposal]:
    """Money is given back at most once: a refund is capped at what is left of its target
    (taken, less the refunds done or planned, in the account and among `proposals`) and
    dropped when nothing is left; a hold is released once, and not after it was captured. A
    dropped give-back takes the emails reporting on it along. `account` is read only if needed."""
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
            amount = proposal.amount
            if amount.minor > left:
                amount = Money(left, amount.currency)
                proposal = proposal.with_amount(amount, f"safety: capped at what is left to refund ({amount})")
            refunded[target] = refunded.get(target, 0) + amount.minor
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
