"""The what-if page (`main.py simulate --out what-if.html`): the policies in use now beside a
proposed set, over the weeks simulated, as one HTML file with its charts inline (SVG).

Given a `WhatIf` (plain numbers, built by slotguard/what_if/page.py from two simulations)
and the mail renderer, `what_if_html` returns the page: totals side by side, fees per client
and per week as charts, who would be charged that is not now and who would be spared. The
words are in templates/what_if_page.html.j2 and its message catalogs, in the practice's
locale; amounts and dates are formatted by Babel for it; a right-to-left locale (Hebrew)
gets `dir="rtl"` and its left-to-right runs isolated, as the emails do. The page holds
client addresses: the caller writes it 0600 (slotguard/store/private_files.write_out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from markupsafe import Markup

from slotguard.domain.money import Money, format_money
from slotguard.mail.bidi import isolate_html
from slotguard.mail.render import Renderer
from slotguard.reports.charts import Chart, grouped_bars

TEMPLATE = "what_if_page.html.j2"
MAX_CLIENTS_CHARTED = 20  # more clients than this: the chart shows those whose fees change most


@dataclass(frozen=True)
class Totals:
    """What one policy set does over the period, amounts in minor units of the currency."""

    fees: int = 0
    waived: int = 0
    written_off: int = 0
    deposits: int = 0
    refunded: int = 0
    prepaid_sessions: int = 0
    emails: int = 0


@dataclass(frozen=True)
class ClientLine:
    """One client's fees and waivers now and under the proposed set (minor units)."""

    client: str
    now_fees: int
    proposed_fees: int
    now_waived: int
    proposed_waived: int

    @property
    def newly_charged(self) -> bool:
        return self.proposed_fees > 0 and self.now_fees == 0

    @property
    def spared(self) -> bool:
        return self.now_fees > 0 and self.proposed_fees == 0


@dataclass(frozen=True)
class WhatIf:
    """Two simulations of the same weeks, side by side. `end` is excluded; `weeks` are the
    first days of the weeks, `now_weekly` and `proposed_weekly` the fees of each."""

    practice: str
    locale: str
    timezone: str
    currency: str
    start: datetime
    end: datetime
    now_policies: tuple[str, ...]
    proposed_policies: tuple[str, ...]
    now: Totals
    proposed: Totals
    clients: tuple[ClientLine, ...]
    weeks: tuple[date, ...]
    now_weekly: tuple[int, ...]
    proposed_weekly: tuple[int, ...]
    appointments: int
    problems: tuple[str, ...] = ()


def what_if_html(what_if: WhatIf, renderer: Renderer) -> str:
    """The page as HTML text. Raises TemplateProblem when the template cannot be rendered."""
    locale = _page_locale(renderer, what_if.locale)
    env = renderer.env_for(locale)
    babel_locale = renderer.clock_locale(locale)
    direction = babel_locale.text_direction

    def money(minor: int | float) -> str:
        return format_money(Money(int(round(minor)), what_if.currency), locale)

    def day(value: date) -> str:
        return format_skeleton("MMMd", value, locale=babel_locale)

    def chart(name: str, title: str, alt: str, now_label: str, proposed_label: str, labels: tuple[str, ...] = ()) -> Markup:
        drawn = _chart(what_if, name, str(title), str(alt), (str(now_label), str(proposed_label)), tuple(map(str, labels)), money, day)
        # dir="ltr": the SVG's own text is drawn, and its stylesheet must not be isolated as text.
        return Markup('<div class="chart" dir="ltr">{}</div>').format(Markup(drawn.svg()))

    clients = sorted(what_if.clients, key=lambda line: (-max(line.now_fees, line.proposed_fees), line.client))
    html = env.get_template(TEMPLATE).render(
        w=what_if,
        locale=locale,
        text_direction=direction,
        money=money,
        day=day,
        chart=chart,
        clients=clients,
        newly_charged=[line for line in clients if line.newly_charged],
        spared=[line for line in clients if line.spared],
        last_day=_last_day(what_if),
    )
    return isolate_html(html) if direction == "rtl" else html


def _page_locale(renderer: Renderer, wanted: str) -> str:
    """The practice's locale when there is a catalog for it (or its language), else English."""
    available = renderer.available_locales()
    for candidate in (wanted, wanted.partition("-")[0]):
        if candidate in available:
            return candidate
    return "en"


def _last_day(what_if: WhatIf) -> date:
    """The last day the period includes (`end` is the start of the day after it)."""
    return (what_if.end.astimezone(ZoneInfo(what_if.timezone)) - timedelta(microseconds=1)).date()


def _chart(what_if: WhatIf, name: str, title: str, alt: str, sets: tuple[str, str], labels: tuple[str, ...],
           money: Callable[[int | float], str], day: Callable[[date], str]) -> Chart:
    """The chart `name` of the page: "totals" (fees, waived, written off, deposits asked,
    refunded: `labels` names them), "clients" (fees per client) or "weeks" (fees per week),
    each with a bar for now and one for the proposed set (`sets` names them)."""
    now_label, proposed_label = sets
    if name == "totals":
        measures = ("fees", "waived", "written_off", "deposits", "refunded")
        if len(labels) != len(measures):
            raise ValueError(f"the totals chart names {len(measures)} measures: {', '.join(measures)}")
        return grouped_bars(
            title,
            list(labels),
            {now_label: [getattr(what_if.now, measure) for measure in measures],
             proposed_label: [getattr(what_if.proposed, measure) for measure in measures]},
            value_format=money,
            alt=alt,
        )
    if name == "clients":
        charted = sorted(
            (line for line in what_if.clients if line.now_fees or line.proposed_fees),
            key=lambda line: (-abs(line.proposed_fees - line.now_fees), -max(line.now_fees, line.proposed_fees), line.client),
        )[:MAX_CLIENTS_CHARTED]
        charted.sort(key=lambda line: (-max(line.now_fees, line.proposed_fees), line.client))
        return grouped_bars(
            title,
            [line.client for line in charted],
            {now_label: [line.now_fees for line in charted], proposed_label: [line.proposed_fees for line in charted]},
            value_format=money,
            alt=alt,
        )
    if name == "weeks":
        return grouped_bars(
            title,
            [day(week) for week in what_if.weeks],
            {now_label: list(what_if.now_weekly), proposed_label: list(what_if.proposed_weekly)},
            value_format=money,
            alt=alt,
        )
    raise ValueError(f"no chart named {name!r}")  # a template asking for a chart that does not exist


__all__ = ["WhatIf", "Totals", "ClientLine", "what_if_html", "MAX_CLIENTS_CHARTED"]
