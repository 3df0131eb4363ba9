#!/usr/bin/env python3
"""Benchmark of the monthly report on a large practice.

Writes a practice with N appointments (default 100,000, over 24 months ending with the
reported month) into a file-backed SQLite ledger in a temporary folder, with the happenings,
fees, waivers, reminders and waitlist offers Slotguard stores for them
(tests/support/report_year.py), then times, three times each:

  figures   the report's figures: twelve months of counts, waivers, clients to talk to
            (slotguard/reports/monthly.py `build_report`; target under 2 s);
  page      the HTML page with its four charts as SVG (`main.py report --out`);
  email     the email's details with its four charts as PNG (palette images), and the size of
            the whole message as sent (target under 150 KB).

Only numbers are printed; nothing is asserted.

Usage: .venv/bin/python bench/bench_report.py [--appointments 100000] [--months 24] [--postgresql URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slotguard.mail.context import practitioner_context  # noqa: E402
from slotguard.mail.messages import Renderer, build_email  # noqa: E402
from slotguard.reports.monthly import build_report  # noqa: E402
from slotguard.reports.page import email_parts, html_page  # noqa: E402
from slotguard.store.ledger import Ledger  # noqa: E402
from tests.support.builders import settings as make_settings  # noqa: E402
from tests.support.report_year import generate  # noqa: E402

ZONE = ZoneInfo("Europe/Oslo")
MONTH = date(2026, 11, 1)
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=ZONE)


def best_of(runs: int, work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--postgresql", metavar="URL", help="a PostgreSQL server to hold the ledger instead of SQLite")
    args = parser.parse_args()
    settings = make_settings(practice={"locale": "nb"}, policies={"enabled": ["late_cancel", "no_show", "first_offense_grace", "loyal_client"]})
    with tempfile.TemporaryDirectory() as folder:
        schema = f"bench_report_{uuid.uuid4().hex[:8]}" if args.postgresql else None
        ledger = Ledger(args.postgresql or Path(folder) / "ledger.sqlite3", schema)
        try:
            started = time.perf_counter()
            truth = generate(ledger, end=date(2026, 12, 1), months=args.months, per_day=args.appointments / (args.months * 30.44))
            rows = {table: ledger.db.execute(f"SELECT COUNT(*) AS n FROM {table}").fetchone()["n"] for table in ("appointments", "happenings", "actions")}
            print(f"practice: {truth.appointments} appointments over {args.months} months ("
                  f"{rows['happenings']} happenings, {rows['actions']} actions), written in {time.perf_counter() - started:.1f} s "
                  f"({'PostgreSQL' if args.postgresql else 'SQLite'})")
            seconds, report = best_of(3, lambda: build_report(settings, ledger, MONTH, NOW))
            print(f"figures: {seconds:.3f} s  (best of 3; target under 2 s)  booked in {MONTH:%Y-%m}: {report.this.booked}")
            renderer = Renderer("nb", "Europe/Oslo")
            seconds, page = best_of(3, lambda: html_page(renderer, report, practitioner_context(settings, {}, "nb"), "nb"))
            print(f"page: {seconds:.3f} s  (HTML with 4 SVG charts, {len(page) // 1024} KB)")
            seconds, parts = best_of(3, lambda: email_parts(renderer, report, "nb", "act_bench"))
            print(f"email: {seconds:.3f} s  (4 PNG charts, {sum(len(part.data) for part in parts[1]) // 1024} KB)")
            print(f"email size: {email_size(renderer, settings, *parts) // 1024} KB as sent (target under 150 KB)")
        finally:
            if args.postgresql and schema:
                ledger.db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            ledger.close()
    return 0


def email_size(renderer, settings, details, parts) -> int:
    """Bytes of the monthly email as the mailer sends it: text, HTML and the charts (base64)."""
    context = practitioner_context(settings, details, "nb")
    rendered = renderer.render("monthly_report", context, "nb")
    message = build_email(rendered, sender_name="Slotguard", sender_email="lena@example.com", reply_to="lena@example.com",
                            to_name="Lena", to_email="lena@example.com", message_id="<bench@slotguard>", date=NOW,
                            attachments=parts)
    return len(message.as_bytes())


if __name__ == "__main__":
    sys.exit(main())
