"""The accountant's export (`main.py export --from DATE --to DATE --format csv`): every fee,
deposit and prepayment asked, payment received, refund and write-off of a period, one row
each, from the ledger.

Given the ledger, the period and the practice's zone, `money_rows` returns the rows (dated in
the practice's zone, oldest first) and `csv_text` writes them as CSV with the columns of
COLUMNS (documented in docs/commands.md, `export`). Amounts are decimal strings in the
currency's major units, made from the ledger's integer minor units by the currency's exponent
(`45000` NOK is `450.00`, `4500` JPY is `4500`): never a float. Text from calendars and
clients (names, addresses, reasons) is one line, and a cell that a spreadsheet would take
for a formula (starting with = + - @, a tab or a carriage return) is neutralised with a
leading apostrophe, as OWASP advises for CSV injection.

What each ledger action becomes (only actions carried out, `done`; dry runs are left out):
- a charge or capture for a fee, a deposit or a prepayment: a `fee`, `deposit` or `prepayment`
  row (a captured deposit applied to the session price: `deposit_applied`) when it was asked
  (its `payment_status` says whether it is paid, owed through a link, or receivable
  directly), and a `payment` row when the client paid it: at once from a saved card or a
  captured hold, or later (the time of the ledger's "paid ..." log entry: a link paid, a
  webhook, `main.py mark-paid`);
- a collections charge (an installment, a settlement offer, the rest of a debt) is a request
  for a fee already exported: only its `payment` row, with `fee_id` the fee it collects;
- a credit that keeps a deposit or prepayment for a fee: a `fee` row, paid from that money
  (`payment_status` `paid_from_deposit` or `paid_from_prepayment`), with no second payment
  row; other credits only move money already paid (a deposit carried over, applied to the
  session price) and are not rows;
- a refund: a `refund` row (money given back), or `withdrawn` when nothing had been paid and
  the request was withdrawn (no money moved);
- a write-off: a `writeoff` row.
Holds, releases of holds and waivers move no money and are not rows.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from slotguard.domain.durations import from_utc_text
from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.domain.money import Money, exponent
from slotguard.domain.payment_status import PaymentStatus
from slotguard.domain.plan import COLLECTS
from slotguard.domain.untrusted import one_line
from slotguard.policies.account import DEPOSIT, FEE, TARGET, purpose_of
from slotguard.store.ledger import Ledger

COLUMNS = (
    "date", "time", "type", "client_email", "client_name", "amount", "currency", "payment_status",
    "appointment_date", "policy", "fee_id", "ledger_id", "stripe_id", "note",
)
COLLECTIONS = "collections"  # the policy of every collections action (slotguard/collections/debts.py)
TEXT_LIMIT = 200
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_STRIPE_ID = re.compile(r"^(pi|ch|py|re|pyr|in|seti|cs)_[A-Za-z0-9]+$")
_KINDS = (ActionKind.CHARGE, ActionKind.CAPTURE, ActionKind.CREDIT, ActionKind.REFUND, ActionKind.WRITEOFF)


@dataclass(frozen=True)
class MoneyRow:
    """One line of the export. `at` is when the money moved or was asked; `fee_id` the fee
    (or deposit) the row is about: the row's own id for a fee, the charge paid for a payment."""

    at: datetime
    type: str
    client_email: str
    client_name: str
    amount: Money
    payment_status: str
    appointment_start: datetime | None
    policy: str
    fee_id: str
    ledger_id: str
    stripe_id: str
    note: str


def amount_text(amount: Money) -> str:
    """`amount` in major units as a decimal string with the currency's decimals ("450.00",
    "4500" for JPY, "1.500" for KWD), exact: from the integer minor units, never a float."""
    places = exponent(amount.currency)
    value = amount.to_decimal()
    return f"{value:.{places}f}"


def money_rows(ledger: Ledger, start: datetime, end: datetime) -> list[MoneyRow]:
    """The rows of the money that moved or was asked in [start, end), oldest first."""
    rows: list[MoneyRow] = []
    for action in ledger.actions(kinds=_KINDS, states=[ActionState.DONE]):
        if action.amount is None or action.context.get("dry_run") or action.executed_at is None:
            continue
        rows.extend(_rows_of(ledger, action))
    chosen = [row for row in rows if start <= row.at < end]
    order = {"payment": 1, "refund": 2, "withdrawn": 2, "writeoff": 3}  # what was asked (0) first
    return sorted(chosen, key=lambda row: (row.at, order.get(row.type, 0), row.ledger_id))


def _rows_of(ledger: Ledger, action: Action) -> Iterable[MoneyRow]:
    assert action.amount is not None and action.executed_at is not None
    status = str(action.context.get("payment_status") or "")
    stripe = action.external_id if _STRIPE_ID.match(action.external_id or "") else ""

    def row(type_: str, at: datetime, *, payment_status: str = status, fee_id: str = action.id, note: str = action.reason) -> MoneyRow:
        return MoneyRow(
            at=at,
            type=type_,
            client_email=action.client_email,
            client_name=action.client_name,
            amount=action.amount,  # type: ignore[arg-type]  # checked above
            payment_status=payment_status,
            appointment_start=action.appointment_start,
            policy=action.policy,
            fee_id=fee_id,
            ledger_id=action.id,
            stripe_id=stripe,
            note=note,
        )

    purpose = purpose_of(action.kind, action.context)
    if action.kind in (ActionKind.CHARGE, ActionKind.CAPTURE):
        if action.policy != COLLECTIONS:
            yield row(purpose or FEE, action.executed_at)
        if status == PaymentStatus.PAID or (action.kind is ActionKind.CAPTURE and not status):
            fee_id = str(action.context.get(COLLECTS) or action.reports_on or action.id) if action.policy == COLLECTIONS else action.id
            at, note = _paid_at(ledger, action)
            yield row("payment", at, payment_status=PaymentStatus.PAID, fee_id=fee_id, note=note)
    elif action.kind is ActionKind.CREDIT and purpose == FEE:
        source = ledger.action(str(action.context.get(TARGET) or ""))
        kept = purpose_of(source.kind, source.context) if source else DEPOSIT
        yield row("fee", action.executed_at, payment_status=f"paid_from_{kept}", fee_id=action.id)
    elif action.kind is ActionKind.REFUND:
        about = str(action.context.get(TARGET) or action.reports_on or action.id)
        yield row("withdrawn" if status == PaymentStatus.NOTHING_TAKEN else "refund", action.executed_at, fee_id=about)
    elif action.kind is ActionKind.WRITEOFF:
        yield row("writeoff", action.executed_at, fee_id=str(action.context.get(COLLECTS) or action.reports_on or action.id))


def _paid_at(ledger: Ledger, action: Action) -> tuple[datetime, str]:
    """When and how the client paid `action`: the first "paid ..." entry of its log after it
    was carried out (a link paid, a webhook, mark-paid), else when it was carried out (a
    saved card charged, a hold captured), with its reason."""
    assert action.executed_at is not None
    for entry in ledger.action_log(action.id):
        at = from_utc_text(entry["at"]) if isinstance(entry["at"], str) else entry["at"]
        note = str(entry.get("note") or "")
        if at >= action.executed_at and note.lower().startswith("paid"):
            return at, note
    return action.executed_at, action.reason


def safe_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: one line, and a leading = + - @ (or tab,
    carriage return) neutralised by an apostrophe, so it is never run as a formula."""
    text = one_line(text or "", TEXT_LIMIT)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_text(rows: Iterable[MoneyRow], zone: ZoneInfo) -> str:
    """The rows as CSV (comma-separated, a header line of COLUMNS, CRLF line ends as RFC 4180)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        local = row.at.astimezone(zone)
        writer.writerow([
            local.strftime("%Y-%m-%d"),
            local.strftime("%H:%M"),
            row.type,
            safe_cell(row.client_email),
            safe_cell(row.client_name),
            amount_text(row.amount),
            row.amount.currency,
            safe_cell(row.payment_status),
            row.appointment_start.astimezone(zone).strftime("%Y-%m-%d") if row.appointment_start else "",
            safe_cell(row.policy),
            safe_cell(row.fee_id),
            safe_cell(row.ledger_id),
            safe_cell(row.stripe_id),
            safe_cell(row.note),
        ])
    return out.getvalue()


__all__ = ["COLUMNS", "MoneyRow", "money_rows", "csv_text", "amount_text", "safe_cell"]
