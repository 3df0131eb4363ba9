"""What every `main.py` command shares: reading the config (with the policies' own
settings), the clock a command runs at (`--now`), and how amounts and times are shown.

The command modules (slotguard/cli/main.py and those it names in EXTRA_COMMANDS) import
this module; it imports none of them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from slotguard.config.schema import ConfigError, Settings, parse_settings, read_toml
from slotguard.domain.durations import parse_timestamp
from slotguard.domain.model import Action
from slotguard.domain.money import Money, format_money
from slotguard.policies.loading import load_enabled, table_problems


def load_settings(path: str) -> Settings:
    """Read and validate the config; with the policies' own settings validated too. Raises
    ConfigError with every problem of the file, the policies' tables included even when the
    core settings have errors of their own."""
    data = read_toml(path)
    try:
        settings = parse_settings(data, path)
    except ConfigError as error:
        raise ConfigError(error.problems + table_problems(data.get("policies")), path) from None
    try:
        load_enabled(settings)
    except ConfigError as error:
        raise ConfigError(error.problems, path) from None
    return settings


def now_from(text: str | None) -> datetime:
    """The time a command runs at: `--now TEXT` (ISO 8601, for demos and tests) or the clock.
    Raises DurationError for a time that cannot be read."""
    if text:
        return parse_timestamp(text)
    return datetime.now(UTC)


def refuse_pretend_clock(settings: Settings, command: str) -> None:
    """`--now` pretends the clock reads another time: for demos and tests. With live Stripe
    money (and no dry_run) it would charge real cards for fees whose review window has not
    ended: raises ConfigError (exit 2) before anything is read or done."""
    payments = settings.payments
    if payments.provider == "stripe" and payments.mode == "live" and not payments.dry_run:
        raise ConfigError([
            f'--now cannot be used with `{command}` while payments.provider = "stripe" and payments.mode = "live": '
            "it would charge real cards as if that time had come (fees still in their review window included). "
            "--now is for demos and tests: leave it out, or use payments.mode = \"test\" or payments.dry_run = true"
        ])


def money_text(value: Action | Money | None, settings: Settings) -> str:
    """An amount (or an action's) as the practitioner reads it, in the practice's locale
    ("450,00 kr" for nb, "NOK 450.00" for en), or "" for none. JSON output keeps minor units."""
    amount = value.amount if isinstance(value, Action) else value
    return format_money(amount, settings.practice.locale) if amount is not None else ""


def local_time(value: datetime | None, settings: Settings) -> str:
    """A time in the practice's zone ("2026-03-04 10:00"), or "" for none."""
    return value.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M") if value else ""
