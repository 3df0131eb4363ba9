"""The monthly report as a person sees it, in a real headless Chromium (tests/support/browser.py):
the HTML page `main.py report --out` writes and the monthly email's HTML (its cid: images
resolved from the message's own parts). Every image loads, nothing overflows a 390 px phone
screen, every chart has its alt text, in English and in Hebrew (right to left)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.mail.context import practitioner_context
from slotguard.mail.messages import Renderer
from slotguard.reports.mailing import report_action_id
from slotguard.reports.monthly import build_report
from slotguard.reports.page import html_page
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.browser import DESKTOP, PHONE
from tests.support.builders import settings
from tests.support.report_year import generate

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=OSLO)  # Tuesday 1 December: November's report goes


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    ledger = Ledger(tmp_path_factory.mktemp("year") / "ledger.sqlite3")
    generate(ledger, end=date(2026, 12, 1), months=12, per_day=3, seed=3)
    yield ledger
    ledger.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("locale", ["en", "he"])
def test_the_report_page_reads_on_a_phone(browser, year, tmp_path, locale):
    config = settings(practice={"locale": locale}, policies={"enabled": ["late_cancel", "no_show", "first_offense_grace"]})
    report = build_report(config, year, date(2026, 11, 1), NOW)
    page_file = tmp_path / "report.html"
    page_file.write_text(html_page(Renderer(locale, "Europe/Oslo"), report, practitioner_context(config, {}, locale), locale))
    with browser.open(page_file, width=PHONE) as page:
        assert page.broken_images() == []
        assert not page.overflows(), page.overflowing_elements()
        sizes = page.svg_sizes()
        assert len(sizes) == 4 and all(0 < width <= PHONE for width, _ in sizes), sizes
        names = page.evaluate("Array.from(document.querySelectorAll('svg')).filter(s => !s.parentElement.closest('svg')).map(s => (s.querySelector('title') || {}).textContent || '')")
        assert all(len(name) > 40 for name in names), names
        assert page.evaluate("document.documentElement.dir") == ("rtl" if locale == "he" else "ltr")
        page.screenshot(tmp_path / f"report-{locale}-phone.png")
    with browser.open(page_file, width=DESKTOP) as page:
        assert not page.overflows(), page.overflowing_elements()


@pytest.mark.timeout(300)
def test_the_monthly_email_reads_on_a_phone_with_its_charts_loaded(browser, year, tmp_path):
    config = settings(practice={"locale": "nb"}, mail={"monthly_report": True})
    mailer = MemoryMailer()
    engine = build_engine(config, NOW, ledger=year, calendars=[(MemoryCalendar("primary"), NullWriteBack())],
                          provider=RecordOnlyProvider(), mailer=mailer)
    engine.tick(NOW)
    message = mailer.sent[report_action_id("2026-11")]
    with browser.open_email(message, width=PHONE) as page:
        images = page.images()
        assert len(images) == 4, images
        assert page.broken_images() == [] and page.all_images_loaded()
        assert all(image.alt and len(image.alt) > 40 for image in images), "alt text on every chart"
        assert all(image.natural_width >= 1000 for image in images), "sharp on a phone: drawn at twice the shown width"
        assert not page.overflows(), page.overflowing_elements()
        width = page.evaluate("Math.max(...Array.from(document.images).map(i => i.getBoundingClientRect().width))")
        assert 0 < width <= PHONE
        page.screenshot(tmp_path / "email-phone.png")
