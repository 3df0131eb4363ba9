"""weekend_surcharge: an example third-party Slotguard policy.

A modifier: the fee for a missed or late-cancelled appointment on a weekend day carries a
surcharge (weekend slots are the hardest to fill again). "no_show proposed 600.00 NOK ...;
weekend_surcharge added 25% for a Saturday appointment: 750.00 NOK". Slotguard's own safety
rules still apply after it: a fee never exceeds the price or payments.max_single_charge.

Pure, like every policy: no I/O, no clock; it reads the appointment and its own config.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from slotguard.kit import Percent, PolicyConfig, PolicyInfo, hookimpl

NAME = "weekend_surcharge"
Day = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class WeekendSurchargeConfig(PolicyConfig):
    surcharge: Percent = Field(Decimal(25), description='Added to the fee, in percent of the fee ("25%").', examples=["25%"])
    days: list[Day] = Field(default_factory=lambda: ["saturday", "sunday"], description="The days (in the practice's time zone) that count as the weekend.", examples=[["saturday", "sunday"]])

    @field_validator("surcharge")
    @classmethod
    def _some(cls, percent: Decimal) -> Decimal:
        if percent == 0:
            raise ValueError("must be more than 0%")
        return percent


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="modifier",
        config_model=WeekendSurchargeConfig,
        summary="Fees for weekend appointments carry a surcharge.",
    )


@hookimpl
def slotguard_modify(proposal, appointment, config):
    zone = ZoneInfo(appointment.timezone) if appointment.timezone else appointment.start.tzinfo
    day = DAYS[appointment.start.astimezone(zone).weekday()]
    if day not in config.days:
        return None
    raised = proposal.amount + proposal.amount.percent(config.surcharge)
    return proposal.with_amount(raised, f"{NAME} added {config.surcharge.normalize():f}% for a {day.capitalize()} appointment: {raised}")
