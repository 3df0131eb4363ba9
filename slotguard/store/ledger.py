"""The ledger: the source of truth for what Slotguard knows, decided and did.

SQLite in WAL mode; the schema is versioned and migrated on open. All SQL lives in this
module and sticks to what PostgreSQL also accepts (apart from the PRAGMAs), so another
backend can follow behind the same methods.

Tables: meta (schema version, first run), sync_state (per calendar), appointments (the last
snapshot of each event and what the tracker concluded), happenings (each once, by stable
key), actions (the outbox: stable id, state, due time, policy, reason, amount) and
action_log (every state change, for evidence and audits), problems (bad input we skipped),
pending_writes (status notes still to be written onto calendar events).
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.store.ledger_errors import GuardedConnection, LedgerError, explain
from slotguard.domain.model import (
    OWED,
    Action,
    ActionKind,
    ActionState,
    Appointment,
    Client,
    ClientHistory,
    Happening,
    HappeningKind,
    Incident,
)
from slotguard.domain.money import Money
from slotguard.intake.tracker import Tracked

SCHEMA_VERSION = 3
APPOINTMENT_FIELDS = tuple(field.name for field in fields(Appointment))

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sync_state (
        calendar_id TEXT PRIMARY KEY,
        sync_token TEXT,
        last_sync_at TEXT,
        last_error TEXT NOT NULL DEFAULT '',
        last_error_at TEXT
    );
    CREATE TABLE appointments (
        calendar_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        client_email TEXT NOT NULL,
        start_utc TEXT NOT NULL,
        status TEXT NOT NULL,
        cancellation TEXT NOT NULL,
        outcome TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        PRIMARY KEY (calendar_id, event_id)
    );
    CREATE INDEX appointments_open ON appointments (outcome, cancellation, start_utc);
    CREATE INDEX appointments_client ON appointments (client_email);
    CREATE TABLE happenings (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        calendar_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        client_email TEXT NOT NULL,
        start_utc TEXT NOT NULL,
        at TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        previous_start TEXT,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX happenings_client ON happenings (client_email);
    CREATE TABLE actions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        policy TEXT NOT NULL,
        reason TEXT NOT NULL,
        calendar_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        client_email TEXT NOT NULL,
        client_name TEXT NOT NULL DEFAULT '',
        happening_key TEXT NOT NULL,
        due_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        amount_minor INTEGER,
        currency TEXT,
        template TEXT,
        reports_on TEXT,
        appointment_start TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        external_id TEXT NOT NULL DEFAULT '',
        executed_at TEXT,
        context TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX actions_due ON actions (state, due_at);
    CREATE INDEX actions_event ON actions (calendar_id, event_id);
    CREATE INDEX actions_client ON actions (client_email);
    CREATE TABLE action_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        action_id TEXT NOT NULL,
        at TEXT NOT NULL,
        state TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX action_log_action ON action_log (action_id);
    CREATE TABLE problems (
        calendar_id TEXT NOT NULL,
        item TEXT NOT NULL,
        message TEXT NOT NULL,
        first_at TEXT NOT NULL,
        last_at TEXT NOT NULL,
        PRIMARY KEY (calendar_id, item)
    );
    """,
    # Clients whose booking carries the wants-earlier mark, found without reading every
    # future snapshot: the lookup ran once per short-notice cancellation and was a sixth of
    # a 100,000-appointment first sync. The WHERE text must match clients_wanting_earlier's.
    # The happenings of one appointment (the digest asks per fee, evidence per debt) were
    # a scan of the whole table.
    2: """
    CREATE INDEX appointments_wants_earlier ON appointments (start_utc)
        WHERE snapshot LIKE '%"wants_earlier"%';
    CREATE INDEX happenings_event ON happenings (calendar_id, event_id)
    """,
    # Status notes the calendar refused to take (a 503, the daily quota): tried again on
    # later ticks until one write succeeds or the event is gone. Also queued by commands
    # that change a fee outside a tick (`waive`, `mark-paid`), for the next tick to write.
    # Card holds by when they were placed: each tick looks for holds about to lapse (the
    # WHERE text must match holds_placed_since's).
    3: """
    CREATE TABLE pending_writes (
        calendar_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        due_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        since TEXT NOT NULL,
        PRIMARY KEY (calendar_id, event_id)
    );
    CREATE INDEX pending_writes_due ON pending_writes (due_at);
    CREATE INDEX actions_holds ON actions (executed_at) WHERE kind = 'hold'
    """,
}


def _ts(value: datetime | None) -> str | None:
    return to_utc_text(value) if value else None


def _dt(value: str | None) -> datetime | None:
    return from_utc_text(value) if value else None


def appointment_to_json(appointment: Appointment) -> str:
    # A shallow copy: dataclasses.asdict deep-copies every field and was a fifth of a tick.
    data = {name: getattr(appointment, name) for name in APPOINTMENT_FIELDS}
    data["client"] = {"email": appointment.client.email, "name": appointment.client.name}
    data["start"] = appointment.start.isoformat()
    data["end"] = appointment.end.isoformat()
    data["updated"] = appointment.updated.isoformat()
    data["cancelled_at"] = appointment.cancelled_at.isoformat() if appointment.cancelled_at else None
    data["original_start"] = appointment.original_start.isoformat() if appointment.original_start else None
    data["price"] = appointment.price.as_json()
    data["marks"] = sorted(appointment.marks)
    data["inherited_marks"] = sorted(appointment.inherited_marks)
    return json.dumps(data, separators=(",", ":"))


def appointment_from_json(text: str) -> Appointment:
    data = json.loads(text)
    data["client"] = Client(**data["client"])
    for key in ("start", "end", "updated"):
        data[key] = datetime.fromisoformat(data[key])
    for key in ("cancelled_at", "original_start"):
        data[key] = datetime.fromisoformat(data[key]) if data.get(key) else None
    data["price"] = Money(**data["price"])
    data["marks"] = frozenset(data["marks"])
    data["inherited_marks"] = frozenset(data.get("inherited_marks") or ())
    return Appointment(**data)


class Ledger:
    """The SQLite ledger. Methods that write do so inside `transaction()` or commit at once."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            from slotguard.store.private_files import private_file

            try:
                if not Path(self.path).parent.exists():
                    Path(self.path).parent.mkdir(parents=True, mode=0o700)
                # Readable by its owner only (0600), and SQLite gives the -wal and -shm files
                # the database file's mode; an older, looser ledger is tightened here.
                private_file(self.path, "-wal", "-shm")
            except OSError as error:
                raise LedgerError(f"cannot create the ledger {self.path}: {error.strerror}") from None
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, factory=GuardedConnection)
            self.db.ledger_path = self.path
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=5000")
            # 32 MB of page cache: a first sync writes to many B-trees at scattered keys.
            self.db.execute("PRAGMA cache_size=-32768")
            # Test hook: the disk is full once the ledger has this many pages (SQLITE_FULL).
            if os.environ.get("SLOTGUARD_TEST_LEDGER_MAX_PAGES"):
                self.db.execute(f"PRAGMA max_page_count = {int(os.environ['SLOTGUARD_TEST_LEDGER_MAX_PAGES'])}")
        except sqlite3.Error as error:
            raise LedgerError(f"cannot open the ledger: {explain(error, self.path)}") from None
        except LedgerError as error:
            raise LedgerError(f"cannot open the ledger: {error}") from None
        self._depth = 0
        # (client, series) pairs known to have a booking confirmation, so that a weekly
        # client's fifty instances cost one query, not fifty; emptied on a rollback, since
        # it may hold what the rolled-back transaction wrote.
        self._series_seen: set[tuple[str, str]] = set()
        self._migrate()

    def close(self) -> None:
        self.db.close()

    # -- schema ---------------------------------------------------------------------------
    def _migrate(self) -> None:
        has_meta = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        version = 0
        if has_meta:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row["value"]) if row else 0
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger {self.path} was written by a newer Slotguard (schema {version}); upgrade Slotguard"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(target),),
                )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; nested uses join the outer transaction."""
        if self._depth == 0:
            self.db.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                # SQLite has already rolled back after some errors (a full disk); then
                # ROLLBACK itself would fail and hide the error that matters.
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                self._series_seen.clear()
            raise
        self._depth -= 1
        if self._depth == 0:
            self.db.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of a transaction (one is begun if none is open) that is undone alone when
        an exception leaves it: the exception propagates, and what the transaction did
        before the savepoint stays. The engine processes each event under one."""
        with self.transaction():
            name = f"item{self._depth}"
            self.db.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                if self.db.in_transaction:  # not after SQLite rolled the whole of it back (a full disk)
                    self.db.execute(f"ROLLBACK TO {name}")
                    self.db.execute(f"RELEASE {name}")
                self._series_seen.clear()
                raise
            self.db.execute(f"RELEASE {name}")

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

    def record_sync(self, calendar_id: str, token: str | None, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO sync_state (calendar_id, sync_token, last_sync_at, last_error) VALUES (?, ?, ?, '') "
            "ON CONFLICT (calendar_id) DO UPDATE SET sync_token = excluded.sync_token, "
            "last_sync_at = excluded.last_sync_at, last_error = ''",
            (calendar_id, token, _ts(at)),
        )

    def record_sync_error(self, calendar_id: str, message: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO sync_state (calendar_id, last_error, last_error_at) VALUES (?, ?, ?) "
            "ON CONFLICT (calendar_id) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at",
            (calendar_id, message, _ts(at)),
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
            (calendar_id, item, message, _ts(at), _ts(at)),
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
            (calendar_id, event_id, _ts(due), failed, error, _ts(due)),
        )

    def write_back_done(self, calendar_id: str, event_id: str) -> None:
        self.db.execute("DELETE FROM pending_writes WHERE calendar_id = ? AND event_id = ?", (calendar_id, event_id))

    def write_backs_due(self, now: datetime) -> list[tuple[str, str, int]]:
        """(calendar_id, event_id, failed attempts) of the status notes due to be written."""
        rows = self.db.execute(
            "SELECT calendar_id, event_id, attempts FROM pending_writes WHERE due_at <= ? ORDER BY due_at", (_ts(now),)
        )
        return [(row["calendar_id"], row["event_id"], row["attempts"]) for row in rows]

    def pending_write_backs(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.db.execute("SELECT * FROM pending_writes ORDER BY since, calendar_id, event_id")]

    # -- appointments ---------------------------------------------------------------------
    def tracked(self, calendar_id: str, event_id: str) -> Tracked | None:
        row = self.db.execute(
            "SELECT * FROM appointments WHERE calendar_id = ? AND event_id = ?", (calendar_id, event_id)
        ).fetchone()
        return self._tracked(row) if row else None

    @staticmethod
    def _tracked(row: sqlite3.Row) -> Tracked:
        return Tracked(
            appointment=appointment_from_json(row["snapshot"]),
            cancellation=row["cancellation"],
            outcome=row["outcome"],
            first_seen=from_utc_text(row["first_seen"]),
        )

    def fingerprints(self, calendar_id: str, event_ids: list[str]) -> dict[str, tuple[str, bool]]:
        """fingerprint() for many events of one calendar at once (one query per 500)."""
        found: dict[str, tuple[str, bool]] = {}
        for index in range(0, len(event_ids), 500):
            chunk = event_ids[index:index + 500]
            rows = self.db.execute(
                "SELECT event_id, fingerprint, cancellation, outcome FROM appointments WHERE calendar_id = ? "
                f"AND event_id IN ({','.join('?' * len(chunk))})",
                [calendar_id, *chunk],
            )
            for row in rows:
                found[row["event_id"]] = (row["fingerprint"], not row["cancellation"] and not row["outcome"])
        return found

    def fingerprint(self, calendar_id: str, event_id: str) -> tuple[str, bool] | None:
        """(fingerprint, still open) of a known event, without decoding its snapshot."""
        row = self.db.execute(
            "SELECT fingerprint, cancellation, outcome FROM appointments WHERE calendar_id = ? AND event_id = ?",
            (calendar_id, event_id),
        ).fetchone()
        if row is None:
            return None
        return row["fingerprint"], not row["cancellation"] and not row["outcome"]

    def has_invited_clients(self, since: datetime) -> bool:
        """True when an appointment starting at or after `since` has its client invited."""
        row = self.db.execute(
            "SELECT 1 FROM appointments WHERE start_utc >= ? AND snapshot LIKE ? LIMIT 1",
            (_ts(since), '%"client_invited":true%'),
        ).fetchone()
        return row is not None

    def save_tracked(self, tracked: Tracked) -> None:
        appointment = tracked.appointment
        self.db.execute(
            "INSERT INTO appointments (calendar_id, event_id, client_email, start_utc, status, cancellation, "
            "outcome, fingerprint, first_seen, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (calendar_id, event_id) DO UPDATE SET client_email = excluded.client_email, first_seen = excluded.first_seen, "
            "start_utc = excluded.start_utc, status = excluded.status, cancellation = excluded.cancellation, "
            "outcome = excluded.outcome, fingerprint = excluded.fingerprint, snapshot = excluded.snapshot",
            (
                appointment.calendar_id,
                appointment.event_id,
                appointment.client.email,
                to_utc_text(appointment.start),
                appointment.status,
                tracked.cancellation,
                tracked.outcome,
                appointment.fingerprint(),
                to_utc_text(tracked.first_seen),
                appointment_to_json(appointment),
            ),
        )

    def set_outcome(self, calendar_id: str, event_id: str, outcome: str) -> None:
        """Store `outcome` for a known appointment without changing its snapshot, and forget
        its fingerprint, so the next reading of the event is observed in full."""
        self.db.execute(
            "UPDATE appointments SET outcome = ?, fingerprint = '' WHERE calendar_id = ? AND event_id = ?",
            (outcome, calendar_id, event_id),
        )

    def event_ids(self, calendar_id: str, start_from: datetime, start_to: datetime) -> set[str]:
        """Ids of known, not cancelled events of a calendar starting inside a window."""
        rows = self.db.execute(
            "SELECT event_id FROM appointments WHERE calendar_id = ? AND status != 'cancelled' "
            "AND start_utc >= ? AND start_utc < ?",
            (calendar_id, to_utc_text(start_from), to_utc_text(start_to)),
        )
        return {row["event_id"] for row in rows}

    def open_appointments_started(self, since: datetime, until: datetime) -> list[Tracked]:
        """Appointments that started in [since, until] with no cancellation and no outcome yet."""
        rows = self.db.execute(
            "SELECT * FROM appointments WHERE outcome = '' AND cancellation = '' AND start_utc >= ? AND start_utc <= ?",
            (to_utc_text(since), to_utc_text(until)),
        )
        return [self._tracked(row) for row in rows]

    def clients_wanting_earlier(self, before: datetime) -> list[tuple[str, str]]:
        """(email, name) of clients whose booking after `before` is marked wants-earlier."""
        rows = self.db.execute(
            "SELECT client_email, snapshot FROM appointments WHERE cancellation = '' AND status != 'cancelled' "
            "AND start_utc > ? AND snapshot LIKE '%\"wants_earlier\"%' ORDER BY start_utc",
            (to_utc_text(before),),
        )
        found = []
        for row in rows:
            appointment = appointment_from_json(row["snapshot"])
            if "wants_earlier" in appointment.marks:
                found.append((appointment.client.email, appointment.client.name))
        return found

    def upcoming_open(self, after: datetime, until: datetime) -> list[Tracked]:
        """Confirmed, not cancelled appointments starting in (after, until]."""
        rows = self.db.execute(
            "SELECT * FROM appointments WHERE outcome = '' AND cancellation = '' AND status != 'cancelled' "
            "AND start_utc > ? AND start_utc <= ?",
            (to_utc_text(after), to_utc_text(until)),
        )
        return [self._tracked(row) for row in rows]

    def existing_action_ids(self, ids: list[str]) -> set[str]:
        """Which of these action ids the ledger holds already."""
        found: set[str] = set()
        for index in range(0, len(ids), 500):
            chunk = ids[index:index + 500]
            rows = self.db.execute(f"SELECT id FROM actions WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            found.update(row["id"] for row in rows)
        return found

    def upcoming(self, now: datetime, limit: int = 50) -> list[Tracked]:
        rows = self.db.execute(
            "SELECT * FROM appointments WHERE status != 'cancelled' AND cancellation = '' AND start_utc >= ? "
            "ORDER BY start_utc LIMIT ?",
            (to_utc_text(now), limit),
        )
        return [self._tracked(row) for row in rows]

    # -- happenings -----------------------------------------------------------------------
    def add_happening(self, happening: Happening) -> bool:
        """Store a happening; False when its key was already stored (nothing new)."""
        cursor = self.db.execute(
            "INSERT INTO happenings (key, kind, calendar_id, event_id, client_email, start_utc, at, seen_at, "
            "previous_start, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (
                happening.key,
                happening.kind.value,
                happening.calendar_id,
                happening.event_id,
                happening.client_email,
                to_utc_text(happening.start),
                to_utc_text(happening.at),
                to_utc_text(happening.seen_at),
                _ts(happening.previous_start),
                happening.detail,
            ),
        )
        return cursor.rowcount == 1

    def happenings_for(self, calendar_id: str, event_id: str) -> list[dict[str, Any]]:
        return [
            dict(row)
            for row in self.db.execute(
                "SELECT * FROM happenings WHERE calendar_id = ? AND event_id = ? ORDER BY seq", (calendar_id, event_id)
            )
        ]

    def all_happenings(self) -> list[Happening]:
        """Every stored happening, in the order it was stored (for `simulate`)."""
        return [
            Happening(
                key=row["key"],
                kind=HappeningKind(row["kind"]),
                calendar_id=row["calendar_id"],
                event_id=row["event_id"],
                client_email=row["client_email"],
                start=from_utc_text(row["start_utc"]),
                at=from_utc_text(row["at"]),
                seen_at=from_utc_text(row["seen_at"]),
                previous_start=_dt(row["previous_start"]),
                detail=row["detail"],
            )
            for row in self.db.execute("SELECT * FROM happenings ORDER BY seq")
        ]

    def all_tracked(self) -> list[Tracked]:
        """The last snapshot of every known appointment (for `simulate`)."""
        return [self._tracked(row) for row in self.db.execute("SELECT * FROM appointments")]

    def history(self, client_email: str) -> ClientHistory:
        """The client's outcomes, one per appointment slot, the latest outcome winning."""
        rows = self.db.execute(
            "SELECT kind, calendar_id, event_id, start_utc, at, seen_at FROM happenings "
            "WHERE client_email = ? AND kind IN (?, ?, ?, ?) ORDER BY seq",
            (
                client_email,
                HappeningKind.ATTENDED.value,
                HappeningKind.NO_SHOW.value,
                HappeningKind.CANCELLED_BY_CLIENT.value,
                HappeningKind.WAIVED.value,
            ),
        )
        slots: dict[tuple[str, str], Incident] = {}
        first_seen = None
        for row in rows:
            ref = f"{row['calendar_id']}/{row['event_id']}"
            slots[(ref, row["start_utc"])] = Incident(
                kind=HappeningKind(row["kind"]),
                start=from_utc_text(row["start_utc"]),
                at=from_utc_text(row["at"]),
                event_ref=ref,
            )
        first = self.db.execute(
            "SELECT MIN(first_seen) AS first FROM appointments WHERE client_email = ?", (client_email,)
        ).fetchone()
        if first and first["first"]:
            first_seen = from_utc_text(first["first"])
        outcomes = tuple(sorted(slots.values(), key=lambda item: item.start))
        return ClientHistory(email=client_email, outcomes=outcomes, first_seen=first_seen)

    def series_confirmed(self, client_email: str, series_id: str) -> bool:
        """True when a booking confirmation was planned for this client and recurring series."""
        if (client_email, series_id) in self._series_seen:
            return True
        rows = self.db.execute(
            "SELECT context FROM actions WHERE client_email = ? AND kind = 'email' AND template = 'booking_confirmation'",
            (client_email,),
        )
        found = any(json.loads(row["context"]).get("series_id") == series_id for row in rows)
        if found:
            self._series_seen.add((client_email, series_id))
        return found

    # -- actions --------------------------------------------------------------------------
    def add_action(self, action: Action, note: str = "") -> bool:
        """Store a planned action; False when its id exists already (planned before)."""
        amount = action.amount
        cursor = self.db.execute(
            "INSERT INTO actions (id, kind, state, policy, reason, calendar_id, event_id, client_email, client_name, "
            "happening_key, due_at, created_at, updated_at, amount_minor, currency, template, reports_on, "
            "appointment_start, attempts, last_error, external_id, executed_at, context) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                action.id,
                action.kind.value,
                action.state.value,
                action.policy,
                action.reason,
                action.calendar_id,
                action.event_id,
                action.client_email,
                action.client_name,
                action.happening_key,
                to_utc_text(action.due_at),
                to_utc_text(action.created_at),
                to_utc_text(action.updated_at),
                amount.minor if amount else None,
                amount.currency if amount else None,
                action.template,
                action.reports_on,
                _ts(action.appointment_start),
                action.attempts,
                action.last_error,
                action.external_id,
                _ts(action.executed_at),
                json.dumps(action.context, default=str, separators=(",", ":")),
            ),
        )
        # The creation itself is the row (created_at, state, reason): action_log records
        # only the changes after it, which keeps a first sync of a large calendar cheap.
        if cursor.rowcount == 1:
            action.stored_state = action.state
            if note:
                self._log(action.id, action.created_at, action.state, note)
        return cursor.rowcount == 1

    def _log(self, action_id: str, at: datetime, state: ActionState, note: str) -> None:
        self.db.execute(
            "INSERT INTO action_log (action_id, at, state, note) VALUES (?, ?, ?, ?)",
            (action_id, to_utc_text(at), state.value, note),
        )

    @staticmethod
    def _action(row: sqlite3.Row) -> Action:
        amount = Money(row["amount_minor"], row["currency"]) if row["currency"] else None
        return Action(
            id=row["id"],
            kind=ActionKind(row["kind"]),
            state=ActionState(row["state"]),
            policy=row["policy"],
            reason=row["reason"],
            calendar_id=row["calendar_id"],
            event_id=row["event_id"],
            client_email=row["client_email"],
            client_name=row["client_name"],
            happening_key=row["happening_key"],
            due_at=from_utc_text(row["due_at"]),
            created_at=from_utc_text(row["created_at"]),
            updated_at=from_utc_text(row["updated_at"]),
            amount=amount,
            template=row["template"],
            reports_on=row["reports_on"],
            appointment_start=_dt(row["appointment_start"]),
            attempts=row["attempts"],
            last_error=row["last_error"],
            external_id=row["external_id"],
            executed_at=_dt(row["executed_at"]),
            context=json.loads(row["context"]),
            stored_state=ActionState(row["state"]),
        )

    def action(self, action_id: str) -> Action | None:
        row = self.db.execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
        return self._action(row) if row else None

    def actions(
        self,
        *,
        states: Iterable[ActionState] | None = None,
        kinds: Iterable[ActionKind] | None = None,
        calendar_id: str | None = None,
        event_id: str | None = None,
        client_email: str | None = None,
        due_before: datetime | None = None,
        policy: str | None = None,
    ) -> list[Action]:
        """Actions matching every filter given, in the order they were planned."""
        clauses, params = [], []
        if states is not None:
            states = list(states)
            clauses.append(f"state IN ({','.join('?' * len(states))})")
            params += [state.value for state in states]
        if kinds is not None:
            kinds = list(kinds)
            clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
            params += [kind.value for kind in kinds]
        for column, value in (("calendar_id", calendar_id), ("event_id", event_id), ("client_email", client_email), ("policy", policy)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if due_before is not None:
            clauses.append("due_at <= ?")
            params.append(to_utc_text(due_before))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ORDER BY due_at, seq" if due_before is not None else "ORDER BY seq"
        return [self._action(row) for row in self.db.execute(f"SELECT * FROM actions {where} {order}", params)]

    def due_actions(self, states: Iterable[ActionState], now: datetime, batch: int = 500) -> Iterator[Action]:
        """Actions in one of `states` due by `now`, earliest first, read `batch` at a time.

        The ids are taken once, up front (what is planned while these run waits for the next
        tick, as before); each batch is read just before it is used, so a first sync's tens of
        thousands of due emails never sit in memory together, and an action that left those
        states meanwhile (waived, cancelled) is skipped."""
        states = [state.value for state in states]
        marks = ",".join("?" * len(states))
        ids = [
            row[0]
            for row in self.db.execute(
                f"SELECT id FROM actions WHERE state IN ({marks}) AND due_at <= ? ORDER BY due_at, seq",
                [*states, to_utc_text(now)],
            )
        ]
        for index in range(0, len(ids), batch):
            chunk = ids[index:index + batch]
            rows = {
                row["id"]: row
                for row in self.db.execute(
                    f"SELECT * FROM actions WHERE id IN ({','.join('?' * len(chunk))}) AND state IN ({marks})",
                    [*chunk, *states],
                )
            }
            for action_id in chunk:
                if action_id in rows:
                    yield self._action(rows.pop(action_id))

    def update_action(self, action: Action, at: datetime, note: str = "", *, expect: Iterable[ActionState] | None = None) -> bool:
        """Write an action's mutable fields back, logging the state; returns whether it was written.

        Only while the stored state is still the one `action` was read with (or last written
        with: `action.stored_state`), or, with `expect`, one of those states. So a copy read
        before a slow step (a Stripe call, a batch of other actions) never undoes what was
        done meanwhile: a `main.py waive` in another process, a cancellation. Changes that
        keep the state (a payment status, a waiting waiver) are not seen by this guard: a
        writer that can meet them reads the action again inside its transaction first.
        Raises ValueError for an action never read from or stored in the ledger."""
        if expect is None:
            if action.stored_state is None:
                raise ValueError(f"action {action.id} was not read from the ledger; read it (or pass expect) before writing it")
            expect = [action.stored_state]
        params: list[Any] = [
            action.state.value,
            action.reason,
            to_utc_text(action.due_at),
            to_utc_text(at),
            action.amount.minor if action.amount else None,
            action.amount.currency if action.amount else None,
            action.attempts,
            action.last_error,
            action.external_id,
            _ts(action.executed_at),
            json.dumps(action.context, default=str, separators=(",", ":")),
            action.id,
        ]
        expect = list(expect)
        guard = f" AND state IN ({','.join('?' * len(expect))})"
        params += [state.value for state in expect]
        cursor = self.db.execute(
            "UPDATE actions SET state = ?, reason = ?, due_at = ?, updated_at = ?, amount_minor = ?, currency = ?, "
            "attempts = ?, last_error = ?, external_id = ?, executed_at = ?, context = ? WHERE id = ?" + guard,
            params,
        )
        if cursor.rowcount == 1:
            action.updated_at = at
            action.stored_state = action.state
            self._log(action.id, at, action.state, note)
            return True
        return False

    def action_log(self, action_id: str) -> list[dict[str, Any]]:
        """The action's story: its planning (from the action row), then every logged change."""
        created = self.db.execute("SELECT created_at, reason FROM actions WHERE id = ?", (action_id,)).fetchone()
        story = [{"at": created["created_at"], "state": "planned", "note": created["reason"]}] if created else []
        return story + [
            dict(row)
            for row in self.db.execute("SELECT at, state, note FROM action_log WHERE action_id = ? ORDER BY seq", (action_id,))
        ]

    def owed_charges(self) -> list[Action]:
        """Charges carried out that the client has not paid yet: payment_status "unpaid" (a
        payment link) or "receivable" (record-only), oldest first."""
        rows = self.db.execute(
            "SELECT * FROM actions WHERE kind = 'charge' AND state = 'done' AND (context LIKE ? OR context LIKE ?) ORDER BY seq",
            ('%"payment_status":"unpaid"%', '%"payment_status":"receivable"%'),
        )
        found = [self._action(row) for row in rows]
        return [action for action in found if action.context.get("payment_status") in OWED]

    def mark_paid(self, action_id: str, at: datetime, note: str) -> Action | None:
        """Record that the client paid a charge still owed (done, payment_status "unpaid" or
        "receivable"): it becomes "paid". Returns the action, or None when there is no such
        charge or nothing is owed on it."""
        action = self.action(action_id)
        if action is None or action.kind is not ActionKind.CHARGE or action.state is not ActionState.DONE:
            return None
        if action.context.get("payment_status") not in OWED:
            return None
        action.context["payment_status"] = "paid"
        action.context.pop("provider_detail", None)
        return action if self.update_action(action, at, note, expect=[ActionState.DONE]) else None

    def holds_placed_since(self, since: datetime) -> list[Action]:
        """Card holds carried out since `since` (whatever became of them), oldest first."""
        rows = self.db.execute(
            "SELECT * FROM actions WHERE kind = 'hold' AND executed_at >= ? AND state = 'done' ORDER BY executed_at, seq",
            (_ts(since),),
        )
        return [self._action(row) for row in rows]

    def charged_total_since(self, since: datetime, currency: str) -> int:
        """Money actually taken from cards since `since` (receivables and unpaid fees excluded)."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(amount_minor), 0) AS total FROM actions WHERE kind = 'charge' AND state = 'done' "
            "AND currency = ? AND executed_at >= ? AND context LIKE '%\"payment_status\":\"paid\"%'",
            (currency, to_utc_text(since)),
        ).fetchone()
        return int(row["total"])


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
