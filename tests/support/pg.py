"""The PostgreSQL server the tests use: SLOTGUARD_TEST_PG, else the local one on 5432.

Without a server the tests that need one are skipped with a message saying so, except under
CI=true, where they fail: CI must test PostgreSQL, and a skip would hide that it did not.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

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
