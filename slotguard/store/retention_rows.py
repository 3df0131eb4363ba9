"""The ledger's SQL for keeping only what is needed (docs/privacy.md): the migration that takes
event titles out of stored snapshots, and what retention (slotguard/privacy/retention.py)
reads and deletes. Functions of a ledger connection (`Ledger.db`); the caller holds the
transaction. Both engines: SQLite's dialect, translated by slotguard/store/backend.py.

An appointment, its happenings and its actions are one unit here, by (calendar id, event id):
retention decides per unit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.model import Action
from slotguard.store.action_rows import ActionRows
from slotguard.store.backend import Connection

CHUNK = 500  # ids per IN (...) list
PERSONAL_PREFIXES = ("card_terms:", "card_terms_lookup:")  # meta keys named by a client's address


def strip_titles(db: Connection) -> None:
    """Migration 4: event titles out of every stored snapshot ("" in their place). Open
    appointments lose their fingerprint and every calendar its last full listing, so the
    next tick reads each again in full and stores what is kept of its title now (the words
    policies look for, slotguard/policies/title_words.py)."""
    after = ("", "")
    while True:
        rows = db.execute(
            "SELECT calendar_id, event_id, snapshot FROM appointments WHERE (calendar_id, event_id) > (?, ?) "
            "ORDER BY calendar_id, event_id LIMIT 1000",
            after,
        ).fetchall()
        if not rows:
            break
        for row in rows:
            data = json.loads(row["snapshot"])
            if data.get("title"):
                data["title"] = ""
                db.execute(
                    "UPDATE appointments SET snapshot = ? WHERE calendar_id = ? AND event_id = ?",
                    (json.dumps(data, separators=(",", ":")), row["calendar_id"], row["event_id"]),
                )
        after = (rows[-1]["calendar_id"], rows[-1]["event_id"])
    db.execute("UPDATE appointments SET fingerprint = '' WHERE outcome = '' AND cancellation = ''")
    db.execute("DELETE FROM meta WHERE key LIKE ?", ("full_sync:%",))


@dataclass(frozen=True)
class IdleUnit:
    """An appointment unit with no activity since a moment: `last` its latest activity (start,
    happening seen, action changed); `personal` whether it still holds more than
    pseudonymised money records (a snapshot, a happening, an email, an address or a name)."""

    calendar_id: str
    event_id: str
    last: datetime
    personal: bool


def idle_units(db: Connection, before: datetime) -> list[IdleUnit]:
    """Every unit whose latest activity is before `before`."""
    rows = db.execute(
        "SELECT calendar_id, event_id, MAX(at) AS last, MAX(personal) AS personal FROM ("
        " SELECT calendar_id, event_id, start_utc AS at, 1 AS personal FROM appointments"
        " UNION ALL SELECT calendar_id, event_id, seen_at AS at, 1 AS personal FROM happenings"
        " UNION ALL SELECT calendar_id, event_id, updated_at AS at,"
        "  CASE WHEN kind = 'email' OR client_email LIKE ? OR client_name != '' THEN 1 ELSE 0 END AS personal FROM actions"
        ") AS activity GROUP BY calendar_id, event_id HAVING MAX(at) < ?",
        ("%@%", to_utc_text(before)),
    )
    return [IdleUnit(row["calendar_id"], row["event_id"], from_utc_text(row["last"]), bool(row["personal"])) for row in rows]


def unit_actions(db: Connection, units: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[Action]]:
    """The actions of each unit, in the order they were planned."""
    wanted = set(units)
    found: dict[tuple[str, str], list[Action]] = {unit: [] for unit in units}
    event_ids = sorted({event_id for _, event_id in units})
    for index in range(0, len(event_ids), CHUNK):
        chunk = event_ids[index:index + CHUNK]
        rows = db.execute(f"SELECT * FROM actions WHERE event_id IN ({','.join('?' * len(chunk))}) ORDER BY seq", chunk)
        for row in rows:
            unit = (row["calendar_id"], row["event_id"])
            if unit in wanted:
                found[unit].append(ActionRows._action(row))
    return found


def references(db: Connection) -> list[tuple[str, dict[str, Any]]]:
    """(state, context) of every action whose context names another action (`settles`,
    `target_action_id`): what uses up a deposit or credit, captures or releases a hold."""
    rows = db.execute("SELECT state, context FROM actions WHERE context LIKE ? OR context LIKE ?",
                      ('%"settles"%', '%"target_action_id"%'))
    return [(row["state"], json.loads(row["context"])) for row in rows]


def units_with_clients(db: Connection, units: Sequence[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """Every client address a unit's rows name (appointments, happenings, actions)."""
    found: dict[tuple[str, str], set[str]] = {unit: set() for unit in units}
    for table in ("appointments", "happenings", "actions"):
        for unit in units:
            for row in db.execute(f"SELECT DISTINCT client_email FROM {table} WHERE calendar_id = ? AND event_id = ?", unit):
                found[unit].add(row["client_email"])
    return found


def delete_unit_records(db: Connection, unit: tuple[str, str]) -> tuple[int, int]:
    """Delete a unit's snapshot, happenings, queued calendar note and problem; return
    (appointments deleted, happenings deleted)."""
    appointments = db.execute("DELETE FROM appointments WHERE calendar_id = ? AND event_id = ?", unit).rowcount
    happenings = db.execute("DELETE FROM happenings WHERE calendar_id = ? AND event_id = ?", unit).rowcount
    db.execute("DELETE FROM pending_writes WHERE calendar_id = ? AND event_id = ?", unit)
    db.execute("DELETE FROM problems WHERE calendar_id = ? AND item = ?", unit)
    return appointments, happenings


def delete_actions(db: Connection, ids: Iterable[str]) -> int:
    """Delete these actions and their logs; return how many actions."""
    ids = list(ids)
    deleted = 0
    for index in range(0, len(ids), CHUNK):
        chunk = ids[index:index + CHUNK]
        marks = ",".join("?" * len(chunk))
        db.execute(f"DELETE FROM action_log WHERE action_id IN ({marks})", chunk)
        deleted += db.execute(f"DELETE FROM actions WHERE id IN ({marks})", chunk).rowcount
    return deleted


def rewrite_action(db: Connection, action: Action) -> None:
    """Store an action's client, reason, last error, happening key and context as they are now
    (retention's pseudonymised copy; nothing else of it changes)."""
    db.execute(
        "UPDATE actions SET client_email = ?, client_name = ?, reason = ?, last_error = ?, happening_key = ?, context = ? "
        "WHERE id = ?",
        (action.client_email, action.client_name, action.reason, action.last_error, action.happening_key,
         json.dumps(action.context, default=str, separators=(",", ":")), action.id),
    )


def log_notes(db: Connection, action_id: str) -> list[tuple[int, str]]:
    """(seq, note) of an action's log entries."""
    return [(row["seq"], row["note"]) for row in db.execute("SELECT seq, note FROM action_log WHERE action_id = ?", (action_id,))]


def set_log_note(db: Connection, seq: int, note: str) -> None:
    db.execute("UPDATE action_log SET note = ? WHERE seq = ?", (note, seq))


def series_still_booked(db: Connection, client_email: str, series_id: str) -> bool:
    """True while the ledger keeps an appointment of this client in this recurring series
    (its booking confirmation is what keeps the series from being confirmed again)."""
    pattern = f'%"series_id":{json.dumps(series_id)}%'
    return db.execute("SELECT 1 FROM appointments WHERE client_email = ? AND snapshot LIKE ? LIMIT 1",
                      (client_email, pattern)).fetchone() is not None


def client_still_named(db: Connection, email: str) -> bool:
    """True while a row of the ledger still names the client by address."""
    return any(
        db.execute(f"SELECT 1 FROM {table} WHERE client_email = ? LIMIT 1", (email,)).fetchone() is not None
        for table in ("appointments", "happenings", "actions")
    )


def forget_client_meta(db: Connection, email: str) -> int:
    """Delete the meta entries kept under a client's address (card terms seen, when they
    were last looked up); return how many."""
    key = email.strip().lower()
    return sum(db.execute("DELETE FROM meta WHERE key = ?", (prefix + key,)).rowcount for prefix in PERSONAL_PREFIXES)


def delete_problems_before(db: Connection, before: datetime) -> int:
    """Delete problems last seen before `before` (they quote an event's title); return how many."""
    return db.execute("DELETE FROM problems WHERE last_at < ?", (to_utc_text(before),)).rowcount
