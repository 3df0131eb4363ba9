"""What every `main.py` command shares: reading the config (with the policies' own
settings; `--config FILE`, or `--deployment FILE --practice ID` for one practice of a
deployment), the clock a command runs at (`--now`), and how amounts and times are shown.

The command modules (slotguard/cli/main.py and those it names in EXTRA_COMMANDS) import
this module; it imports none of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from slotguard.config.deployment import Deployment, load_deployment
from slotguard.config.schema import ConfigError, Settings, read_toml
from slotguard.domain.durations import parse_timestamp
from slotguard.domain.model import Action
from slotguard.domain.money import Money, format_money
from slotguard.run.practices import practice_data, practice_file, practice_settings, settings_from


class PracticeConfig(str):
    """`--deployment FILE --practice ID` in place of `--config FILE`: the practice's config
    file's path (what messages show, so a command that only prints `args.config` stays right),
    carrying the deployment and the id so that `load_settings` adds the deployment's part
    (slotguard/run/practices.py: its server, schema `practice_ID`, data folder)."""

    deployment: Deployment
    practice_id: str

    def __new__(cls, deployment: Deployment, practice_id: str) -> PracticeConfig:
        value = super().__new__(cls, str(practice_file(deployment, practice_id).path))
        value.deployment = deployment
        value.practice_id = practice_id
        return value


def select_config(config: str | None, deployment: str | None, practice: str | None, default: str, *, whole_deployment: bool = False) -> str:
    """What `--config`, `--deployment` and `--practice` name: the config file (default
    `default`), or a PracticeConfig. Raises ConfigError for half a pair or both ways at once.
    `whole_deployment`: the command takes `--deployment FILE` alone for all its practices
    (webhook-server); the config is then `--config`'s (or the default), and the command reads
    the deployment itself."""
    if (deployment is None or whole_deployment) and practice is None:
        return config or default
    if config is not None:
        raise ConfigError(["give either --config FILE or --deployment FILE --practice ID, not both"])
    if deployment is None or practice is None:
        raise ConfigError(["--deployment and --practice go together: the deployment file and the id of one of its practices"])
    return PracticeConfig(load_deployment(deployment), practice)


def config_data(path: str) -> dict[str, Any]:
    """The config mapping `path` names: the file as read, or for a practice of a deployment
    (PracticeConfig) the file with the deployment's part. Raises ConfigError."""
    if isinstance(path, PracticeConfig):
        return practice_data(path.deployment, path.practice_id)[0]
    return read_toml(path)


def load_settings(path: str) -> Settings:
    """Read and validate the config; with the policies' own settings validated too. Raises
    ConfigError with every problem of the file, the policies' tables included even when the
    core settings have errors of their own. `path` may be a PracticeConfig: that practice's
    settings within its deployment (its data folder is made, 0700)."""
    if isinstance(path, PracticeConfig):
        return practice_settings(path.deployment, path.practice_id)
    return settings_from(read_toml(path), path)


def day_or_time(text: str, zone, end: bool = False) -> datetime:
    """A `--from`/`--to` value: a date (the start of that day in `zone`, or with `end` the start
    of the next) or a timestamp. Raises DurationError."""
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        return parse_timestamp(text)
    moment = datetime.combine(day, time(0), tzinfo=zone)
    return moment + timedelta(days=1) if end else moment


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
