"""The ledger: the source of truth for what Slotguard knows, decided and did.

SQLite in WAL mode; the schema is versioned and migrated on open (slotguard/store/schema.py).
The SQL lives in this package, one module per group of tables (calendar_rows.py,
appointment_rows.py, action_rows.py: `Ledger` is made of them), and sticks to what PostgreSQL
also accepts (apart from the PRAGMAs), so another backend can follow behind the same methods.
Plans are written by slotguard/store/apply.py.

Tables: meta (schema version, first run), sync_state (per calendar), appointments (the last
snapshot of each event and what the tracker concluded), happenings (each once, by stable
key), actions (the outbox: stable id, state, due time, policy, reason, amount) and
action_log (every state change, for evidence and audits), problems (bad input we skipped),
pending_writes (status notes still to be written onto calendar events).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from slotguard.store.action_rows import ActionRows
from slotguard.store.appointment_rows import AppointmentRows
from slotguard.store.calendar_rows import CalendarRows
from slotguard.store.ledger_errors import GuardedConnection, LedgerError, explain
from slotguard.store.private_files import private_file
from slotguard.store.rows import appointment_from_json, appointment_to_json
from slotguard.store.schema import MIGRATIONS, SCHEMA_VERSION

# Imported from here by callers and tests.
__all__ = ["Ledger", "LedgerError", "MIGRATIONS", "SCHEMA_VERSION", "appointment_from_json", "appointment_to_json", "utc_now"]

class Ledger(CalendarRows, AppointmentRows, ActionRows):
    """The SQLite ledger. Methods that write do so inside `transaction()` or commit at once."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
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


def utc_now() -> datetime:
    return datetime.now(UTC)
