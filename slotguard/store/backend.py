"""The two engines under the ledger: SQLite (a file, or ":memory:") and PostgreSQL (a schema).

`Ledger` and its row modules write one dialect, SQLite's, which PostgreSQL also accepts once
translated here: `?` placeholders become psycopg's `%s` (a literal `%` becomes `%%`), and the
DDL of the one set of migrations (slotguard/store/schema.py) gets PostgreSQL's types (an
identity column for `INTEGER PRIMARY KEY AUTOINCREMENT`, BIGINT for INTEGER, TEXT compared
byte by byte like SQLite's, so ISO times and ids sort the same). `BEGIN IMMEDIATE` keeps its
meaning: on PostgreSQL it also takes a transaction lock per ledger schema, so writers queue
one after the other as they do on a SQLite file (5 seconds at most, then a LedgerError); a
write outside a transaction takes it for itself, as SQLite's lone statements do.

Rows of both read as `row["column"]`, `row[0]` and `dict(row)`. Every failure of the server
(gone, connection killed, disk full, no permission) becomes a LedgerError in the
practitioner's words, naming the server without its password (pg.shown_url). A connection
lost between transactions is opened again by the next one, so a daemon's next tick goes on.

Test hook: with SLOTGUARD_TEST_LEDGER_URL set, a SQLite location is opened on that PostgreSQL
server instead, in a schema named after the path (SLOTGUARD_TEST_LEDGER_RUN + a digest of
the absolute path; ":memory:" gets a new schema each time; the file's folder is made as
SQLite would make it): the whole test suite runs on PostgreSQL that way (tests/conftest.py,
docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from slotguard.store.ledger_errors import GuardedConnection, LedgerError, explain
from slotguard.store.pg import checked_schema, connect, is_postgres, one_line, shown_url

TEST_URL_ENV = "SLOTGUARD_TEST_LEDGER_URL"  # test hook: SQLite locations are opened on this server
TEST_RUN_ENV = "SLOTGUARD_TEST_LEDGER_RUN"  # test hook: the prefix of the schemas a test run makes
DEFAULT_TEST_RUN = "sgtest_"
BUSY_SECONDS = 5  # how long a writer waits for another one, as SQLite's busy_timeout


# A row of either engine (sqlite3.Row, `Row`): row["name"], row[0], dict(row).
LedgerRow = Any


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the row modules use of a ledger connection (`SqliteConnection`, `PgConnection`)."""

    @property
    def in_transaction(self) -> bool: ...
    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...
    def has_table(self, name: str) -> bool: ...
    def run_ddl(self, statement: str) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Place:
    """Where a ledger is: a SQLite file (`target` its path) or a PostgreSQL schema (`target`
    the server's URL), and how messages name it (`shown`: never a password)."""

    postgres: bool
    target: str
    schema: str
    shown: str
    stand_in: bool = False  # a SQLite location opened on the test server (the test hook)


def place(location: str, schema: str | None = None) -> Place:
    """Where `Ledger(location, schema)` is: a postgresql:// URL in `schema` (default
    "slotguard"), else a SQLite path or ":memory:" (on the test server under the test hook)."""
    location = str(location)
    if is_postgres(location):
        name = checked_schema(schema or "slotguard")
        return Place(True, location, name, f"{shown_url(location)} (schema {name})")
    test_url = os.environ.get(TEST_URL_ENV)
    if test_url:
        return Place(True, test_url, stand_in_schema(location), location, stand_in=True)
    return Place(False, location, "", location)


def stand_in_schema(location: str) -> str:
    """The schema standing in for the SQLite `location` under the test hook: the same path
    (however written) gives the same schema, ":memory:" a new one each time."""
    run = os.environ.get(TEST_RUN_ENV) or DEFAULT_TEST_RUN
    if location == ":memory:":
        return checked_schema(f"{run}m{uuid.uuid4().hex[:16]}")
    digest = hashlib.blake2b(str(Path(location).resolve()).encode(), digest_size=8).hexdigest()
    return checked_schema(f"{run}{digest}")


def exists(where: Place) -> bool:
    """True when a ledger has been made there (nothing is created to find out)."""
    if not where.postgres:
        return where.target != ":memory:" and Path(where.target).is_file()
    try:
        with connect(where.target) as conn:
            row = conn.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'meta'", (where.schema,)
            ).fetchone()
    except psycopg.Error as error:
        raise LedgerError(explain_pg(error, where.shown)) from None
    return row is not None


# -- SQL of one dialect ------------------------------------------------------------------
@lru_cache(maxsize=2048)
def to_psycopg(sql: str) -> str:
    """`sql` with SQLite's `?` placeholders as `%s` and each literal `%` doubled (a `?` inside
    a quoted string, a quoted name or a `--` comment is left alone: an apostrophe in a comment
    would otherwise turn the rest of the statement into a string)."""
    out: list[str] = []
    inside = ""  # the quote ("'" or '"') or "-" (a comment, to the line's end) we are in
    for index, char in enumerate(sql):
        if inside == "-":
            if char == "\n":
                inside = ""
        elif inside:
            if char == inside:
                inside = ""
        elif char in "'\"":
            inside = char
        elif char == "-" and sql.startswith("--", index):
            inside = "-"
        quoted = bool(inside)
        if char == "%":
            out.append("%%")
        elif char == "?" and not quoted:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


_DDL = (
    (re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
)


def postgres_ddl(statement: str) -> str:
    """A migration statement written for SQLite, as PostgreSQL needs it."""
    for pattern, replacement in _DDL:
        statement = pattern.sub(replacement, statement)
    return statement


# -- PostgreSQL ---------------------------------------------------------------------------
class Row:
    """A row read from PostgreSQL, used like sqlite3.Row: row["name"], row[0], dict(row)."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]):
        self._names = names
        self._values = values

    def __getitem__(self, key: str | int) -> Any:
        return self._values[self._names[key]] if isinstance(key, str) else self._values[key]

    def keys(self) -> list[str]:
        return list(self._names)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._names, self._values, strict=True))!r})"


def _row_factory(cursor: Any) -> Any:
    names = {column.name: index for index, column in enumerate(cursor.description or ())}
    return lambda values: Row(names, values)


def writer_key(schema: str) -> int:
    """The transaction lock key of a ledger schema's writers (not the SchemaLock's key)."""
    digest = hashlib.blake2b(f"slotguard-writer:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _writes(sql: str) -> bool:
    """True for a statement that changes rows."""
    return sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE")


def _safe_again(sql: str) -> bool:
    """True for a statement that may be sent again on a new connection: the beginning of a
    transaction, or a read outside one."""
    return sql == "BEGIN IMMEDIATE" or sql.lstrip().upper().startswith("SELECT")


def explain_pg(error: BaseException, shown: str) -> str:
    """A message for `error` raised by PostgreSQL (or psycopg) on the ledger `shown`."""
    detail = one_line(error)
    where = f"the ledger {shown}"
    if isinstance(error, pg_errors.DiskFull | pg_errors.OutOfMemory | pg_errors.InsufficientResources):
        return (f"the PostgreSQL server holding {where} has no room left ({detail}); free some space on the server, then "
                "run Slotguard again. Nothing of the interrupted step was stored: it is done again on the next run")
    if isinstance(error, pg_errors.InsufficientPrivilege):
        return (f"{where} cannot be written ({detail}): the PostgreSQL user of storage.url needs the right to create "
                "tables in the schema and to write them (GRANT USAGE, CREATE ON SCHEMA, GRANT ALL ON ALL TABLES IN SCHEMA); "
                "nothing was changed")
    if isinstance(error, pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
        return f"{where} is locked by another program for longer than {BUSY_SECONDS} seconds ({detail}); try again"
    if isinstance(error, pg_errors.DataCorrupted | pg_errors.IndexCorrupted):
        return (f"{where} is damaged ({detail}); Slotguard changed nothing. Restore the ledger from a backup; do not start a "
                "new one in its place without reading docs/architecture.md#exactly-once")
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return (f"the connection to the PostgreSQL server of {where} was lost ({detail}); nothing of the interrupted step "
                "was stored: it is done again on the next run. Check that the server is running")
    return f"{where} failed ({detail})"


class PgConnection:
    """A ledger connection to a PostgreSQL schema, used as an sqlite3 connection is: statements
    in SQLite's dialect, BEGIN IMMEDIATE / COMMIT / ROLLBACK / SAVEPOINT, `in_transaction`."""

    def __init__(self, where: Place):
        self.where = where
        self._conn = self._connect()
        self._begun = False  # a transaction begun here and not yet ended

    def _connect(self) -> psycopg.Connection:
        """A connection with the schema made and first on the search path. Raises LedgerError
        (no server, no login, no right to make the schema)."""
        conn = connect(self.where.target, schema=None, row_factory=_row_factory)
        try:
            # Asked first: a user without the right to create schemas may use one made for it.
            if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.where.schema,)).fetchone() is None:
                try:
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.where.schema}"')
                except pg_errors.UniqueViolation:
                    pass  # another process made it meanwhile
            usable = conn.execute("SELECT has_schema_privilege(%s, 'USAGE')", (self.where.schema,)).fetchone()
            if not (usable and usable[0]):
                conn.close()
                raise LedgerError(f"the ledger {self.where.shown} cannot be used: the PostgreSQL user of storage.url has no right to "
                                  f"its schema (GRANT USAGE, CREATE ON SCHEMA {self.where.schema} TO that user); nothing was changed")
            conn.execute(f'SET search_path TO "{self.where.schema}"')
            conn.execute(f"SET lock_timeout = '{BUSY_SECONDS}s'")
        except psycopg.Error as error:
            conn.close()
            raise LedgerError(explain_pg(error, self.where.shown)) from None
        return conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)

    @property
    def backend_pid(self) -> int:
        """The server process of this connection (tests end it to see a tick survive)."""
        return self._conn.info.backend_pid

    def execute(self, sql: str, parameters: Any = None, /) -> Any:
        if self._conn.broken or self._conn.closed:
            self._reopen()
        try:
            return self._execute(sql, parameters)
        except psycopg.Error as error:
            if not self._conn.broken:
                raise LedgerError(explain_pg(error, self.where.shown)) from error
            if self._begun or not _safe_again(sql):
                self._begun = False  # the server rolled it back with the connection
                raise LedgerError(explain_pg(error, self.where.shown)) from error
        # The connection was lost before this statement, which changes nothing if done again.
        self._reopen()
        try:
            return self._execute(sql, parameters)
        except psycopg.Error as error:
            if self._conn.broken:
                self._begun = False
            raise LedgerError(explain_pg(error, self.where.shown)) from error

    def _reopen(self) -> None:
        """A new connection for one that was lost; never inside a transaction, whose writes
        went with the old one."""
        if self._begun:
            self._begun = False  # the server rolled it back with the connection
            raise LedgerError(explain_pg(psycopg.OperationalError("the connection was closed"), self.where.shown))
        try:
            self._conn.close()
            self._conn = self._connect()
        except LedgerError as error:
            raise LedgerError(f"{explain_pg(psycopg.OperationalError('the connection was closed'), self.where.shown)}: {error}") from None

    def _execute(self, sql: str, parameters: Any) -> Any:
        if sql == "BEGIN IMMEDIATE":
            cursor = self._conn.execute("BEGIN")
            self._begun = True
            try:
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (writer_key(self.where.schema),))
            except psycopg.Error:
                if not self._conn.broken:  # waited too long for the other writer: begun, never used
                    self._conn.execute("ROLLBACK")
                self._begun = False
                raise
            return cursor
        if sql in ("COMMIT", "ROLLBACK"):
            self._begun = False
        if not self._begun and _writes(sql):
            return self._alone(sql, parameters)
        return self._statement(sql, parameters)

    def _statement(self, sql: str, parameters: Any) -> Any:
        if parameters is None:
            return self._conn.execute(sql)
        return self._conn.execute(to_psycopg(sql), parameters)

    def _alone(self, sql: str, parameters: Any) -> Any:
        """A write outside any transaction, in one of its own behind the writer lock, as SQLite
        takes its write lock for a lone statement: no write lands in the middle of another
        process's BEGIN IMMEDIATE transaction."""
        self._execute("BEGIN IMMEDIATE", None)
        try:
            cursor = self._statement(sql, parameters)
            self._conn.execute("COMMIT")
        except psycopg.Error:
            if not self._conn.broken:
                self._conn.execute("ROLLBACK")
            raise
        finally:
            self._begun = False
        return cursor

    def has_table(self, name: str) -> bool:
        row = self.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                           (self.where.schema, name)).fetchone()
        return row is not None

    def run_ddl(self, statement: str) -> None:
        self.execute(postgres_ddl(statement))

    def close(self) -> None:
        self._conn.close()


class SqliteConnection(GuardedConnection):
    """The ledger's connection to a SQLite file (a real sqlite3 connection: backups, pragmas)."""

    def has_table(self, name: str) -> bool:
        return self.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None

    def run_ddl(self, statement: str) -> None:
        self.execute(statement)


# Errors of either engine that can reach a caller without passing a ledger statement's guard
# (say, a row read while a SQLite cursor steps on): the command line reports them as it does
# a LedgerError (`explain_engine_error`).
ENGINE_ERRORS = (sqlite3.Error, psycopg.Error)


def explain_engine_error(error: BaseException) -> str:
    """A message for an error in ENGINE_ERRORS, for the practitioner."""
    return explain(error, "") if isinstance(error, sqlite3.Error) else explain_pg(error, "")


def shown_location(location: str, schema: str | None = None) -> str:
    """How messages name the ledger at `location`: a path, or the URL without its password
    and with its schema."""
    return place(location, schema).shown
