"""Configuration value types: durations, amounts, fees, time zones, secrets, and the error
check-config reports (ConfigError). Every section of the schema is built from these."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from slotguard.config.limits import within_max_amount, within_max_duration
from slotguard.config.localized import LocalizedText as LocalizedText
from slotguard.domain.durations import DurationError, format_duration, parse_duration
from slotguard.domain.money import Fee, Money, MoneyError


class ConfigError(Exception):
    """The configuration cannot be used. `problems` lists "path: message" lines."""

    def __init__(self, problems: list[str], source: str = ""):
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(
            f"{len(problems)} problem(s){where}:\n" + "\n".join(f"  - {p}" for p in problems)
        )


# --- value types ----------------------------------------------------------------------


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return within_max_duration(parse_duration(value))
    except DurationError as error:
        raise ValueError(str(error)) from None


def _money(value: Any) -> Money:
    if isinstance(value, Money):
        return value
    if isinstance(value, float):
        raise ValueError("write amounts as text with a currency, like \"900 NOK\" (not a float)")
    try:
        money = Money.parse(value)
    except MoneyError as error:
        raise ValueError(str(error)) from None
    within_max_amount(money.minor, value)
    return money


def _positive_money(value: Money) -> Money:
    if value.minor <= 0:
        raise ValueError(f"must be a positive amount, got {value}")
    return value


def _fee(value: Any) -> Fee:
    if isinstance(value, Fee):
        return value
    if isinstance(value, float):
        raise ValueError("write fees as text, like \"50%\" or \"450 NOK\" (not a float)")
    try:
        fee = Fee.parse(value)
    except MoneyError as error:
        raise ValueError(str(error)) from None
    if fee.fixed is not None:
        within_max_amount(fee.fixed.minor, value)
    return fee


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known time zone; use an IANA name like Europe/Oslo") from None
    return value


Duration = Annotated[
    timedelta, BeforeValidator(_duration), PlainSerializer(format_duration, return_type=str)
]
def _positive_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_positive_duration)]
Amount = Annotated[Money, BeforeValidator(_money), PlainSerializer(str, return_type=str)]
PositiveAmount = Annotated[Amount, AfterValidator(_positive_money)]
FeeRule = Annotated[Fee, BeforeValidator(_fee), PlainSerializer(str, return_type=str)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]


DAY = timedelta(days=1)



class Strict(BaseModel):
    """Base for every config section: unknown keys are errors; values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class SecretRef(Strict):
    """A reference to a secret: an environment variable or a file readable only by its owner."""

    env: str | None = Field(None, description="Name of an environment variable.", examples=["STRIPE_SECRET_KEY"])
    file: str | None = Field(None, description="Path of a file with 0600 permissions.", examples=["/etc/slotguard/stripe.key"])

    @model_validator(mode="after")
    def _one_of(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of env = "NAME" or file = "PATH"')
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def resolve(self) -> str:
        """Return the secret. Raises ConfigError naming the reference (never the value)."""
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError([f"the {self.describe()} is not set or empty"])
            return value.strip()
        path = Path(self.file or "")
        try:
            mode = path.stat().st_mode
        except OSError:
            raise ConfigError([f"the secret {self.describe()} cannot be read"]) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                [f"the secret {self.describe()} is readable by others; run: chmod 600 {path}"]
            )
        return path.read_text(encoding="utf-8").strip()
