"""The what-if page (`simulate --out`): the week of tests/unit/what_if/test_policy_simulate.py
simulated under the ledger's policies and with first_offense_grace added, compared and drawn.
The expected fees are counted here from the week's story and the config's prices, not read
back from the simulation."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from slotguard.config.schema import parse_settings
from slotguard.domain.money import Money, format_money
from slotguard.mail.render import Renderer
from slotguard.what_if.page import compare, what_if_page
from slotguard.what_if.simulate import copy_of_ledger, simulate, with_policies
from tests.support.builders import config

from .test_policy_simulate import MONDAY, RENDERER, at, week_in_a_ledger

PRICE = 90000  # services.default.price in tests/support/builders.py: 900 NOK
NO_SHOW = PRICE  # no_show.fee 100 %
LATE = PRICE // 2  # late_cancel within 24 h: 50 % (Ana cancels at 09:00 for 14:00)


@pytest.fixture(scope="module")
def ledger_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("what-if") / "ledger.sqlite3"
    week_in_a_ledger(str(path))
    return path


_done: dict = {}


def simulations(ledger_file, locale="en", start=MONDAY.replace(hour=0) - timedelta(days=7), end=at(7, 0)):
    """(settings, now, proposed): the week under the config's policies and with first_offense_grace."""
    key = (str(ledger_file), locale)
    if key not in _done:
        _done[key] = _simulations(ledger_file, locale, start, end)
    return _done[key]


def _simulations(ledger_file, locale, start, end):
    raw = config(practice={"locale": locale})
    now_settings = parse_settings(raw)
    proposed_settings = parse_settings(with_policies(raw, ["late_cancel", "no_show", "first_offense_grace"]))
    source = copy_of_ledger(str(ledger_file))
    now = simulate(now_settings, source, start, end, renderer=RENDERER)
    proposed = simulate(proposed_settings, source, start, end, renderer=RENDERER)
    return now_settings, now, proposed


class Page(HTMLParser):
    """The page's table rows (cell texts), list items, headings and inline SVGs."""

    def __init__(self, html: str):
        super().__init__()
        self.rows: list[list[str]] = []
        self.items: list[str] = []
        self.headings: list[str] = []
        self._cell: list[str] | None = None
        self._item: list[str] | None = None
        self._heading: list[str] | None = None
        self.feed(html)
        self.svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
        self.html_tag = re.search(r"<html[^>]*>", html).group(0)

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "li":
            self._item = []
        elif tag in ("h1", "h2"):
            self._heading = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" | ")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "li" and self._item is not None:
            self.items.append("".join(self._item).strip())
            self._item = None
        elif tag in ("h1", "h2") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data):
        for part in (self._cell, self._item, self._heading):
            if part is not None:
                part.append(data)


def nok(minor: int) -> str:
    return format_money(Money(minor, "NOK"), "en")


def test_the_comparison_counts_each_clients_fees_under_both_sets(ledger_file):
    settings, now, proposed = simulations(ledger_file)
    what_if = compare(settings, now, proposed)
    lines = {line.client: line for line in what_if.clients}
    assert (lines["ana@example.com"].now_fees, lines["ana@example.com"].proposed_fees) == (NO_SHOW + LATE, LATE)
    assert lines["ana@example.com"].proposed_waived == NO_SHOW, "her first incident, Monday's no-show, forgiven"
    assert (lines["cy@example.com"].now_fees, lines["cy@example.com"].proposed_fees) == (NO_SHOW, 0)
    assert lines["cy@example.com"].spared and not lines["ana@example.com"].spared
    assert lines["bo@example.com"].now_fees == lines["bo@example.com"].proposed_fees == 0
    assert what_if.now.fees == NO_SHOW + LATE + NO_SHOW and what_if.proposed.fees == LATE
    assert what_if.proposed.waived == 2 * NO_SHOW
    # Two weeks from the Monday before: nothing in the first, the whole story in the second.
    assert [week.isoformat() for week in what_if.weeks] == ["2026-02-23", "2026-03-02"]
    assert what_if.now_weekly == (0, NO_SHOW + LATE + NO_SHOW) and what_if.proposed_weekly == (0, LATE)
    assert what_if.now_policies == ("late_cancel", "no_show")
    assert what_if.proposed_policies == ("late_cancel", "no_show", "first_offense_grace")


def test_the_page_shows_the_totals_each_client_and_who_is_spared(ledger_file):
    settings, now, proposed = simulations(ledger_file)
    page = Page(what_if_page(settings, Renderer("en", "Europe/Oslo"), now, proposed))
    rows = {row[0]: row[1:] for row in page.rows if row}
    assert rows["Fees charged"] == [nok(2 * NO_SHOW + LATE), nok(LATE)]
    assert rows["Fees waived"] == [nok(0), nok(2 * NO_SHOW)]
    assert rows["ana@example.com"] == [nok(NO_SHOW + LATE), f"{nok(LATE)} | {nok(NO_SHOW)} waived"]
    assert rows["cy@example.com"] == [nok(NO_SHOW), f"{nok(0)} | {nok(NO_SHOW)} waived"]
    assert f"cy@example.com: {nok(NO_SHOW)} now" in page.items
    assert not [item for item in page.items if item.startswith("ana@")], "Ana is charged under both: neither list"
    assert "Nobody." in page_text(settings, now, proposed), "nobody is charged under the proposed set that is not now"
    assert len(page.svgs) == 3
    titles = [ET.fromstring(svg).find("{http://www.w3.org/2000/svg}title").text for svg in page.svgs]
    assert all(titles) and titles[1].startswith("The fees each client would pay")


def page_text(settings, now, proposed):
    return what_if_page(settings, Renderer(settings.practice.locale, "Europe/Oslo"), now, proposed)


def test_the_page_is_written_in_the_practices_language_and_direction(ledger_file):
    settings, now, proposed = simulations(ledger_file, locale="he")
    html = page_text(settings, now, proposed)
    page = Page(html)
    assert 'lang="he"' in page.html_tag and 'dir="rtl"' in page.html_tag
    assert "סך הכול" in page.headings and "Fees charged" not in html
    assert "<bdi>" in html, "left-to-right runs isolated, as in the emails"
    # The SVG is left alone by the isolation: it still parses, its stylesheet unbroken.
    for svg in page.svgs:
        root = ET.fromstring(svg)
        assert "<bdi>" not in (root.find("{http://www.w3.org/2000/svg}defs/{http://www.w3.org/2000/svg}style").text or "")
    settings, now, proposed = simulations(ledger_file, locale="de")
    assert "Erlassene Gebühren" in page_text(settings, now, proposed)
