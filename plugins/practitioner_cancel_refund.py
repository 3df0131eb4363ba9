"""practitioner_cancel_refund: when the practitioner cancels, the client gets back every bit of
money taken for that appointment, and optionally a goodwill discount on the next booking.

On a cancellation by the practitioner (the event cancelled or deleted without a client
cancellation mark):
- fees, deposits and prepayments for the appointment still waiting (pending review, or a hold
  not placed yet) are waived;
- money already taken is refunded and held money released, each with a `refund_notice`
  (`details.why` = "the practitioner cancelled the appointment"); a deposit another policy
  already gives back is not given back twice. A no-show or late-cancellation fee is refunded
  only if the cancellation came before the appointment's start (deleting an old event to tidy
  the calendar does not refund a fee that stood);
- with `goodwill` set, a `credit` record notes a goodwill discount on the client's next
  booking made within `goodwill_valid`; that booking records the discount as used, and its
  confirmation carries `details.goodwill_discount` (Slotguard does not bill session prices, so
  the practitioner takes it off the price).

Emails: `refund_notice`.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from pydantic import Field, field_validator

from slotguard.kit import (
    CREDIT,
    DEPOSIT,
    DEPOSIT_RETURN,
    FEE,
    PREPAYMENT,
    REFUND,
    SETTLES,
    TARGET,
    ActionKind,
    ActionState,
    HappeningKind,
    Percent,
    PolicyConfig,
    PolicyInfo,
    PositiveDuration,
    Proposal,
    from_utc_text,
    hookimpl,
    local_text,
    refund_notice,
    to_utc_text,
)

NAME = "practitioner_cancel_refund"
WHY = "the practitioner cancelled the appointment"


class PractitionerCancelRefundConfig(PolicyConfig):
    goodwill: Percent | None = Field(None, description='A goodwill discount on the next booking, in percent of its price ("10%"); leave out for none.', examples=["10%"])
    goodwill_valid: PositiveDuration = Field(timedelta(days=90), description="How long the goodwill discount can be used.", examples=["90d"])

    @field_validator("goodwill")
    @classmethod
    def _some(cls, percent: Decimal | None) -> Decimal | None:
        if percent == 0:
            raise ValueError("must be more than 0%; leave it out for no goodwill discount")
        return percent


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="modifier",
        config_model=PractitionerCancelRefundConfig,
        summary="When the practitioner cancels, money taken for the appointment is refunded (or released), with an optional goodwill discount on the next booking.",
        emails=("refund_notice",),
    )


@hookimpl
def slotguard_settle(proposals, happening, appointment, account, config, now):
    if happening.kind is HappeningKind.CANCELLED_BY_PRACTITIONER:
        return _give_everything_back(list(proposals), happening, appointment, account, config, now)
    if happening.kind is HappeningKind.BOOKED and config.goodwill is not None:
        goodwill = _open_goodwill(account, happening.at)
        if goodwill is None:
            return None
        return list(proposals) + [
            Proposal(
                kind=ActionKind.CREDIT,
                policy=NAME,
                reason=f"{NAME}: goodwill discount of {goodwill.context['goodwill']}% used on this booking (the practitioner cancelled on {local_text(goodwill.created_at, appointment, with_time=False)})",
                slot="goodwill-used",
                context={"purpose": CREDIT, "uses_goodwill": goodwill.context["goodwill_id"], "goodwill": goodwill.context["goodwill"]},
            )
        ]
    return None


def _give_everything_back(proposals, happening, appointment, account, config, now):
    handled = {str(p.context.get(TARGET)) for p in proposals if p.kind in (ActionKind.REFUND, ActionKind.RELEASE) and p.context.get(TARGET)}
    handled |= {str(p.context.get(SETTLES)) for p in proposals if p.context.get(SETTLES)}
    before_start = happening.at < appointment.start
    waive_ids: list[str] = []
    used = account.used_up()  # a deposit already applied, kept for a fee, or given back
    for entry in account.for_event(appointment.ref):
        purpose = entry.purpose
        if purpose not in (FEE, DEPOSIT, PREPAYMENT) or not entry.amount or entry.id in handled or entry.id in used:
            continue
        if purpose == FEE and not before_start:
            continue
        if entry.is_open and entry.kind in (ActionKind.CHARGE, ActionKind.CAPTURE, ActionKind.HOLD, ActionKind.CREDIT):
            waive_ids.append(entry.id)
            continue
        if entry.state is not ActionState.DONE:
            continue
        if entry.kind in (ActionKind.CHARGE, ActionKind.CAPTURE) or (entry.kind is ActionKind.CREDIT and entry.context.get(TARGET)):
            target = entry.id if entry.kind is not ActionKind.CREDIT else str(entry.context[TARGET])
            if target in handled:
                continue
            money = Proposal(
                kind=ActionKind.REFUND,
                policy=NAME,
                reason=f"{NAME}: {entry.amount} taken by {entry.policy} for this appointment is refunded: {WHY}",
                amount=entry.amount,
                slot=f"refund-{entry.id}",
                context={"purpose": DEPOSIT_RETURN if purpose == DEPOSIT else REFUND, TARGET: target, SETTLES: entry.id},
            )
        elif entry.kind is ActionKind.HOLD:
            money = Proposal(
                kind=ActionKind.RELEASE,
                policy=NAME,
                reason=f"{NAME}: the {entry.amount} hold is released: {WHY}",
                amount=entry.amount,
                slot=f"release-{entry.id}",
                context={"purpose": DEPOSIT_RETURN, TARGET: entry.id, SETTLES: entry.id},
            )
        else:
            continue
        handled.add(str(money.context[TARGET]))
        proposals += [money, refund_notice(money, WHY, goodwill=_goodwill_text(config))]
    if waive_ids:
        proposals.append(
            Proposal(
                kind=ActionKind.WAIVE,
                policy=NAME,
                reason=f"{NAME}: nothing is charged for this appointment: {WHY}",
                slot="waive-open",
                context={"purpose": REFUND, "supersedes": waive_ids},
            )
        )
    if config.goodwill is not None:
        until = now + config.goodwill_valid
        proposals.append(
            Proposal(
                kind=ActionKind.CREDIT,
                policy=NAME,
                reason=f"{NAME}: goodwill discount of {config.goodwill.normalize():f}% on the next booking made by {local_text(until, appointment, with_time=False)}: {WHY}",
                slot="goodwill",
                context={
                    "purpose": CREDIT,
                    "goodwill": f"{config.goodwill.normalize():f}",
                    "goodwill_id": happening.key,
                    "valid_until": to_utc_text(until),
                },
            )
        )
    return proposals


def _goodwill_text(config) -> str:
    return f"{config.goodwill.normalize():f}%" if config.goodwill is not None else ""


def _open_goodwill(account, at):
    used = {entry.context.get("uses_goodwill") for entry in account.entries if entry.live and entry.context.get("uses_goodwill")}
    for entry in account.entries:
        token = entry.context.get("goodwill_id")
        if entry.policy != NAME or not token or token in used or not entry.live:
            continue
        if from_utc_text(str(entry.context["valid_until"])) >= at:
            return entry
    return None


@hookimpl
def slotguard_email_details(proposal, happening, account, config):
    if proposal.template != "booking_confirmation" or happening.kind is not HappeningKind.BOOKED or config.goodwill is None:
        return None
    goodwill = _open_goodwill(account, happening.at)
    if goodwill is None:
        return None
    return {"goodwill_discount": f"{goodwill.context['goodwill']}%"}
