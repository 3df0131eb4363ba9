"""One month's report, gathered: the twelve months of figures ending with it
(slotguard/reports/figures.py) and, for the month itself, who is behind them
(slotguard/reports/people.py). Plain data, read from the ledger only; `main.py report` and
the monthly email both start here, then slotguard/reports/page.py draws and words it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from slotguard.config.schema import Settings
from slotguard.domain.durations import parse_duration, to_utc_text
from slotguard.reports.figures import MonthFigures, count_months
from slotguard.reports.months import Month, months_ending
from slotguard.reports.people import (
    ClientToTalkTo,
    Spared,
    WaiverGroup,
    clients_to_talk_to,
    enabled_since,
    spared,
    waivers,
)
from slotguard.store.ledger import Ledger

MONTHS_SHOWN = 12
LATE_CANCEL = "late_cancel"
DEFAULT_LATE_WINDOW = timedelta(hours=24)  # the late_cancel policy's default widest tier (plugins/late_cancel.py)


def late_window(settings: Settings) -> timedelta:
    """How little notice makes a client's cancellation late: the widest tier of the late_cancel
    policy when it is enabled, else (and when its tiers cannot be read) 24 hours, its default."""
    if LATE_CANCEL not in settings.policies.enabled:
        return DEFAULT_LATE_WINDOW
    windows = []
    for tier in settings.policy_settings(LATE_CANCEL).get("tiers") or []:
        try:
            windows.append(parse_duration(str(tier["within"])))
        except (KeyError, TypeError, ValueError):
            continue
    return max(windows, default=DEFAULT_LATE_WINDOW)


@dataclass(frozen=True)
class MonthlyReport:
    """The report of `month` (the last of `months`), as of `now`; amounts in minor units of
    `currency`."""

    month: Month
    months: list[MonthFigures]
    currency: str
    waivers: list[WaiverGroup]
    spared: dict[str, Spared]
    clients: list[ClientToTalkTo]
    enabled: dict[str, datetime]  # each enabled policy: since when (as far as the ledger knows)
    now: datetime

    @property
    def this(self) -> MonthFigures:
        return self.months[-1]

    @property
    def markers(self) -> list[tuple[int, str]]:
        """(index in `months`, policy name) of each policy enabled inside the window."""
        found = []
        for name, since in sorted(self.enabled.items(), key=lambda item: item[1]):
            stamp = to_utc_text(since)
            for index, figures in enumerate(self.months):
                if figures.month.start <= stamp < figures.month.end:
                    found.append((index, name))
        return found


def build_report(settings: Settings, ledger: Ledger, month: date, now: datetime) -> MonthlyReport:
    """The report of the month that `month` falls in (its twelve months ending with it)."""
    months = months_ending(month, settings.zone, MONTHS_SHOWN)
    window = late_window(settings)
    figures = count_months(ledger, months, settings.practice.currency, settings.mail.slot_freed_within, window)
    last = months[-1]
    return MonthlyReport(
        month=last,
        months=figures,
        currency=settings.practice.currency,
        waivers=waivers(ledger, last),
        spared=spared(ledger, last),
        clients=clients_to_talk_to(ledger, last, window),
        enabled=enabled_since(ledger, list(settings.policies.enabled)),
        now=now,
    )
