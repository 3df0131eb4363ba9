"""friends_and_family: friends, family and discounted clients are held to the same policy, at a
configured share of the fee. They are exempt only if `exempt` says so.

"friends_and_family reduced it to 50%: 450.00 NOK (friends and family)".

Emails: none of its own; the fee notice reports on the reduced fee.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator

from slotguard.kit import Money, Percent, PolicyConfig, PolicyInfo, hookimpl

NAME = "friends_and_family"


class FriendsAndFamilyConfig(PolicyConfig):
    clients: list[str] = Field(default_factory=list, description="Email addresses of friends, family and discounted clients.", examples=[["mum@example.com", "neighbour@example.com"]])
    share: Percent = Field(Decimal(50), description='The share of the usual fee they pay, in percent ("50%").', examples=["50%"])
    exempt: bool = Field(False, description="Exempt them from fees entirely (the practitioner's explicit choice; not the default).", examples=[False])

    @field_validator("clients")
    @classmethod
    def _lower(cls, clients: list[str]) -> list[str]:
        return [client.strip().lower() for client in clients]

    @field_validator("share")
    @classmethod
    def _some(cls, percent: Decimal) -> Decimal:
        if percent == 0:
            raise ValueError("must be more than 0%; to exempt them, set exempt = true")
        return percent


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="modifier",
        config_model=FriendsAndFamilyConfig,
        summary="Friends, family and discounted clients pay a configured share of the fee (not an exemption, unless configured).",
    )


@hookimpl
def slotguard_modify(proposal, appointment, config):
    if appointment.client.email.lower() not in config.clients:
        return None
    if config.exempt:
        return proposal.with_amount(Money.zero(proposal.amount.currency), f"{NAME} waived it: exempt as friends and family")
    reduced = proposal.amount.percent(config.share)
    return proposal.with_amount(reduced, f"{NAME} reduced it to {config.share.normalize():f}%: {reduced} (friends and family)")
