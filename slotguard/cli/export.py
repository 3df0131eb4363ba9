"""`main.py export`: the money of a period for the accountant (see slotguard/cli/main.py, EXTRA_COMMANDS).

`register(add, commands)`: `add(name, handler, help, now=False)` adds a subcommand that takes
--config and returns its parser.

- `export --from DATE --to DATE [--format csv] [--out FILE [--force]]`: every fee, deposit
  and prepayment asked, payment received, refund and write-off whose date falls in the
  period (days in the practice's time zone, both included), as CSV with the columns of
  slotguard/reports/export.py (docs/commands.md, `export`). Without --out the CSV goes to
  standard output; with it, to FILE, 0600 (it names clients), an existing file only with
  --force. Reads the ledger only; works beside the daemon. Exit 2 for bad dates or no ledger.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from slotguard.cli.common import day_or_time, load_settings
from slotguard.domain.durations import DurationError
from slotguard.reports.export import csv_text, money_rows
from slotguard.store.backend import exists, place
from slotguard.store.ledger import Ledger
from slotguard.store.private_files import OutputRefused, write_out

FORMATS = ("csv",)


def register(add, commands) -> None:
    export = add("export", cmd_export, "the money of a period for the accountant: fees, payments, refunds and write-offs as CSV")
    export.add_argument("--from", dest="start", required=True, metavar="DATE", help="first day (YYYY-MM-DD, practice time) or an ISO 8601 time with offset")
    export.add_argument("--to", dest="end", required=True, metavar="DATE", help="last day, included (YYYY-MM-DD), or an ISO 8601 time with offset (excluded)")
    export.add_argument("--format", choices=FORMATS, default="csv", help="csv (the only one so far; the default)")
    export.add_argument("--out", metavar="FILE", help="write to this file, readable only by you (default: standard output); an existing file only with --force")
    export.add_argument("--force", action="store_true", help="with --out: replace the file if it exists")



def cmd_export(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    try:
        start = day_or_time(args.start, settings.zone)
        end = day_or_time(args.end, settings.zone, end=True)
    except DurationError as error:
        print(f"export: {error}", file=sys.stderr)
        return 2
    if start >= end:
        print("export: --from must be before --to", file=sys.stderr)
        return 2
    where = place(settings.storage.location, settings.storage.schema_name)
    if not exists(where):
        print(f"export: no ledger at {where.shown}: run `main.py run` first", file=sys.stderr)
        return 2
    ledger = Ledger(settings.storage.location, settings.storage.schema_name)
    try:
        rows = money_rows(ledger, start, end)
    finally:
        ledger.close()
    text = csv_text(rows, settings.zone)
    if not args.out:
        sys.stdout.write(text)
        return 0
    try:
        write_out(args.out, text, force=args.force, protected=[settings.storage.ledger_path])
    except OutputRefused as error:
        print(f"export: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} (readable only by you): {len(rows)} row(s) from {start:%Y-%m-%d} to {(end - timedelta(seconds=1)):%Y-%m-%d}")
    return 0
