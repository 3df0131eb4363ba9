"""What `main.py status` shows, gathered once for the command and for the practitioner's
STATUS by email (docs/inbox.md): money whose outcome is unknown, upcoming appointments, fees
pending review, receivables and balances, failed actions, problems, calendars."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slotguard.collections.debts import status
from slotguard.collections.views import collections_view
from slotguard.config.schema import Settings
from slotguard.domain.model import OWED, Action, ActionKind, ActionState
from slotguard.domain.money import Money, format_money
from slotguard.payments.unresolved import Unresolved, unresolved_money
from slotguard.store.ledger import Ledger

UPCOMING = 20


@dataclass
class StatusView:
    unresolved: list[Unresolved]
    upcoming: list[Any]  # Tracked, soonest first
    pending: list[Action]  # fees pending review
    receivables: list[Action]  # done and not paid yet (the ladder's requests folded into their fee)
    balances: list[dict[str, Any]]  # per client, most owed first (JSON)
    balance_lines: list[str]  # the same, printable
    failed: list[Action]
    problems: list[dict[str, Any]]
    calendars: list[dict[str, Any]]
    notes_to_write: list[dict[str, Any]]


def collections_where(row: dict[str, Any], settings: Settings) -> str:
    """Where a debt is on the collections ladder, in a few words."""
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


def status_section(ledger: Ledger, settings: Settings, now: datetime, done: list) -> tuple[list, list[dict[str, Any]], list[str]]:
    """(done charges with the ladder's requests folded into their fee and partly paid fees at
    what is still owed, the per-client balances as JSON, printable lines)."""
    done, rows = collections_view(ledger, settings, now, done)
    where = {row["id"]: collections_where(row, settings) for row in rows}
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
        lines.append(f"  {entry['client']:<28} {format_money(amount, settings.practice.locale):>14}  ({len(entry['fees'])} fee(s){'; ' + notes if notes else ''})")
        entry["owed"] = amount.as_json()
    return done, balances, lines


def gather_status(ledger: Ledger, settings: Settings, now: datetime) -> StatusView:
    """Everything `status` shows, read from the ledger at `now`."""
    unresolved = unresolved_money(ledger, settings.payments.provider, settings.zone)
    upcoming = ledger.upcoming(now, limit=UPCOMING)
    pending = ledger.actions(states=[ActionState.PENDING_REVIEW], kinds=[ActionKind.CHARGE, ActionKind.CAPTURE, ActionKind.CREDIT])
    done = ledger.actions(states=[ActionState.DONE], kinds=[ActionKind.CHARGE])
    done, balances, balance_lines = status_section(ledger, settings, now, done)
    receivables = [a for a in done if a.context.get("payment_status") in OWED]
    return StatusView(
        unresolved=unresolved, upcoming=upcoming, pending=pending, receivables=receivables, balances=balances,
        balance_lines=balance_lines, failed=ledger.actions(states=[ActionState.FAILED]), problems=ledger.problems(),
        calendars=ledger.sync_states(), notes_to_write=ledger.pending_write_backs(),
    )
