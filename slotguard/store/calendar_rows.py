"""The ledger's rows about calendars: meta values, sync state, problems (events that could
not be read) and status notes still to be written onto events. Part of `Ledger`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.store.backend import Connection
from slotguard.store.rows import optional_utc_text


class CalendarRows:
    """Ledger methods for the meta, sync_state, problems and pending_writes tables."""

    db: Connection

    # -- meta -----------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- sync state -----------------------------------------------------------------------
    def sync_token(self, calendar_id: str) -> str | None:
        row = self.db.execute("SELECT sync_token FROM sync_state WHERE calendar_id = ?", (calendar_id,)).fetchone()
        return row["sync_token"] if row else None

    def has_synced(self, calendar_id: str) -> bool:
        """True once a sync of the calendar has been completed: its first look is over."""
        row = self.db.execute("SELECT last_sync_at FROM sync_state WHERE calendar_id = ?", (calendar_id,)).fetchone()
        return bool(row and row["last_sync_at"])

    def record_sync(self, calendar_id: str, token: str | None, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO sync_state (calendar_id, sync_token, last_sync_at, last_error) VALUES (?, ?, ?, '') "
            "ON CONFLICT (calendar_id) DO UPDATE SET sync_token = excluded.sync_token, "
            "last_sync_at = excluded.last_sync_at, last_error = ''",
            (calendar_id, token, optional_utc_text(at)),
        )

    def record_sync_error(self, calendar_id: str, message: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO sync_state (calendar_id, last_error, last_error_at) VALUES (?, ?, ?) "
            "ON CONFLICT (calendar_id) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at",
            (calendar_id, message, optional_utc_text(at)),
        )

    def clear_sync_token(self, calendar_id: str) -> None:
        self.db.execute("UPDATE sync_state SET sync_token = NULL WHERE calendar_id = ?", (calendar_id,))

    def sync_states(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.db.execute("SELECT * FROM sync_state ORDER BY calendar_id")]

    # -- problems -------------------------------------------------------------------------
    def record_problem(self, calendar_id: str, item: str, message: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO problems (calendar_id, item, message, first_at, last_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (calendar_id, item) DO UPDATE SET message = excluded.message, last_at = excluded.last_at",
            (calendar_id, item, message, optional_utc_text(at), optional_utc_text(at)),
        )

    def clear_problem(self, calendar_id: str, item: str) -> None:
        self.db.execute("DELETE FROM problems WHERE calendar_id = ? AND item = ?", (calendar_id, item))

    def problem_items(self, calendar_id: str) -> set[str]:
        """The items (event ids) of a calendar that have a problem recorded."""
        rows = self.db.execute("SELECT item FROM problems WHERE calendar_id = ?", (calendar_id,))
        return {row["item"] for row in rows}

    def problems(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.db.execute("SELECT * FROM problems ORDER BY last_at DESC")]

    # -- calendar write-backs still to be written ------------------------------------------
    def queue_write_back(self, calendar_id: str, event_id: str, due: datetime, error: str = "") -> None:
        """Remember that the event's status note must be (re)written at `due` or later. With
        `error` it is a failed attempt (counted); without, a request (say, from `waive`)."""
        failed = 1 if error else 0
        self.db.execute(
            "INSERT INTO pending_writes (calendar_id, event_id, due_at, attempts, last_error, since) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (calendar_id, event_id) DO UPDATE SET "
            "due_at = excluded.due_at, attempts = pending_writes.attempts + excluded.attempts, "
            "last_error = CASE WHEN excluded.attempts > 0 THEN excluded.last_error ELSE pending_writes.last_error END",
            (calendar_id, event_id, optional_utc_text(due), failed, error, optional_utc_text(due)),
        )

    def write_back_done(self, calendar_id: str, event_id: str) -> None:
        self.db.execute("DELETE FROM pending_writes WHERE calendar_id = ? AND event_id = ?", (calendar_id, event_id))

    def write_backs_due(self, now: datetime) -> list[tuple[str, str, int]]:
        """(calendar_id, event_id, failed attempts) of the status notes due to be written."""
        rows = self.db.execute(
            "SELECT calendar_id, event_id, attempts FROM pending_writes WHERE due_at <= ? ORDER BY due_at", (optional_utc_text(now),)
        )
        return [(row["calendar_id"], row["event_id"], row["attempts"]) for row in rows]

    def pending_write_backs(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.db.execute("SELECT * FROM pending_writes ORDER BY since, calendar_id, event_id")]
