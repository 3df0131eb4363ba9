"""The monthly report in words and charts: the `monthly_report` template's details and its
charts, in the practice's language, for the HTML file (`main.py report`, charts inline as
SVG) and the email (charts as PNG attached inline, by Content-ID).

The words are the catalogs' (templates/monthly_report.*.j2, and the charts' titles, series
and alt texts in templates/_report_words.txt.j2); numbers, money, percentages and month
names are written by Babel for the language.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from markupsafe import Markup

from slotguard.domain.money import Money, format_money
from slotguard.mail.messages import Attachment, Renderer
from slotguard.reports.charts import Chart, grouped_bars, line_chart, stacked_bars
from slotguard.reports.figures import MonthFigures
from slotguard.reports.monthly import MonthlyReport
from slotguard.reports.people import PRACTITIONER, WaiverGroup

TEMPLATE = "monthly_report"
CHART_WORDS = "_report_words.txt.j2"
MAX_WAIVER_GROUPS = 8
EMAIL_COLOURS = 24  # a chart's palette in the email: its few colours plus the grey steps of smoothed edges and text
_LETTER_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")


@dataclass(frozen=True)
class Wording:
    """How numbers are written in one language, and the charts' words."""

    locale: str
    babel: Locale
    words: Any  # the module of templates/_report_words.txt.j2: one macro per text

    def say(self, name: str, **values: Any) -> str:
        return " ".join(str(getattr(self.words, name)(**values)).split())

    def number(self, value: float) -> str:
        return format_decimal(value, locale=self.babel)

    def percent(self, value: float | None) -> str:
        # One decimal at most, in the locale's own pattern ("11,1 %" in Norwegian, "11.1%" in English).
        return "–" if value is None else format_percent(round(value, 3), locale=self.babel, decimal_quantization=False)

    def money(self, minor: int, currency: str) -> str:
        return format_money(Money(minor, currency), self.locale)

    def month(self, figures: MonthFigures, wide: bool = False) -> str:
        return format_date(figures.month.first, "LLLL y" if wide else "LLL yy", locale=self.babel)


def wording(renderer: Renderer, locale: str) -> Wording:
    env = renderer.env_for(locale)
    return Wording(locale, renderer.clock_locale(locale), env.get_template(CHART_WORDS).module)


def charts(report: MonthlyReport, say: Wording) -> list[tuple[str, Chart]]:
    """(name, chart) of the report's four charts."""
    months = report.months
    labels = [say.month(figures) for figures in months]
    first, last = say.month(months[0], True), say.month(months[-1], True)
    this = report.this
    major = Money(1, report.currency).to_decimal()  # one minor unit in the currency's units

    def units(minor: int) -> float:
        return float(Decimal(minor) * major)

    def money_format(value: float) -> str:
        # An axis reads in whole units ("12 000 kr"); the figures under the charts keep the minor ones.
        pattern = say.babel.currency_formats["standard"].pattern.replace(".00", "")
        text = format_currency(Decimal(round(value)), report.currency, format=pattern, locale=say.babel, currency_digits=False)
        return _LETTER_DIGIT.sub("\u00a0", text)  # "NOK 12,000", as format_money writes it

    rates = line_chart(
        say.say("rates_title"), labels,
        {say.say("no_shows"): [_pct(figures.no_show_rate) for figures in months],
         say.say("late_cancels"): [_pct(figures.late_cancel_rate) for figures in months]},
        markers=[(index, say.say("enabled_marker", policy=name)) for index, name in report.markers],
        value_format=lambda value: say.percent(value / 100),
        alt=say.say("rates_alt", first=first, last=last, no_shows=say.percent(this.no_show_rate),
                    late_cancels=say.percent(this.late_cancel_rate),
                    markers=", ".join(f"{name} ({say.month(months[index], True)})" for index, name in report.markers)),
    )
    fees = stacked_bars(
        say.say("fees_title"), labels,
        {say.say("collected"): [units(figures.collected) for figures in months],
         say.say("kept"): [units(figures.kept) for figures in months],
         say.say("still_open"): [units(figures.open) for figures in months],
         say.say("waived"): [units(figures.waived) for figures in months],
         say.say("written_off"): [units(figures.written_off) for figures in months]},
        value_format=money_format,
        alt=say.say("fees_alt", first=first, last=last, month=last, proposed=say.money(this.proposed, report.currency),
                    collected=say.money(this.collected, report.currency), kept=say.money(this.kept, report.currency),
                    open=say.money(this.open, report.currency), waived=say.money(this.waived, report.currency),
                    written_off=say.money(this.written_off, report.currency)),
    )
    back = grouped_bars(
        say.say("back_title"), labels,
        {say.say("rebooked"): [float(figures.rebooked) for figures in months],
         say.say("hours"): [round(figures.protected_minutes / 60, 1) for figures in months]},
        value_format=say.number,
        alt=say.say("back_alt", first=first, last=last, month=last, rebooked=say.number(this.rebooked),
                    hours=say.number(round(this.protected_minutes / 60, 1))),
    )
    early = line_chart(
        say.say("early_title"), labels,
        {say.say("early"): [_pct(figures.early_share) for figures in months]},
        value_format=lambda value: say.percent(value / 100),
        alt=say.say("early_alt", first=first, last=last, month=last, early=say.percent(this.early_share),
                    reminders=say.number(this.reminders)),
    )
    return [("rates", rates), ("fees", fees), ("back", back), ("early", early)]


def _pct(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


def without_notes(groups: list[WaiverGroup]) -> list[WaiverGroup]:
    """The waiver groups without the practitioner's own free-text reasons (which may say
    anything about a client: "Bo has cancer"): the practitioner's waivers in one group, the
    policies' groups (their own fixed reasons) as they are; largest groups first."""
    merged: dict[tuple[str, str], WaiverGroup] = {}
    for group in groups:
        key = (group.who, "" if group.who == PRACTITIONER else group.why)
        found = merged.get(key)
        merged[key] = WaiverGroup(key[0], key[1], group.count + (found.count if found else 0), group.amount + (found.amount if found else 0))
    return sorted(merged.values(), key=lambda group: -group.count)


def details(report: MonthlyReport, say: Wording, drawn: list[dict[str, Any]], notes: bool = False) -> dict[str, Any]:
    """The `monthly_report` template's details: the month's figures written out, the groups
    and lists, and `charts` (each with name, title, alt, and svg or cid). The practitioner's
    own reasons for waiving a fee are in only with `notes` (the HTML file `main.py report
    --out` writes, which stays on the machine); never in the email."""
    this, currency = report.this, report.currency
    groups = report.waivers if notes else without_notes(report.waivers)

    def money(minor: int) -> dict[str, Any]:
        return {"minor": minor, "currency": currency}

    previous = report.months[-2] if len(report.months) > 1 else None
    first = this.month.first
    return {
        "month": datetime.combine(first, time(12), tzinfo=report.now.tzinfo),
        "month_name": say.month(this, True),
        "previous_name": say.month(previous, True) if previous else "",
        "booked": say.number(this.booked),
        "no_shows": say.number(this.no_shows),
        "late_cancels": say.number(this.late_cancels),
        "no_show_rate": say.percent(this.no_show_rate),
        "late_cancel_rate": say.percent(this.late_cancel_rate),
        "previous_no_show_rate": say.percent(previous.no_show_rate) if previous else "",
        "previous_late_cancel_rate": say.percent(previous.late_cancel_rate) if previous else "",
        "proposed": money(this.proposed), "waived": money(this.waived), "charged": money(this.charged),
        "collected": money(this.collected), "written_off": money(this.written_off), "open": money(this.open),
        "kept": money(this.kept), "came_back": money(this.came_back),
        "rebooked": say.number(this.rebooked),
        "hours": say.number(round(this.protected_minutes / 60, 1)),
        "reminders": say.number(this.reminders),
        "cancellations": say.number(this.cancellations),
        "cancelled_in_time": say.number(this.cancelled_in_time),
        "early_share": say.percent(this.early_share),
        "waivers": [{"who": group.who, "why": group.why, "count": group.count, "amount": money(group.amount)}
                    for group in groups[:MAX_WAIVER_GROUPS]],
        "more_waivers": max(0, len(groups) - MAX_WAIVER_GROUPS),
        "notes_left_out": not notes,
        "spared": {name: {"waived": item.waived, "reduced": item.reduced, "amount": money(item.amount)}
                   for name, item in report.spared.items()},
        "clients": [{"name": client.name or client.email, "email": client.email, "incidents": client.incidents,
                     "last": client.last} for client in report.clients],
        "enabled": [{"policy": name, "since": since} for name, since in sorted(report.enabled.items(), key=lambda item: item[1])],
        "charts": drawn,
    }


def html_page(renderer: Renderer, report: MonthlyReport, context: dict[str, Any], locale: str) -> str:
    """The report as one HTML page, its charts inline SVG. `context` is the practitioner's
    template context (slotguard/mail/context.py `practitioner_context`)."""
    say = wording(renderer, locale)
    drawn = [{"name": name, "title": chart.title, "alt": chart.alt, "svg": Markup(chart.svg()), "cid": ""}
             for name, chart in charts(report, say)]
    context["details"].update(details(report, say, drawn, notes=True))
    return renderer.render(TEMPLATE, context, locale).html


def email_parts(renderer: Renderer, report: MonthlyReport, locale: str, message_key: str) -> tuple[dict[str, Any], list[Attachment]]:
    """The email's details and its charts as PNG parts, each with a Content-ID unique to the
    message (`message_key`: the action's id), which the HTML's <img src="cid:..."> names."""
    say = wording(renderer, locale)
    drawn, parts = [], []
    for name, chart in charts(report, say):
        cid = f"{name}.{message_key}@slotguard"
        width, height = chart.png_size()
        drawn.append({"name": name, "title": chart.title, "alt": chart.alt, "svg": "", "cid": cid, "width": width, "height": height})
        parts.append(Attachment(filename=f"{name}.png", maintype="image", subtype="png", data=light_png(chart.png()),
                                content_id=cid))
    return details(report, say, drawn), parts


def light_png(data: bytes, colours: int = EMAIL_COLOURS) -> bytes:
    """The chart's PNG with a palette of `colours` (no dithering), saved optimized: about a
    quarter of the bytes of the full-colour image, same size in pixels, so that the monthly
    email with its four charts stays light (bench/bench_report.py prints its size). A chart
    has a handful of flat colours, so the palette loses nothing one can see."""
    from PIL import Image  # Pillow comes with matplotlib; imported only by the process that mails

    image = Image.open(io.BytesIO(data)).convert("RGB")
    light = image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    light.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
