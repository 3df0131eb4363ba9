#!/usr/bin/env python3
"""Take docs/report.png: the monthly report of November 2026 for a generated year of a practice.

Writes a year of appointments, fees, waivers, reminders and waitlist offers into a scratch
ledger (tests/support/report_year.py; the fee policies noted as enabled since January, the
first-offence grace since June), renders the report page as `main.py report --out` does, and
photographs it with the test suite's headless Chromium (tests/support/browser.py).
Usage: python tools/report_screenshot.py [OUT.png] [--width 600] [--locale en]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slotguard.mail.context import practitioner_context  # noqa: E402 (after the path: the script runs from anywhere)
from slotguard.mail.messages import Renderer  # noqa: E402
from slotguard.reports.monthly import build_report  # noqa: E402
from slotguard.reports.page import html_page  # noqa: E402
from slotguard.reports.people import record_enabled  # noqa: E402
from slotguard.store.ledger import Ledger  # noqa: E402
from tests.support.browser import Browser, require_chromium  # noqa: E402
from tests.support.builders import settings  # noqa: E402
from tests.support.report_year import generate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(ROOT / "docs" / "report.png"))
    parser.add_argument("--width", type=int, default=600)
    parser.add_argument("--locale", default="en")
    args = parser.parse_args()
    ledger = Ledger.scratch()
    generate(ledger, end=date(2026, 12, 1), months=12, per_day=3, seed=3)
    record_enabled(ledger, ["late_cancel", "no_show"], datetime(2026, 1, 5, tzinfo=UTC))
    record_enabled(ledger, ["late_cancel", "no_show", "first_offense_grace"], datetime(2026, 6, 1, tzinfo=UTC))
    config = settings(practice={"locale": args.locale}, policies={"enabled": ["late_cancel", "no_show", "first_offense_grace"]})
    report = build_report(config, ledger, date(2026, 11, 1), datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("Europe/Oslo")))
    html = html_page(Renderer(args.locale, "Europe/Oslo"), report, practitioner_context(config, {}, args.locale), args.locale)
    browser = Browser(require_chromium())
    try:
        with tempfile.TemporaryDirectory() as folder:
            page_file = Path(folder) / "report.html"
            page_file.write_text(html)
            with browser.open(page_file, width=args.width) as page:
                page.screenshot(args.out)
    finally:
        browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
