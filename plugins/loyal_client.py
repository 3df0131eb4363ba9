"""loyal_client: long-standing clients get a reduced fee, or none.

A client qualifies with at least `min_sessions` attended sessions, or at least `min_months`
since Slotguard first saw them (either is enough; leave one out to use only the other). The
fee is reduced by `discount` percent ("loyal_client reduced it by 50% to 450.00 NOK: 24
sessions attended"); a discount of 100% waives it.

Emails: none of its own; the fee notice reports on the reduced (or waived) fee.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field, PositiveInt, field_validator, model_validator

from slotguard.kit import Money, Percent, PolicyConfig, PolicyInfo, hookimpl

NAME = "loyal_client"


class LoyalClientConfig(PolicyConfig):
    min_sessions: PositiveInt | None = Field(10, description="Attended sessions that make a client loyal; leave out to use only `min_months`.", examples=[10])
    min_months: PositiveInt | None = Field(None, description="Months since the client was first seen that make them loyal; leave out to use only `min_sessions`.", examples=[12])
    discount: Percent = Field(Decimal(50), description='How much of the fee a loyal client is spared, in percent; "100%" waives it.', examples=["50%"])

    @field_validator("discount")
    @classmethod
    def _some(cls, percent: Decimal) -> Decimal:
        if percent == 0:
            raise ValueError("must be more than 0%")
        return percent

    @model_validator(mode="after")
    def _some_rule(self):
        if self.min_sessions is None and self.min_months is None:
            raise ValueError("give min_sessions, min_months or both")
        return self


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="modifier",
        config_model=LoyalClientConfig,
        summary="Loyal clients (many sessions, or many months) get a reduced fee or a waiver.",
    )


def months_between(first: datetime, now: datetime) -> int:
    months = (now.year - first.year) * 12 + (now.month - first.month)
    if (now.day, now.time()) < (first.day, first.time()):
        months -= 1
    return max(months, 0)


def why_loyal(history, config, now) -> str | None:
    """The reason the client counts as loyal, or None."""
    attended = history.attended
    if config.min_sessions is not None and attended >= config.min_sessions:
        return f"{attended} sessions attended"
    if config.min_months is not None and history.first_seen is not None:
        months = months_between(history.first_seen, now)
        if months >= config.min_months:
            return f"a client for {months} months"
    return None


@hookimpl
def slotguard_modify(proposal, history, config, now):
    why = why_loyal(history, config, now)
    if why is None:
        return None
    amount = proposal.amount
    if config.discount >= 100:
        return proposal.with_amount(Money.zero(amount.currency), f"{NAME} waived it: {why}")
    reduced = amount - amount.percent(config.discount)
    return proposal.with_amount(reduced, f"{NAME} reduced it by {config.discount.normalize():f}% to {reduced}: {why}")
