"""Connections to PostgreSQL (`storage.url = "postgresql://..."`), for the ledger, the work
queue and the limits shared by workers.

A URL may carry a password; it never reaches a log or a message: `shown_url` replaces it.
A server that cannot be reached becomes a LedgerError saying where and what to check.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from slotguard.domain import untrusted
from slotguard.store.ledger_errors import LedgerError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# Schema names Slotguard creates are plain identifiers, so they can be quoted without doubt.
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def is_postgres(location: str) -> bool:
    """True for a postgresql:// (or postgres://) URL, False for a SQLite path or ':memory:'."""
    return location.startswith(POSTGRES_SCHEMES)


def shown_url(url: str) -> str:
    """The URL without its password (user:secret@host -> user:***@host), and without a
    password=... parameter, for logs and messages."""
    url = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)  # an empty user name too (postgresql://:secret@host)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


def checked_schema(name: str) -> str:
    """`name` when it is a schema name Slotguard may use (lower-case letters, digits, _)."""
    if not _SCHEMA_RE.match(name):
        raise ValueError(f"{name!r} is not a schema name Slotguard uses: lower-case letters, digits and _, at most 63")
    return name


def connect(url: str, *, schema: str | None = None, autocommit: bool = True, **options: Any) -> psycopg.Connection:
    """A connection to the server at `url`; with `schema`, that schema is created when
    missing and is first on the search path. Raises LedgerError when the server cannot
    be reached or refuses the login."""
    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10, application_name="slotguard", **options)
    except psycopg.Error as error:
        raise LedgerError(f"cannot reach the PostgreSQL server {shown_url(url)}: {one_line(error)}; check storage.url and that the server is running") from None
    if schema:
        checked_schema(schema)
        with conn.transaction():
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
    return conn


def create_shared_tables(conn: psycopg.Connection, schema: str, *statements: Any) -> None:
    """Create `schema` when missing and run `statements` (CREATE ... IF NOT EXISTS) in it, in
    one transaction under one lock per schema: every worker, and the webhook server, makes the
    tables it shares with the others when it starts, and two `IF NOT EXISTS` at the same moment
    can both try to create (a unique violation). The work queue, the shared limits and the push
    channels all go through here, so they wait for each other too."""
    name = checked_schema(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"slotguard-ddl:{name}",))
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
        for statement in statements:
            conn.execute(statement)


def one_line(error: BaseException) -> str:
    """A server error's text for a message: on one line, at most 300 characters (its type when it has no text)."""
    return untrusted.one_line(str(error), 300) or type(error).__name__
