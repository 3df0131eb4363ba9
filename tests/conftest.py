"""Fixtures every test folder may use."""

from tests.support.pg import pg_schema, pg_url  # noqa: F401
