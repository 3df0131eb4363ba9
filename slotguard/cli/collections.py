"""Commands for unpaid fees (see slotguard/cli/main.py, EXTRA_COMMANDS).

`register(add, commands)`: `add(name, handler, help, now=False)` adds a subcommand that takes
--config (and --now when asked) and returns its parser; `commands` is argparse's subparsers
object for commands that take no config.

- `balance [CLIENT] [--json]`: per client, what was charged and paid, credits, refunds,
  write-offs, and what is still owed (each open fee with where the ladder is);
- `evidence ACTION_ID [--out FILE.html]`: the printable record of a fee (slotguard/practitioner/evidence.py);
- `mark-paid ACTION_ID [--note TEXT]`: the client paid you directly (record-only), so the
  receivable (or an installment, a settlement, the rest) is paid and the ladder stops.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slotguard.cli.common import load_settings, money_text, now_from
from slotguard.collections.debts import COLLECTIONS, Decision, status
from slotguard.collections.ladder import debts
from slotguard.collections.paid_by_hand import mark_paid
from slotguard.collections.views import PARTS, debt_row
from slotguard.config.schema import Settings
from slotguard.domain.model import ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.domain.payment_status import PaymentStatus
from slotguard.mail.messages import Renderer
from slotguard.policies.loading import load_enabled
from slotguard.practitioner.evidence import EvidenceError, evidence_html
from slotguard.run.status_view import collections_where
from slotguard.store.ledger import Ledger
from slotguard.store.private_files import write_out


def register(add, commands) -> None:
    balance = add("balance", cmd_balance, "what each client owes: fees charged and paid, credits, refunds, write-offs", now=True)
    balance.add_argument("client", nargs="?", help="one client's email address (default: every client with money actions)")
    balance.add_argument("--json", action="store_true")
    evidence = add("evidence", cmd_evidence, "a printable HTML record of a fee, for a dispute or a conversation", now=True)
    evidence.add_argument("action_id", help="the fee (or any action about it)")
    evidence.add_argument("--out", help="write the HTML to this file, readable only by you (default: print it); an existing file only with --force")
    evidence.add_argument("--force", action="store_true", help="with --out: replace the file if it exists")
    paid = add("mark-paid", cmd_mark_paid, "record that a client paid a fee (or an installment, a settlement) to you directly", now=True)
    paid.add_argument("action_id", help="the fee, or the installment / settlement / rest the client paid")
    paid.add_argument("--note", default="", help="how it was paid (kept in the ledger)")
    paid.add_argument("--part", choices=PARTS, help="for a fee the ladder asks in parts: what was paid (default: the open "
                      "settlement offer, else the next installment, else the rest, else the whole fee)")


# -- balances ------------------------------------------------------------------------------


@dataclass
class ClientBalance:
    client: str
    name: str
    currency: str
    charged: int = 0
    paid: int = 0
    credits: int = 0
    refunds: int = 0
    written_off: int = 0
    owed: int = 0
    debts: list[dict[str, Any]] = field(default_factory=list)

    def money(self, minor: int) -> Money:
        return Money(minor, self.currency)

    def as_json(self) -> dict[str, Any]:
        amounts = {key: self.money(getattr(self, key)).as_json() for key in ("charged", "paid", "credits", "refunds", "written_off", "owed")}
        return {"client": self.client, "name": self.name, **amounts, "debts": [_row_json(row) for row in self.debts]}


def _row_json(row: dict[str, Any]) -> dict[str, Any]:
    return {key: (value.as_json() if isinstance(value, Money) else value.isoformat() if isinstance(value, datetime) else value)
            for key, value in row.items()}


def client_balances(ledger: Ledger, settings: Settings, now: datetime, client: str | None = None) -> list[ClientBalance]:
    """Every client's money with the practice (or one client's), by email address.

    charged: fees, deposits and prepayments carried out (asked of the client); paid: of that,
    and of the ladder's installments and settlements, what was paid; credits: money paid
    earlier applied (a deposit kept for a fee); refunds: money given back or receivables
    cancelled; written_off: let go (small amounts, settlements, the ladder's last step);
    owed: what is still to be paid, from the open debts.
    """
    kinds = [ActionKind.CHARGE, ActionKind.CAPTURE, ActionKind.CREDIT, ActionKind.REFUND, ActionKind.WRITEOFF]
    found: dict[str, ClientBalance] = {}

    def of(email: str, name: str) -> ClientBalance:
        key = email.lower()
        if key not in found:
            found[key] = ClientBalance(client=email, name=name or email, currency=settings.practice.currency)
        elif name and found[key].name == found[key].client:
            found[key].name = name
        return found[key]

    actions = ledger.actions(kinds=kinds, states=[ActionState.DONE], client_email=client)
    for action in actions:
        if action.amount is None or action.context.get("dry_run"):
            continue
        entry = of(action.client_email, action.client_name)
        minor = action.amount.minor
        if action.kind in (ActionKind.CHARGE, ActionKind.CAPTURE):
            if action.policy != COLLECTIONS:
                entry.charged += minor
            if status(action) == PaymentStatus.PAID or (action.kind is ActionKind.CAPTURE and not status(action)):
                entry.paid += minor
        elif action.kind is ActionKind.CREDIT:
            entry.credits += minor
        elif action.kind is ActionKind.REFUND:
            entry.refunds += minor
        elif action.kind is ActionKind.WRITEOFF:
            entry.written_off += minor
    decisions: list[Decision] = debts(ledger, settings, now, everything=True)
    for decision in decisions:
        fee = decision.fee
        if client is not None and fee.client_email != client:
            continue
        if decision.open and decision.balance.minor > 0:
            entry = of(fee.client_email, fee.client_name)
            entry.owed += decision.balance.minor
            entry.debts.append(debt_row(decision, settings))
    return sorted(found.values(), key=lambda entry: (-entry.owed, entry.client))


def cmd_balance(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    ledger = Ledger(settings.storage.location, settings.storage.schema_name)
    balances = client_balances(ledger, settings, now_from(args.now), args.client)
    if args.client and not balances:
        print(f"no money actions for {args.client}; see `main.py ledger`", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"clients": [entry.as_json() for entry in balances]}, indent=2))
        return 0
    for entry in balances:
        print(f"{entry.name} <{entry.client}>" if entry.name != entry.client else entry.client)
        shown = {key: money_text(entry.money(getattr(entry, key)), settings) for key in ("charged", "paid", "credits", "refunds", "written_off", "owed")}
        print(f"  charged {shown['charged']} · paid {shown['paid']} · credits {shown['credits']} · "
              f"refunds {shown['refunds']} · written off {shown['written_off']} · owes {shown['owed']}")
        for row in entry.debts:
            start = row["appointment_start"].astimezone(settings.zone).strftime("%Y-%m-%d") if row["appointment_start"] else ""
            balance, amount = money_text(row["balance"], settings), money_text(row["amount"], settings)
            still = f"{balance} of {amount}" if row["balance"] != row["amount"] else balance
            print(f"  {row['id']}  {row['policy']} fee for {start}: {still} owed since "
                  f"{row['since'].astimezone(settings.zone):%Y-%m-%d}; {collections_where(row, settings)}")
    total = sum(entry.owed for entry in balances)
    print(f"{len(balances)} client(s); owed in total: {money_text(Money(total, settings.practice.currency), settings)}")
    return 0


# -- evidence ------------------------------------------------------------------------------


def cmd_evidence(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    ledger = Ledger(settings.storage.location, settings.storage.schema_name)
    renderer = Renderer(settings.practice.locale, settings.practice.timezone, settings.mail.templates_dir or None)
    try:
        html = evidence_html(settings, load_enabled(settings), renderer, ledger, args.action_id, now_from(args.now))
    except EvidenceError as error:
        print(str(error), file=sys.stderr)
        return 1
    if args.out:

        write_out(args.out, html, force=args.force, protected=[settings.storage.ledger_path])
        print(f"wrote {args.out} (readable only by you); open it in a browser and print it")
    else:
        sys.stdout.write(html)
    return 0


# -- mark-paid ----------------------------------------------------------------------------


def cmd_mark_paid(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    ledger = Ledger(settings.storage.location, settings.storage.schema_name)
    now = now_from(args.now)
    note = "paid to the practitioner directly" + (f": {args.note}" if args.note else "") + " (main.py mark-paid)"
    done = mark_paid(ledger, args.action_id, note, now, args.part or "")
    if done.action is None:
        print(f"no fee with id {args.action_id}; see `main.py balance` or `main.py ledger`", file=sys.stderr)
        return 1
    action, paid, receipt = done.action, done.paid, done.receipt
    if paid is None:
        print(f"{action.id}: nothing is owed on it ({action.state.value}, {status(action) or 'no payment status'})", file=sys.stderr)
        return 1
    role = paid.context.get("role") if paid.policy == COLLECTIONS else "fee"
    what = {"installment": f"installment {paid.context.get('installment')} of {paid.context.get('of')}",
            "settlement": "the settlement offered", "rest": "the rest of the fee", "retry": "the fee"}.get(str(role), "the whole fee")
    print(f"{paid.id}: {money_text(paid.amount, settings)} ({what}) recorded as paid; "
          + (f"the client gets a receipt by email at the next tick ({receipt.id})." if receipt is not None
             else "the ladder takes it into account at the next tick"
             + (" and sends a receipt when nothing more is owed." if paid.policy == COLLECTIONS else "; no receipt for a deposit or prepayment."))
          + ("" if role == "fee" else " If the client paid something else, see --part."))
    return 0
