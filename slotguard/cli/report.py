"""`main.py report [--month 2026-11] [--out report.html] [--force]`: the monthly report (see
slotguard/reports/; slotguard/cli/main.py, EXTRA_COMMANDS).

Without --out, the report's text (the monthly email's plain part) is printed. With --out, the
report is written as one HTML page, charts inline as SVG, readable only by you (0600: it names
clients); an existing file is replaced only with --force. The month defaults to the one before
the current (the one the monthly email reports on); --now sets what "current" means, and the
time "still open" is read at. Only reads the ledger.
"""

from __future__ import annotations

import argparse
import sys

from slotguard.cli.common import load_settings, now_from
from slotguard.mail.context import practitioner_context
from slotguard.mail.messages import Renderer
from slotguard.reports.monthly import build_report
from slotguard.reports.months import parse_month, previous_first
from slotguard.reports.page import TEMPLATE, details, html_page, wording
from slotguard.store.ledger import Ledger
from slotguard.store.private_files import write_out


def register(add, commands) -> None:
    report = add("report", cmd_report, "the monthly report: attendance, fees, what came back, clients to talk to (HTML with --out)",
                 now=True)
    report.add_argument("--month", help="the month to report, YYYY-MM (default: the month before the current one)")
    report.add_argument("--out", help="write the report as an HTML page with charts to this file (0600)")
    report.add_argument("--force", action="store_true", help="replace --out if it exists")
    report.set_defaults(report_parser=report)


def cmd_report(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    now = now_from(args.now)
    try:
        month = parse_month(args.month) if args.month else previous_first(now.astimezone(settings.zone).date().replace(day=1))
    except ValueError as error:
        args.report_parser.error(str(error))
    renderer = Renderer(settings.practice.locale, settings.practice.timezone, settings.mail.templates_dir or None)
    locale = renderer.pick_locale(TEMPLATE, settings.practice.locale)
    ledger = Ledger(settings.storage.location, settings.storage.schema_name)
    try:
        report = build_report(settings, ledger, month, now)
    finally:
        ledger.close()
    context = practitioner_context(settings, {}, locale)
    if args.out:
        html = html_page(renderer, report, context, locale)
        write_out(args.out, html, force=args.force, protected=[settings.storage.ledger_path])
        print(f"wrote {args.out} (readable only by you: it names clients); open it in a browser")
        return 0
    context["details"].update(details(report, wording(renderer, locale), []))
    sys.stdout.write(renderer.render(TEMPLATE, context, locale).text)
    return 0
