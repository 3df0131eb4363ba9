"""The PostgreSQL server the tests use: SLOTGUARD_TEST_PG, else the local one on 5432.

Without a server the tests that need one are skipped with a message saying so, except under
CI=true, where they fail: CI must test PostgreSQL, and a skip would hide that it did not.

The whole suite on PostgreSQL (`make test-pg`, or SLOTGUARD_TEST_BACKEND=postgresql): every
SQLite ledger a test opens is opened on this server instead (the test hook of
slotguard/store/backend.py), in schemas named with this run's prefix, dropped when the run
ends (`start_postgres_run`, `end_postgres_run`, called by tests/conftest.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from slotguard.store.backend import TEST_RUN_ENV, TEST_URL_ENV

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def test_pg_url() -> str:
    return os.environ.get("SLOTGUARD_TEST_PG") or DEFAULT_URL


def reachable(url: str) -> str:
    """'' when a server answers at `url`, else why not."""
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return " ".join(str(error).split())[:200]
    return ""


_checked: dict[str, str] = {}


def require_pg() -> str:
    """The test server's URL, or a skip (a failure under CI=true) naming why it is missing."""
    url = test_pg_url()
    if url not in _checked:
        _checked[url] = reachable(url)
    why = _checked[url]
    if why:
        message = f"PostgreSQL is not reachable at {url} ({why}); set SLOTGUARD_TEST_PG to a server to run this test"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}. Under CI=true a missing service fails the test.")
        pytest.skip(message)
    return url


def fresh_schema_name(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def pg_url() -> str:
    """The URL of the test server (skipped, or failed under CI=true, without one)."""
    return require_pg()


@pytest.fixture
def pg_schema(pg_url) -> Iterator[str]:
    """A new, empty schema on the test server, dropped after the test."""
    name = fresh_schema_name()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


BACKEND_ENV = "SLOTGUARD_TEST_BACKEND"  # "postgresql": the whole suite on PostgreSQL


def postgres_run_wanted() -> bool:
    return os.environ.get(BACKEND_ENV, "").lower() in ("postgresql", "postgres", "pg")


def start_postgres_run() -> str:
    """Turn the test hook on for this process and the processes it starts: SQLite ledgers
    are opened on the test server, in schemas named with a new run prefix. Returns '' when
    it is on, else why not (no server)."""
    url = test_pg_url()
    why = reachable(url)
    if why:
        return f"PostgreSQL is not reachable at {url} ({why}); set SLOTGUARD_TEST_PG to a server to run the suite on it"
    os.environ[TEST_URL_ENV] = url
    os.environ[TEST_RUN_ENV] = f"sgrun_{uuid.uuid4().hex[:10]}_"
    return ""


def end_postgres_run() -> int:
    """Drop the schemas this run made (those named with its prefix); returns how many."""
    url, prefix = os.environ.get(TEST_URL_ENV), os.environ.get(TEST_RUN_ENV)
    if not url or not prefix:
        return 0
    with psycopg.connect(url, autocommit=True) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE left(nspname, length(%s)) = %s", (prefix, prefix))]
        for name in names:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    return len(names)
