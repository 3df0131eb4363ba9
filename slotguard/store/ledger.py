"""The ledger: the source of truth for what Slotguard knows, decided and did.

SQLite in WAL mode (a file, the default), or a schema on a PostgreSQL server (storage.url);
the schema is versioned and migrated on open (slotguard/store/schema.py), one set of
migrations for both. The SQL lives in this package, one module per group of tables
(calendar_rows.py, appointment_rows.py, action_rows.py: `Ledger` is made of them), in
SQLite's dialect; slotguard/store/backend.py translates it for PostgreSQL. Plans are written
by slotguard/store/apply.py.

Tables: meta (schema version, first run), sync_state (per calendar), appointments (the last
snapshot of each event and what the tracker concluded), happenings (each once, by stable
key), actions (the outbox: stable id, state, due time, policy, reason, amount) and
action_log (every state change, for evidence and audits), problems (bad input we skipped),
pending_writes (status notes still to be written onto calendar events), inbox_mail and
email_signals (the inbox: messages read, clients' cancellations and confirmations by email).
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
from slotguard.store.backend import Connection, PgConnection, Place, SqliteConnection, place
from slotguard.store.calendar_rows import CalendarRows
from slotguard.store.inbox_rows import InboxRows
from slotguard.store.ledger_errors import LedgerError, explain
from slotguard.store.private_files import private_file
from slotguard.store.rows import appointment_from_json, appointment_to_json
from slotguard.store.schema import DATA_STEPS, MIGRATIONS, SCHEMA_VERSION, SEQUENCED, TABLES, TITLES_TAKEN_OUT

# Imported from here by callers and tests.
__all__ = ["Ledger", "LedgerError", "MIGRATIONS", "SCHEMA_VERSION", "appointment_from_json", "appointment_to_json", "utc_now"]


class Ledger(CalendarRows, AppointmentRows, ActionRows, InboxRows):
    """The ledger at `location`: a SQLite file's path, ":memory:", or a postgresql:// URL
    (then in `schema`, default "slotguard", created when missing). Methods that write do so
    inside `transaction()` or commit at once. Raises LedgerError when it cannot be opened."""

    def __init__(self, location: str | Path, schema: str | None = None):
        self.path = str(location)
        try:
            self.place: Place = place(self.path, schema)
        except ValueError as error:
            raise LedgerError(f"cannot open the ledger: {error}; check storage.schema") from None
        self.shown = self.place.shown  # how messages name it: a path, or the URL without its password
        self.db: Connection = self._open_postgres() if self.place.postgres else self._open_sqlite()
        self._depth = 0
        # (client, series) pairs known to have a booking confirmation, so that a weekly
        # client's fifty instances cost one query, not fifty; emptied on a rollback, since
        # it may hold what the rolled-back transaction wrote.
        self._series_seen: set[tuple[str, str]] = set()
        if 0 < self._migrate() < TITLES_TAKEN_OUT and not self.place.postgres and self.path != ":memory:":
            # Titles taken out of the snapshots (migration 4) may linger in pages an older
            # Slotguard freed without overwriting them: the file is rebuilt once, without them.
            self.db.execute("VACUUM")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @classmethod
    def scratch(cls) -> Ledger:
        """A new, empty ledger in memory (SQLite, whatever the test hook says): the scratch
        ledger of a replay or a simulation."""
        ledger = cls.__new__(cls)
        ledger.path = ledger.shown = ":memory:"
        ledger.place = Place(False, ":memory:", "", ":memory:")
        ledger.db = ledger._open_sqlite()
        ledger._depth = 0
        ledger._series_seen = set()
        ledger._migrate()
        return ledger

    def _open_postgres(self) -> Connection:
        if self.place.stand_in and self.path != ":memory:":
            # The test hook stands in for a SQLite file: its folder is made as the file's would be.
            Path(self.path).parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        try:
            return PgConnection(self.place)
        except LedgerError as error:
            raise LedgerError(f"cannot open the ledger {self.shown}: {error}") from None

    def _open_sqlite(self) -> Connection:
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
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, factory=SqliteConnection)
            db.ledger_path = self.path
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            # What is deleted or rewritten is overwritten, not left in free space: a pruned
            # appointment's or a forgotten client's data must not stay readable in the file.
            db.execute("PRAGMA secure_delete=ON")
            # 32 MB of page cache: a first sync writes to many B-trees at scattered keys.
            db.execute("PRAGMA cache_size=-32768")
            # Test hook: the disk is full once the ledger has this many pages (SQLITE_FULL).
            if os.environ.get("SLOTGUARD_TEST_LEDGER_MAX_PAGES"):
                db.execute(f"PRAGMA max_page_count = {int(os.environ['SLOTGUARD_TEST_LEDGER_MAX_PAGES'])}")
        except sqlite3.Error as error:
            raise LedgerError(f"cannot open the ledger: {explain(error, self.path)}") from None
        except LedgerError as error:
            raise LedgerError(f"cannot open the ledger: {error}") from None
        return db

    def close(self) -> None:
        self.db.close()

    # -- schema ---------------------------------------------------------------------------
    def _migrate(self) -> int:
        """Bring the schema up to date, in one transaction (a second process opening the
        same ledger meanwhile waits, then finds it done); return the version it had. Raises
        LedgerError for a ledger written by a newer Slotguard, changing nothing."""
        with self.transaction():
            version = 0
            if self.db.has_table("meta"):
                row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row["value"]) if row else 0
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger {self.shown} was written by a newer Slotguard (schema {version}); upgrade Slotguard"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        self.db.run_ddl(statement)
                if target in DATA_STEPS:
                    DATA_STEPS[target](self.db)
                self.db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(target),),
                )
        return version

    def copy_into(self, other: Ledger) -> None:
        """Copy every row of this ledger into `other` (an empty ledger of the same schema
        version, on either engine), in one transaction of `other`'s."""
        with other.transaction():
            for table in TABLES:
                other.db.execute(f"DELETE FROM {table}")
                rows = self.db.execute(f"SELECT * FROM {table}").fetchall()
                if not rows:
                    continue
                columns = list(rows[0].keys())
                insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                for row in rows:
                    other.db.execute(insert, tuple(row))
            if other.place.postgres:  # rows inserted with their seq: the identity goes on after them
                for table in SEQUENCED:
                    other.db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'), COALESCE(MAX(seq), 0) + 1, false) FROM {table}")

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
