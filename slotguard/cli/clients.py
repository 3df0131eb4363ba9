"""`main.py client export|forget EMAIL`: a client's requests under the GDPR (docs/privacy.md).

- `client export EMAIL [--out FILE.json] [--force]`: everything held about the client
  (slotguard/privacy/client_export.py), written as FILE.json and FILE.html beside it (the
  page they read, in their language), both 0600. Only reads; runs beside the daemon.
- `client forget EMAIL [--yes] [--asked-by WHO]`: without --yes, says what would be waived,
  erased and cleaned, and changes nothing (exit 1). With --yes, in this order, each step
  stopping the command (exit 1, nothing erased) when it cannot finish: open fees are waived
  as `main.py waive` does, the refunds and releases that plans are carried out now (with
  the client's refund notice), the Stripe customer is deleted, the outbox and the files
  under the data folder are cleaned (slotguard/privacy/client_files.py), the ledger is
  erased (slotguard/privacy/client_forget.py) and rewritten. Running it again after a
  stop picks up where it stopped. It carries out money actions, so, like `charge-now`, it
  holds the data folder's lock and refuses while `run` holds it: stop the daemon first.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from slotguard.cli.common import load_settings, money_text, now_from
from slotguard.config.schema import Settings
from slotguard.domain.interfaces import AdapterError
from slotguard.domain.model import OPEN_STATES, Action, ActionKind, ActionState
from slotguard.domain.tick_report import TickReport
from slotguard.planning.quiet import AT_ONCE
from slotguard.planning.waivers import waive_by_hand
from slotguard.policies.loading import load_enabled
from slotguard.privacy.client_export import export_client, summary_html
from slotguard.privacy.client_files import clean_files
from slotguard.privacy.client_forget import WAIVE_REASON, client_actions, compact, erase_client, outstanding, secure_delete
from slotguard.privacy.client_records import ClientFound, find_client
from slotguard.privacy.pseudonyms import new_pseudonym
from slotguard.run.wiring import build_engine, make_renderer
from slotguard.store.daemon_lock import exclusive
from slotguard.store.ledger import Ledger
from slotguard.store.private_files import write_out


def register(add: Any, commands: Any) -> None:
    client = add("client", cmd_client, "a client's request under the GDPR: `export` their data, or `forget` them", now=True)
    requests = client.add_subparsers(dest="client_request", required=True, metavar="REQUEST")
    export = requests.add_parser("export", help="write everything held about a client: FILE.json and FILE.html (their language)")
    export.add_argument("email", help="the client's email address (any case)")
    export.add_argument("--out", default="client-export.json", help="the JSON file (default client-export.json); the page is written beside it as .html")
    export.add_argument("--force", action="store_true", help="replace the files if they exist")
    forget = requests.add_parser("forget", help="erase a client's personal data (keeps money records under a pseudonym)")
    forget.add_argument("email", help="the client's email address (any case)")
    forget.add_argument("--yes", action="store_true", help="do it (without: only say what would be done)")
    forget.add_argument("--asked-by", default="", help="who ran the command, for the record (default: your user name)")
    for sub in (export, forget):  # also accepted after the request, without overriding what came before it
        sub.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("--now", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def cmd_client(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    now = now_from(args.now)
    if args.client_request == "export":
        return _export(args, settings, now)
    return _forget(args, settings, now)


def _export(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    ledger = Ledger(settings.storage.location, settings.storage.schema_name)
    client = find_client(ledger, args.email, settings)
    policies = load_enabled(settings)
    renderer = make_renderer(settings, policies, check=False)
    data = export_client(settings, ledger, client, now, renderer=renderer, policies=policies)
    out = Path(args.out)
    page = out.with_suffix(".html")
    protected = [] if ledger.place.postgres else [settings.storage.location]
    write_out(out, json.dumps(data, indent=2, ensure_ascii=False) + "\n", force=args.force, protected=protected)
    write_out(page, summary_html(settings, renderer, data), force=args.force, protected=protected)
    if not client.known and not data["emails"]:
        print(f"nothing is held about {client.address}; {out} and {page} say so")
        return 0
    print(f"{client.address}: {len(data['appointments'])} appointment(s), {len(data['money'])} fee and payment record(s), "
          f"{len(data['emails'])} email(s), {len(data['marks_read'])} calendar reading(s); written to {out} and {page} (0600)")
    return 0


def _describe(settings: Settings, action: Action) -> str:
    start = action.appointment_start.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M") if action.appointment_start else ""
    return f"{action.id} ({action.kind.value} of {money_text(action, settings)}, {action.state.value}{', ' + start if start else ''})"


def _forget(args: argparse.Namespace, settings: Settings, now: datetime) -> int:
    if not args.yes:
        ledger = Ledger(settings.storage.location, settings.storage.schema_name)
        return _preview(settings, ledger, find_client(ledger, args.email, settings), now)
    with exclusive(settings.storage.data_dir, settings.storage.location, settings.storage.schema_name):
        engine = build_engine(settings, now=now, check_templates=False)
        return forget_now(settings, engine, args.email, now, args.asked_by or getpass.getuser(), config_path=args.config)


def _preview(settings: Settings, ledger: Ledger, client: ClientFound, now: datetime) -> int:
    money = outstanding(ledger, client, now) if client.known else None
    files = clean_files(settings, client, "client-…", dry_run=True)
    if not client.known and not files.deleted and not files.rewritten:
        print(f"nothing is held about {client.address} in the ledger or the files; a Stripe customer of that address "
              "is deleted with --yes")
        return 1
    print(f"{client.address} would be forgotten (nothing is changed without --yes):")
    if money and money.unknown:
        for action in money.unknown:
            print(f"  cannot yet: whether {_describe(settings, action)} took money is not known; `main.py run --once` asks again")
    for action in money.failed if money else []:
        print(f"  cannot yet: {_describe(settings, action)} failed ({action.last_error or 'no reason recorded'}); "
              f"`main.py retry {action.id}` once the cause is fixed, then forget again")
    for action in money.to_waive if money else []:
        print(f"  fee waived first: {_describe(settings, action)}")
    for action in money.to_carry_out if money else []:
        print(f"  carried out first: {_describe(settings, action)}")
    actions = client_actions(ledger, client) if client.known else []
    print(f"  ledger: {len(actions)} action(s) kept under a pseudonym with their amounts only, appointments and "
          "calendar readings pseudonymised, open emails cancelled")
    print(f"  files: {len(files.deleted)} message(s) to the client deleted, {len(files.rewritten)} file(s) cleaned of their "
          "address and name")
    print("  Stripe: the customer is deleted (payment records stay at Stripe)" if settings.payments.provider == "stripe"
          else "  payments: record-only, nothing to ask a provider")
    print("  calendar: their events (and new instances of their recurring series) are no longer read, even when "
          "changed; take the client off them in the calendar afterwards")
    print("add --yes to do it")
    return 1


def _settle_money(settings: Settings, engine: Any, client: ClientFound, now: datetime) -> bool:
    """Waive open fees, then carry out the refunds and releases; False (said why) when some
    money is not settled yet."""
    ledger = engine.ledger
    money = outstanding(ledger, client, now)
    if money.unknown:
        for action in money.unknown:
            print(f"{_describe(settings, action)}: whether it took money is not known yet; run `main.py run --once` "
                  "(it asks the provider), then forget again. Nothing was erased.", file=sys.stderr)
        return False
    if money.failed:
        for action in money.failed:
            print(f"{_describe(settings, action)}: failed ({action.last_error or 'no reason recorded'}), so the money is still "
                  f"held; `main.py retry {action.id}` once the cause is fixed, then forget again (it carries the "
                  "retried one out). Nothing was erased.", file=sys.stderr)
        return False
    for fee in money.to_waive:
        with ledger.transaction():  # the same path as `main.py waive`
            done = waive_by_hand(ledger, fee, WAIVE_REASON, now, note=False)
            if not done.problem:
                ledger.queue_write_back(fee.calendar_id, fee.event_id, now)
        if done.problem or done.waiting:
            print(f"{fee.id}: {done.problem or 'its outcome is not known yet'}; nothing was erased", file=sys.stderr)
            return False
        print(f"{_describe(settings, fee)}: waived")
    report = TickReport()
    due = [action for action in client_actions(ledger, client) if action.state in OPEN_STATES and (
        action.kind in (ActionKind.REFUND, ActionKind.RELEASE) or action.template == "refund_notice")]
    due.sort(key=lambda action: action.kind is ActionKind.EMAIL)  # the money first, then the notice saying so
    for action in due:
        action.due_at = now
        action.context[AT_ONCE] = True
        if ledger.update_action(action, now, "carried out before the client is forgotten", expect=OPEN_STATES):
            engine.execute(ledger.action(action.id), now, report)
        final = ledger.action(action.id)
        if final.kind is not ActionKind.EMAIL and final.state is not ActionState.DONE:
            print(f"{_describe(settings, final)}: not carried out ({final.last_error or final.state.value}); fix the cause and "
                  "forget again. Nothing was erased.", file=sys.stderr)
            return False
        print(f"{_describe(settings, final)}: carried out")
    engine.write_back(report, now)
    return True


def forget_now(settings: Settings, engine: Any, address: str, now: datetime, asked_by: str, *, config_path: str = "") -> int:
    """`client forget ADDRESS --yes` with `engine` (slotguard/run/engine.py, built by the
    caller, who holds the data folder's lock): 0 when the client is forgotten, 1 when a step
    could not finish (said on stderr; nothing erased)."""
    ledger = engine.ledger
    client = find_client(ledger, address, settings)
    if client.known and not _settle_money(settings, engine, client, now):
        return 1
    counted: dict[str, int] = {}
    pseudonym = new_pseudonym()
    customers = getattr(engine.provider, "customers", None)
    if customers is not None and hasattr(customers, "forget_customer"):
        references = [action.external_id for action in client_actions(ledger, client)] if client.known else []
        try:
            counted["stripe_payments_retagged"], refused = customers.retag_payments(references, pseudonym)
            if hasattr(customers, "retag_customer_intents"):  # what the ledger does not name: card setups, link payments
                more, refused_too = customers.retag_customer_intents(client.address, pseudonym)
                counted["stripe_payments_retagged"] += more
                refused += refused_too
            deleted, untouched = customers.forget_customer(client.address)
        except AdapterError as error:
            print(f"Stripe: {error}; nothing was erased, try again", file=sys.stderr)
            return 1
        counted["stripe_customers_deleted"] = len(deleted)
        if refused:
            print(f"Stripe: {len(refused)} payment(s) or refund(s) took no new tag and still name the address in their metadata: "
                  f"{', '.join(refused)}")
        if untouched:
            print(f"Stripe: {len(untouched)} customer(s) with that address were not made by Slotguard and are left alone: "
                  f"{', '.join(untouched)}")
    files = clean_files(settings, client, pseudonym)
    counted.update(files.counts())
    secure_delete(ledger)
    counts = erase_client(ledger, client, pseudonym, now, asked_by, counted)
    trouble = compact(ledger)
    print(f"{client.address} forgotten; money records kept as {pseudonym} with amounts only")
    print("  " + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in counts.items()))
    for path in files.not_read:
        print(f"  not searched (not text): {path}")
    if trouble:
        print(f"  the ledger could not be rewritten now ({trouble}): erased rows may stay in its free space until "
              "`client forget` runs again or the ledger is vacuumed", file=sys.stderr)
    config_text = Path(config_path).read_text(encoding="utf-8", errors="replace").lower() if config_path and Path(config_path).is_file() else ""
    if client.address in config_text:
        print(f"  {config_path} names {client.address} (e.g. mail.client_locales, payments.policy_known_by): remove it there")
    print(f"  the calendar's events still name {client.address}: take the client off them (or delete them), and end "
          "their recurring series. Slotguard no longer reads those events, even when you change them, nor new "
          "instances of those series: to book someone in such a slot, make a new event")
    return 0
