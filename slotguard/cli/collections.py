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
from slotguard.collections.receipts import direct_payment_receipt
from slotguard.collections.views import PARTS, collections_view, debt_row, payable
from slotguard.config.schema import Settings
from slotguard.domain.model import OWED, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.domain.payment_status import PaymentStatus
from slotguard.domain.plan import Plan
from slotguard.mail.messages import Renderer
from slotguard.payments.paid import is_owed, record_paid
from slotguard.policies.loading import load_enabled
from slotguard.practitioner.evidence import EvidenceError, evidence_html
from slotguard.store.apply import Store
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


def _where(row: dict[str, Any], settings: Settings) -> str:
    if not settings.collections.enabled:
        return "collections are off ([collections] steps)"
    if row["state"] == "referred":
        return "every reminder sent: refer it or let it go (evidence in `main.py evidence`)"
    if row["state"] == "plan":
        return f"payment plan, {row['plan_paid']} of {row['plan_of']} paid"
    if row["step"] >= row["steps"]:
        return "every reminder sent"
    step = f"step {row['step']} of {row['steps']} done" if row["step"] else "no reminder yet"
    if row["next_at"]:
        step += f", next {row['next_at'].astimezone(settings.zone):%Y-%m-%d}"
    return step


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
                  f"{row['since'].astimezone(settings.zone):%Y-%m-%d}; {_where(row, settings)}")
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
    action = ledger.action(args.action_id)
    if action is None or action.kind is not ActionKind.CHARGE:
        print(f"no fee with id {args.action_id}; see `main.py balance` or `main.py ledger`", file=sys.stderr)
        return 1
    if action.policy != COLLECTIONS:
        # A fee the ladder asks for in parts (an offer, an installment, the rest): the payment
        # is that part, as for a client paying through a link.
        action = payable(ledger.actions(calendar_id=action.calendar_id, event_id=action.event_id), args.part or "") or action
    note = "paid to the practitioner directly" + (f": {args.note}" if args.note else "") + " (main.py mark-paid)"
    receipt = None
    with ledger.transaction():  # read under the write lock: the daemon may be changing it
        paid = ledger.action(action.id)
        if paid is None or paid.kind is not ActionKind.CHARGE or not is_owed(paid) or not record_paid(ledger, paid, now, note):
            paid = None
        else:  # the next tick rewrites the event's status note, and sends the receipt
            ledger.queue_write_back(paid.calendar_id, paid.event_id, now)
            receipt = direct_payment_receipt(paid, ledger.actions(calendar_id=paid.calendar_id, event_id=paid.event_id), now)
            if receipt is not None:
                Store(ledger).apply(Plan(actions=(receipt,)), now=now)
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


# -- for `main.py status` -------------------------------------------------------------------


def status_section(ledger: Ledger, settings: Settings, now: datetime, done: list) -> tuple[list, list[dict[str, Any]], list[str]]:
    """For `status`: (done charges with the ladder's requests folded into their fee and
    partly paid fees at what is still owed, the per-client balances as JSON, printable lines)."""

    done, rows = collections_view(ledger, settings, now, done)
    where = {row["id"]: _where(row, settings) for row in rows}
    owed: dict[str, dict[str, Any]] = {}
    for action in done:
        if status(action) not in OWED or action.amount is None:
            continue
        entry = owed.setdefault(action.client_email, {"client": action.client_email, "name": action.client_name, "owed": 0, "fees": []})
        entry["owed"] += action.amount.minor
        entry["fees"].append({"id": action.id, "amount": action.amount.as_json(), "collections": where.get(action.id, "")})
    balances = sorted(owed.values(), key=lambda entry: (-entry["owed"], entry["client"]))
    lines = []
    for entry in balances:
        amount = Money(entry["owed"], settings.practice.currency)
        notes = "; ".join(f"{fee['id']}: {fee['collections']}" for fee in entry["fees"] if fee["collections"])
        lines.append(f"  {entry['client']:<28} {money_text(amount, settings):>14}  ({len(entry['fees'])} fee(s){'; ' + notes if notes else ''})")
        entry["owed"] = amount.as_json()
    return done, balances, lines
