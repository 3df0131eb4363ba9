"""rolling_half_deposit: at each attended session the client pays part (by default half) of
the next one, so a missed next session is already half paid.

- Attended: what was paid ahead is applied to this session's price (a `credit` record), and
  `share` of this session's price is charged ahead for the next one (purpose deposit).
- No-show or late cancellation with a fee: the fee is paid from what was paid ahead first;
  only the rest is charged; anything the fee did not need stays paid ahead.
- Cancelled in time, or by the practitioner: what was paid ahead stays for the next session.

For regular clients (`clients`, or everyone when empty). Cannot be combined with `deposit`.

Emails: none of its own (the charge is asked like any fee, through the payment provider); the
booking confirmation gets `details.paid_ahead` ({"minor", "currency"}).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator

from slotguard.kit import DEPOSIT, ActionKind, Fund, HappeningKind, Percent, PolicyConfig, PolicyInfo, Proposal, hookimpl, money_json, settle_funds

NAME = "rolling_half_deposit"


class RollingHalfDepositConfig(PolicyConfig):
    share: Percent = Field(Decimal(50), description="Percent of the session price paid ahead for the next session.", examples=["50%"])
    clients: list[str] = Field(default_factory=list, description="Email addresses of the clients this applies to; empty means every client.", examples=[["frank@example.com"]])

    @field_validator("share")
    @classmethod
    def _some(cls, percent: Decimal) -> Decimal:
        if percent == 0:
            raise ValueError("must be more than 0%")
        return percent

    @field_validator("clients")
    @classmethod
    def _lower(cls, clients: list[str]) -> list[str]:
        return [client.strip().lower() for client in clients]


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="fee",
        config_model=RollingHalfDepositConfig,
        summary="At each attended session the client pays half of the next one, so a missed session is already half paid.",
        conflicts=("deposit",),
    )


def applies(appointment, config) -> bool:
    return not config.clients or appointment.client.email.lower() in config.clients


def paid_ahead(account) -> list:
    """This client's money paid ahead and not used yet, oldest first."""
    used = account.used_up()
    return [
        entry
        for entry in account.entries
        if entry.policy == NAME and entry.purpose == DEPOSIT and entry.live and entry.amount and entry.id not in used
    ]


@hookimpl
def slotguard_settle(proposals, happening, appointment, account, config):
    if not applies(appointment, config):
        return None
    kind = happening.kind
    if kind not in (HappeningKind.ATTENDED, HappeningKind.NO_SHOW, HappeningKind.CANCELLED_BY_CLIENT):
        return None
    funds = [Fund(entry, "paid ahead") for entry in paid_ahead(account) if not entry.is_open]
    result = settle_funds(proposals, happening, funds, NAME, leftover="carry") if funds else list(proposals)
    if kind is HappeningKind.ATTENDED:
        amount = appointment.price.percent(config.share)
        result.append(
            Proposal(
                kind=ActionKind.CHARGE,
                policy=NAME,
                reason=f"{NAME}: {config.share.normalize():f}% of the next session paid ahead: {amount}",
                amount=amount,
                slot="next",
                context={"purpose": DEPOSIT, "deposit_kind": "rolling"},
            )
        )
    return result


@hookimpl
def slotguard_email_details(proposal, appointment, account, config):
    if proposal.template != "booking_confirmation" or not applies(appointment, config):
        return None
    entries = paid_ahead(account)
    if not entries:
        return None
    total = sum((entry.amount for entry in entries[1:]), entries[0].amount)
    return {"paid_ahead": money_json(total)}


@hookimpl
def slotguard_terms(config, appointment):
    if not applies(appointment, config):
        return None
    return {"share": config.share, "amount": appointment.price.percent(config.share)}

