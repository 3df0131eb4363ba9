"""late_cancel: a fee when the client cancels with too little notice, in tiers.

The notice is measured from the client's cancellation time to the start. The tightest tier
that contains the notice applies: with tiers 24h -> 50% and 2h -> 100%, a cancellation 5 hours
ahead costs half the price, one 90 minutes ahead the whole price, one 30 hours ahead nothing.

Emails: `late_cancel_notice` (sent with the fee, after the review window; it tells the client
whether the fee stood or was waived).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from slotguard.kit import (
    ActionKind,
    FeeRule,
    HappeningKind,
    Money,
    MoneyError,
    PolicyConfig,
    PolicyInfo,
    PositiveDuration,
    Proposal,
    format_duration,
    hookimpl,
    reporting_email,
)

NAME = "late_cancel"


class Tier(PolicyConfig):
    within: PositiveDuration = Field(description="A cancellation with less notice than this falls in this tier.", examples=["24h"])
    fee: FeeRule = Field(description='Percent of the price ("50%") or a fixed amount ("450 NOK").', examples=["50%"])


class LateCancelConfig(PolicyConfig):
    tiers: list[Tier] = Field(
        default_factory=lambda: [Tier(within="24h", fee="50%"), Tier(within="2h", fee="100%")],
        validate_default=True,  # the default is sorted tightest first too (tier_for relies on it)
        description="Fee tiers by notice; the tightest tier containing the notice applies.",
        examples=[[{"within": "24h", "fee": "50%"}, {"within": "2h", "fee": "100%"}]],
    )

    @field_validator("tiers")
    @classmethod
    def _distinct(cls, tiers: list[Tier]) -> list[Tier]:
        if not tiers:
            raise ValueError("give at least one tier, e.g. { within = \"24h\", fee = \"50%\" }")
        windows = [tier.within for tier in tiers]
        if len(set(windows)) != len(windows):
            raise ValueError("two tiers have the same `within`")
        return sorted(tiers, key=lambda tier: tier.within)


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="fee",
        config_model=LateCancelConfig,
        summary="A fee in tiers when the client cancels with too little notice.",
        emails=("late_cancel_notice",),
    )


@hookimpl
def slotguard_check_config(config, settings):
    """A closer tier may not cost less than a wider one (24h -> 100 %, 2h -> 50 % would make a
    cancellation two hours ahead cheaper than one a day ahead), for any service's price."""
    problems = []
    prices = [service.price for service in settings.services.values()]
    tiers = sorted(config.tiers, key=lambda tier: tier.within)
    for closer, wider in zip(tiers, tiers[1:]):
        cheaper = [price for price in prices if _fee_of(closer, price) < _fee_of(wider, price)]
        if cheaper:
            problems.append(
                f"tiers: the {format_duration(closer.within)} tier ({closer.fee}) costs less than the "
                f"{format_duration(wider.within)} tier ({wider.fee}) for a {cheaper[0]} session: a later cancellation "
                "must not be cheaper; give the closer tier the higher fee"
            )
    return problems


def _fee_of(tier: Tier, price: Money) -> Money:
    """The tier's fee for `price`; a fixed fee in another currency (reported on its own by the
    currency check) counts as the price, so it is compared with nothing."""
    try:
        return tier.fee.of(price)
    except MoneyError:
        return price


def tier_for(notice: timedelta, config: LateCancelConfig) -> Tier | None:
    """The tightest tier whose window contains `notice`, or None (enough notice)."""
    for tier in config.tiers:  # sorted tightest first
        if notice < tier.within:
            return tier
    return None


@hookimpl
def slotguard_propose(happening, appointment, config, now):
    if happening.kind is not HappeningKind.CANCELLED_BY_CLIENT:
        return []
    notice = appointment.start - happening.at
    tier = tier_for(notice, config)
    if tier is None:
        return []
    fee = tier.fee.of(appointment.price)
    if notice <= timedelta(0):
        when = "after the start"
    else:
        when = f"{format_duration(notice)} before the start"
    reason = f"late_cancel proposed {fee}: cancelled {when} (within {format_duration(tier.within)}: {tier.fee} of {appointment.price})"
    charge = Proposal(kind=ActionKind.CHARGE, policy=NAME, reason=reason, amount=fee, slot="fee")
    details = {"notice_minutes": int(notice.total_seconds() // 60)}
    return [charge, reporting_email(charge, "late_cancel_notice", "tell the client about the late cancellation", slot="notice", context=details)]


@hookimpl
def slotguard_terms(config, appointment):
    return {
        "tiers": [
            {"within_hours": int(tier.within.total_seconds() // 3600), "fee": tier.fee.of(appointment.price), "percent": tier.fee.percent}
            for tier in sorted(config.tiers, key=lambda tier: tier.within, reverse=True)
        ]
    }
