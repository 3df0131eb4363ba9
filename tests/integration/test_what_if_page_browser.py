"""The what-if page in each of the bundled languages, opened in the real headless Chromium at
a phone's width: right to left in Hebrew, its three charts drawn, nothing wider than the phone."""

from __future__ import annotations

import pytest

from slotguard.mail.render import Renderer
from slotguard.what_if.page import what_if_page
from tests.support.browser import PHONE
from tests.unit.what_if.test_policy_simulate import week_in_a_ledger
from tests.unit.what_if.test_what_if_page import simulations

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ledger_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("what-if-browser") / "ledger.sqlite3"
    week_in_a_ledger(str(path))
    return path


@pytest.mark.parametrize("locale", ["he", "de", "pl"])
def test_the_page_fits_a_phone_in_every_language(browser, ledger_file, locale):
    settings, now, proposed = simulations(ledger_file, locale=locale)
    html = what_if_page(settings, Renderer(locale, "Europe/Oslo"), now, proposed)
    with browser.open_html(html, width=PHONE) as page:
        assert page.evaluate("getComputedStyle(document.documentElement).direction") == ("rtl" if locale == "he" else "ltr")
        sizes = page.svg_sizes()
        assert len(sizes) == 3 and all(100 < width <= PHONE and height > 100 for width, height in sizes), sizes
        assert not page.overflows(), page.overflowing_elements()
        client_cells = page.evaluate("Array.from(document.querySelectorAll('tbody tr td:first-child')).map(td => td.getBoundingClientRect().width)")
        assert min(client_cells) >= 80, "labels and addresses keep a readable column"
