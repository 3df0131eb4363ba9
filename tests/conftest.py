"""Fixtures every test folder may use, and the switch that runs the whole suite on PostgreSQL.

SLOTGUARD_TEST_BACKEND=postgresql (`make test-pg`): every ledger a test opens at a SQLite
location is opened on the test PostgreSQL server instead (tests/support/pg.py), and the tests
marked `sqlite_only` (about SQLite itself: its files, their modes, its full-disk and
damaged-file errors, the LEDGER.lock file) are deselected. Without a server the run says so
and skips; under CI=true it fails.
"""

import os

import pytest

from tests.support.browser import browser  # noqa: F401
from tests.support.imap_server import imap_mailbox, imap_server  # noqa: F401
from tests.support.pg import end_postgres_run, pg_schema, pg_url, postgres_run_wanted, start_postgres_run  # noqa: F401

_postgres_run = {"on": False, "missing": ""}


def pytest_configure(config):
    if not postgres_run_wanted():
        return
    why = start_postgres_run()
    if why and os.environ.get("CI") == "true":
        raise pytest.UsageError(f"{why}. Under CI=true a missing service fails the run.")
    _postgres_run.update(on=not why, missing=why)


def pytest_report_header(config):
    if _postgres_run["on"]:
        return f"ledger backend: PostgreSQL ({os.environ.get('SLOTGUARD_TEST_PG') or 'the local server'}), schemas {os.environ['SLOTGUARD_TEST_LEDGER_RUN']}*"
    if _postgres_run["missing"]:
        return f"ledger backend: PostgreSQL wanted, but {_postgres_run['missing']}: every test is skipped"
    return "ledger backend: SQLite"


def pytest_collection_modifyitems(config, items):
    if _postgres_run["missing"]:
        skip = pytest.mark.skip(reason=_postgres_run["missing"])
        for item in items:
            item.add_marker(skip)
        return
    if _postgres_run["on"]:
        kept = [item for item in items if "sqlite_only" not in item.keywords]
        dropped = [item for item in items if "sqlite_only" in item.keywords]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept


def pytest_unconfigure(config):
    if _postgres_run["on"]:
        end_postgres_run()
