"""Upper bounds for configuration values, and what `check-config` looks at beyond the schema.

A duration or amount far past anything a practice uses is a typo ("99999999999999d", a
3,000,000-day window): it would pass the schema and crash the daemon later, when it is added
to a date. The bounds below turn it into a configuration error naming the key, with the most
that makes sense there. Every bound is in the key's description too (docs/configuration.md).

`file_problems` (files the settings name that do not exist) and `warnings` (valid settings
that are probably not what was meant) are for `check-config` and the start of `run`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from slotguard.config.localized import has_text_for, locale_code, localized_text
from slotguard.domain.durations import format_duration

# Every duration in the config (the policies' too): ten years is past any notice period,
# ladder or window, and adding it to a date cannot overflow.
MAX_DURATION = timedelta(days=3650)
# Every amount: 10^12 minor units (ten billion NOK) is past any fee or price, and stays far
# inside the ledger's 64-bit integers whatever is added to it.
MAX_AMOUNT_MINOR = 10**12


def at_most(limit: timedelta, why: str) -> Callable[[timedelta], timedelta]:
    """A pydantic AfterValidator: the duration may not be longer than `limit` (`why` says
    what a longer one would mean)."""

    def check(value: timedelta) -> timedelta:
        if value > limit:
            raise ValueError(f"{format_duration(value)} is longer than {format_duration(limit)}, the most that makes sense here ({why})")
        return value

    check.most = limit  # type: ignore[attr-defined]
    return check


def within_max_duration(value: timedelta) -> timedelta:
    if value > MAX_DURATION:
        raise ValueError(f"{format_duration(value)} is longer than ten years (3650d); check the number and the unit")
    return value


def within_max_amount(minor: int, text: Any) -> None:
    if abs(minor) > MAX_AMOUNT_MINOR:
        raise ValueError(f"{text!r} is larger than any amount Slotguard handles; check the number")


def file_problems(settings: Any) -> list[str]:
    """Files and folders the settings name that are not there (for `check-config`): the .ics
    calendar file, and the CalDAV password's reference. A missing feed is only a problem of each tick for `run` (a synced file may
    come back); `check-config` says so at once."""
    problems = []
    calendar = settings.calendar
    if calendar.source == "ics" and not calendar.url.startswith(("https://", "http://")):
        path = Path(calendar.url)
        shown = str(path) if path.is_absolute() else f"{path} (from the folder Slotguard is started in, {Path.cwd()})"
        try:
            is_dir, is_file = path.is_dir(), path.is_file()
        except OSError as error:  # a name too long for the file system, a folder that cannot be read
            is_dir, is_file = False, False
            shown = f"{shown[:80]}... ({error.strerror or error})" if len(shown) > 80 else f"{shown} ({error.strerror or error})"
        if is_dir:
            problems.append(f"calendar.url: {shown} is a folder; give the .ics file in it, or the calendar's secret iCal address")
        elif not is_file:
            problems.append(f"calendar.url: no file {shown}; give the path of the .ics file, or the calendar's secret iCal address (https://...)")
    caldav = getattr(calendar, "caldav", None)
    if calendar.source == "caldav" and caldav is not None:
        try:
            caldav.password.resolve()  # the reference can be read (the password is never shown)
        except Exception as error:  # noqa: BLE001 - ConfigError (slotguard/config/types.py imports this module)
            problems += [f"calendar.caldav.password: {problem}" for problem in getattr(error, "problems", [str(error)])]
    return problems


def warnings(settings: Any) -> list[str]:
    """Valid settings that are probably not what was meant, each with its path."""
    found = untranslated_texts(settings)
    if settings.payments.review_window <= timedelta(0):
        found.append(
            'payments.review_window: "0s" carries out each fee at the next tick, so there is no time to waive a '
            'mistaken mark before the client is charged or told; a few hours (the default is "12h") is usual'
        )
    return found


def untranslated_texts(settings: Any) -> list[str]:
    """The practitioner's own words clients read (service labels, payment instructions) that
    have no text in a language the practice writes in: practice.locale and each language of
    mail.client_locales (a client's `lang:` line is not known from the config)."""
    practice = (locale_code(settings.practice.locale) or "en").partition("-")[0]
    languages = sorted({practice} | {code.partition("-")[0] for code in settings.mail.client_locales.values()})
    texts = [("practice.payment_instructions", settings.practice.payment_instructions)]
    texts += [(f"services.{name}.label", service.label) for name, service in settings.services.items()]
    found = []
    for path, value in texts:
        if not value:
            continue
        if isinstance(value, str):
            others = [code for code in languages if code != practice]
            if others:
                found.append(
                    f"{path}: one text for every client, so clients who read {', '.join(others)} (mail.client_locales) "
                    f'read it as written; give a table by language, like {{ {practice} = "...", {others[0]} = "..." }}'
                )
            continue
        missing = [code for code in languages if not has_text_for(value, code)]
        if missing:
            fallback = localized_text(value, missing[0], settings.practice.locale)
            found.append(
                f"{path}: no text for {', '.join(missing)} (practice.locale, mail.client_locales); "
                f'those clients read "{fallback}"; add {missing[0]} = "..." to the table'
            )
    return found
