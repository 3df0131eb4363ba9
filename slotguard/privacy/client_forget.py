"""`client forget`: what stands in the way, and erasing one client from the ledger.

Before anything is erased, the client's money must be settled (`outstanding`): open fees are
waived through the same rules as `main.py waive` (slotguard/planning/waivers.py
`waive_by_hand`: a fee not yet taken is waived, a request to pay is withdrawn, a card hold is
released, a deposit or prepayment for a session still ahead is given back, never more than
is left), and the refunds and releases that plans are carried out at once by the command.
Money held for the client is judged as retention judges open money
(slotguard/privacy/retention.py): any deposit, prepayment or credit taken and not used up or
given back, whichever event it sits on (a rolling deposit sits on the session attended, for
the next one). Money whose outcome is not known yet (a charge left `executing`, a lost
answer) stops the command, and so does a refund or release of theirs that failed and that
no later one replaced: nothing is erased until it is known, or retried and done, or waived
by hand.

`erase_client` then changes the ledger in one transaction:
- the client's address becomes a new pseudonym (slotguard/privacy/pseudonyms.py) in every
  row about them (appointments, happenings, actions), their name is emptied; money actions
  keep their kind, amounts, times and provider ids, which the bookkeeping law asks for;
- their appointment snapshots lose the title, place and meeting link; an appointment still
  open is frozen (outcome `forgotten`), so time alone plans nothing more for it; every one of
  their appointments loses its fingerprint (a digest over the address: with the event's times
  known, a list of candidate addresses could be hashed and compared) for FORGOTTEN_FINGERPRINT,
  which marks the event id forgotten for good: the engine never reads it again, changed or
  not (`forgotten_event`), so no edit brings the client back; and each recurring series they
  had is recorded (meta `forgotten_series:CALENDAR/SERIES`), so its future instances, entering
  the window, are not read either;
- their open actions (reminders, emails not sent) are cancelled, and so are their emails left
  `executing` or `failed`, so that no recovery or `retry` sends one to the pseudonym;
- every other text in the ledger (a digest's details, action reasons and logs, sync
  errors, meta values) loses their address and names, replaced by the pseudonym; problems and
  meta entries naming them are deleted;
- one row in `erasures` says when, who ran it, the pseudonym and the counts; no address.

`compact` then rewrites the SQLite file (VACUUM, and the write-ahead log truncated) or the
PostgreSQL tables (VACUUM FULL), so the old rows do not linger in free pages.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from dataclasses import replace as replaced
from datetime import datetime

from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import MONEY_KINDS, OPEN_STATES, OUTCOME_UNKNOWN, Action, ActionKind, ActionState, Client
from slotguard.domain.payment_status import OWED
from slotguard.policies.account import SETTLES, TARGET, purpose_of
from slotguard.privacy.client_records import ClientFound, mentions, placeholders, replacer, scrub_text
from slotguard.privacy.retention import FUNDS, NO_MONEY_HELD, Uses
from slotguard.store.ledger import Ledger, LedgerError
from slotguard.store.rows import appointment_from_json, appointment_to_json
from slotguard.store.schema import TABLES

# The outcome of an appointment that was open when its client was forgotten: frozen.
FORGOTTEN = "forgotten"
# The fingerprint of every appointment of a forgotten client: the event id is never read again.
FORGOTTEN_FINGERPRINT = "forgotten"
FORGOTTEN_SERIES = "forgotten_series:"  # meta key prefix: CALENDAR/SERIES, the value when
WAIVE_REASON = "the client asked to be forgotten"
CANCEL_NOTE = "cancelled: the client asked to be forgotten"
FEE_KINDS = (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE, ActionKind.CREDIT)
TAKING = (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE)
GIVE_BACKS = (ActionKind.REFUND, ActionKind.RELEASE)
FUND_KINDS = (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CREDIT)
STOPPED_EMAIL = (ActionState.EXECUTING, ActionState.FAILED)
# Text columns that may hold a client's address or name, by table, with the key of a row.
TEXT_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "meta": (("key",), ("value",)),
    "sync_state": (("calendar_id",), ("last_error",)),
    "appointments": (("calendar_id", "event_id"), ("snapshot",)),
    "happenings": (("seq",), ("key", "detail")),
    "actions": (("seq",), ("reason", "context", "last_error", "happening_key")),
    "action_log": (("seq",), ("note",)),
    "pending_writes": (("calendar_id", "event_id"), ("last_error",)),
}
# Tables that hold no client's text: only counts, pseudonyms and times. A new table goes in
# one of these three (tests/unit/privacy/test_client_records_and_files.py checks it).
NO_CLIENT_TEXT = ("erasures",)
# Tables whose rows are deleted when their key names the client (a problem about their event,
# the record of their card-setup pages).
DELETED_WHEN_NAMED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "problems": (("calendar_id", "item"), ("calendar_id", "item", "message")),
    "meta": (("key",), ("key",)),
    # What the inbox read from them or about their appointments (docs/inbox.md).
    "inbox_mail": (("message_key",), ("message_key", "sender")),
    "email_signals": (("calendar_id", "event_id", "start_utc", "kind"), ("client_email",)),
}


@dataclass
class Outstanding:
    """The client's money before they can be forgotten: fees and funds to waive (open, asked
    for and unpaid, held, or money held for the client: a deposit, prepayment or credit
    taken and not used up or given back, whichever event it sits on), refunds and releases
    to carry out, and what stops the command: money whose outcome is not known, and refunds
    or releases that failed (no later one replaces them) until they are retried and done or
    waived by hand."""

    to_waive: list[Action] = field(default_factory=list)
    to_carry_out: list[Action] = field(default_factory=list)
    unknown: list[Action] = field(default_factory=list)
    failed: list[Action] = field(default_factory=list)


def client_actions(ledger: Ledger, client: ClientFound) -> list[Action]:
    """Every action about the client, in the order they were planned."""
    found = [action for spelling in client.spellings for action in ledger.actions(client_email=spelling)]
    return sorted(found, key=lambda action: (action.created_at, action.id))


def _settled(action: Action, actions: list[Action]) -> bool:
    """A hold or a payment ahead that a live release, refund, capture or use already ends."""
    live = (*OPEN_STATES, ActionState.DONE, ActionState.EXECUTING)
    return any(other.state in live and (other.context.get(TARGET) == action.id or other.context.get(SETTLES) == action.id)
               for other in actions if other.id != action.id)


def _replaced(failed: Action, actions: list[Action]) -> bool:
    """A refund or release that failed, given back since by a later live one of the same money."""
    live = (*OPEN_STATES, ActionState.DONE, ActionState.EXECUTING)
    target = failed.context.get(TARGET)
    return bool(target) and any(
        other.kind is failed.kind and other.state in live and other.context.get(TARGET) == target
        and (other.created_at, other.id) > (failed.created_at, failed.id) for other in actions)


def outstanding(ledger: Ledger, client: ClientFound, now: datetime) -> Outstanding:
    """What must happen to the client's money before they are forgotten (see Outstanding)."""
    actions = client_actions(ledger, client)
    uses = Uses.of((other.state, other.context) for other in actions)
    found = Outstanding()
    for action in actions:
        status = action.context.get("payment_status")
        if action.kind in MONEY_KINDS and (action.state is ActionState.EXECUTING or (
                action.context.get(OUTCOME_UNKNOWN) and action.state in (*OPEN_STATES, ActionState.FAILED))):
            found.unknown.append(action)
        elif action.kind in (ActionKind.REFUND, ActionKind.RELEASE) and action.state in OPEN_STATES:
            found.to_carry_out.append(action)
        elif action.kind in GIVE_BACKS and action.state is ActionState.FAILED and not _replaced(action, actions):
            found.failed.append(action)
        elif action.kind not in FEE_KINDS:
            continue
        elif action.state in OPEN_STATES or (action.state is ActionState.FAILED and action.kind in TAKING):
            found.to_waive.append(action)
        elif action.state is ActionState.DONE and status in OWED:
            found.to_waive.append(action)
        elif action.state is ActionState.DONE and action.kind is ActionKind.HOLD and not _settled(action, actions):
            found.to_waive.append(action)
        elif (action.state is ActionState.DONE and action.kind in FUND_KINDS and purpose_of(action.kind, action.context) in FUNDS
              and status not in NO_MONEY_HELD and action.id not in uses.settled and action.id not in uses.targeted):
            # Money held for the client (retention.py's open money): e.g. a rolling deposit
            # paid at the session attended for the next one, a package's credit.
            found.to_waive.append(action)
    return found


def series_key(calendar_id: str, series_id: str) -> str:
    return f"{FORGOTTEN_SERIES}{calendar_id}/{series_id}"


def forgotten_event(ledger: Ledger, calendar_id: str, known: tuple[str, bool] | None, series_id: str) -> bool:
    """True for an event of a forgotten client: one the ledger knows with FORGOTTEN_FINGERPRINT
    (`known`: its (fingerprint, open)), or one it does not know that is an instance of a
    recurring series of a forgotten client. Such an event is not read at all."""
    if known:
        return known[0] == FORGOTTEN_FINGERPRINT
    return bool(series_id) and ledger.meta(series_key(calendar_id, series_id)) is not None


def _freeze_appointments(ledger: Ledger, client: ClientFound, pseudonym: str, replace: Callable[[str], str], now: datetime) -> int:
    spellings = list(client.spellings)
    rows = ledger.db.execute(
        f"SELECT calendar_id, event_id, outcome, cancellation, snapshot FROM appointments WHERE client_email IN ({placeholders(spellings)})",
        spellings).fetchall()
    for row in rows:
        appointment = appointment_from_json(row["snapshot"])
        stripped = replaced(appointment, client=Client(email=pseudonym, name=""), title="", location="", meeting_link="",
                            booking=replace(appointment.booking))
        outcome = row["outcome"] or ("" if row["cancellation"] else FORGOTTEN)
        ledger.db.execute(
            "UPDATE appointments SET client_email = ?, snapshot = ?, outcome = ?, fingerprint = ? WHERE calendar_id = ? AND event_id = ?",
            (pseudonym, appointment_to_json(stripped), outcome, FORGOTTEN_FINGERPRINT, row["calendar_id"], row["event_id"]))
        if appointment.series_id:
            ledger.set_meta(series_key(row["calendar_id"], appointment.series_id), to_utc_text(now))
    return len(rows)


def _scrub_tables(ledger: Ledger, replace: Callable[[str], str], named: Callable[[str], bool]) -> Counter[str]:
    """Every text column of every table, with the client's address and names replaced;
    rows of DELETED_WHEN_NAMED naming them deleted. Returns counts by table."""
    counts: Counter[str] = Counter()
    for table, (row_key, named_in) in DELETED_WHEN_NAMED.items():
        for row in ledger.db.execute(f"SELECT {', '.join(dict.fromkeys((*row_key, *named_in)))} FROM {table}").fetchall():
            if any(named(str(row[column] or "")) for column in named_in):
                where = " AND ".join(f"{name} = ?" for name in row_key)
                ledger.db.execute(f"DELETE FROM {table} WHERE {where}", tuple(row[name] for name in row_key))
                counts[f"{table}_deleted"] += 1
    for table, (key, columns) in TEXT_COLUMNS.items():
        for row in ledger.db.execute(f"SELECT {', '.join((*key, *columns))} FROM {table}").fetchall():
            changes = {}
            for column in columns:
                text = row[column]
                if text and (named(text) or (text.lstrip().startswith(("{", "[")) and "\\u" in text)):
                    cleaned = scrub_text(text, replace)
                    if cleaned != text:
                        changes[column] = cleaned
            if changes:
                sets = ", ".join(f"{column} = ?" for column in changes)
                where = " AND ".join(f"{name} = ?" for name in key)
                ledger.db.execute(f"UPDATE {table} SET {sets} WHERE {where}", (*changes.values(), *(row[name] for name in key)))
                counts[f"{table}_texts"] += 1
    return counts


def erase_client(ledger: Ledger, client: ClientFound, pseudonym: str, now: datetime, asked_by: str,
                 counted: dict[str, int] | None = None) -> dict[str, int]:
    """Erase `client` from `ledger` (see the module's docstring), in one transaction, and
    record it in `erasures` with `counted` (what was done outside the ledger) added. Returns
    the counts recorded. Call `outstanding` first: this cancels whatever money is still open."""
    counts: Counter[str] = Counter(counted or {})
    replace = replacer(client.needles(), pseudonym)
    named = mentions(client.needles())
    spellings = list(client.spellings)
    with ledger.transaction():
        if spellings:
            for action in client_actions(ledger, client):
                # Open, or an email a crash left executing or one that failed: never to be
                # sent to the pseudonym by a restart's recovery or by `retry`.
                if action.state in OPEN_STATES or (action.kind is ActionKind.EMAIL and action.state in STOPPED_EMAIL):
                    expected = {action.state}
                    action.state = ActionState.CANCELLED
                    if ledger.update_action(action, now, CANCEL_NOTE, expect=expected):
                        counts["actions_cancelled"] += 1
            counts["appointments"] = _freeze_appointments(ledger, client, pseudonym, replace, now)
            marks = placeholders(spellings)
            counts["happenings"] = ledger.db.execute(
                f"UPDATE happenings SET client_email = ? WHERE client_email IN ({marks})", (pseudonym, *spellings)).rowcount
            counts["actions"] = ledger.db.execute(
                f"UPDATE actions SET client_email = ?, client_name = '' WHERE client_email IN ({marks})", (pseudonym, *spellings)).rowcount
        counts.update(_scrub_tables(ledger, replace, named))
        recorded = {key: value for key, value in sorted(counts.items()) if value}
        ledger.db.execute("INSERT INTO erasures (at, asked_by, pseudonym, erased) VALUES (?, ?, ?, ?)",
                          (to_utc_text(now), asked_by, pseudonym, json.dumps(recorded, separators=(",", ":"))))
    return recorded


def erasures(ledger: Ledger) -> list[dict[str, object]]:
    """Every `client forget` recorded, oldest first: at, asked_by, pseudonym, erased (counts)."""
    rows = ledger.db.execute("SELECT at, asked_by, pseudonym, erased FROM erasures ORDER BY seq").fetchall()
    return [{**dict(row), "erased": json.loads(row["erased"])} for row in rows]


def compact(ledger: Ledger) -> str:
    """Rewrite the ledger so erased rows leave no copy in free pages or the write-ahead log.
    Returns "" when done, else why not (another program reading the ledger at that moment)."""
    try:
        if ledger.place.postgres:
            for table in TABLES:
                ledger.db.execute(f"VACUUM FULL {table}")
        else:
            ledger.db.execute("VACUUM")
            ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except LedgerError as error:
        return str(error)
    return ""


def secure_delete(ledger: Ledger) -> None:
    """On SQLite, have deleted and overwritten content zeroed on disk from now on (this connection)."""
    if not ledger.place.postgres:
        ledger.db.execute("PRAGMA secure_delete = ON")
