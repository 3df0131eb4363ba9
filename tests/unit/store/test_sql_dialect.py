"""The one SQL dialect the ledger writes, as PostgreSQL is sent it, and URLs as messages show them."""

from slotguard.store.backend import to_psycopg
from slotguard.store.pg import shown_url


def test_placeholders_become_psycopg_ones_outside_quotes_and_comments():
    assert to_psycopg("SELECT * FROM t WHERE a = ? AND b = ?") == "SELECT * FROM t WHERE a = %s AND b = %s"
    assert to_psycopg("INSERT INTO x VALUES (?, 'it''s ?', ?)") == "INSERT INTO x VALUES (%s, 'it''s ?', %s)"
    assert to_psycopg('SELECT "odd?name" FROM t WHERE a = ?') == 'SELECT "odd?name" FROM t WHERE a = %s'
    # An apostrophe in a comment does not turn the rest into a string.
    assert to_psycopg("SELECT 1 -- the client's\nWHERE a = ?") == "SELECT 1 -- the client's\nWHERE a = %s"


def test_a_literal_percent_is_doubled_everywhere():
    assert to_psycopg("SELECT * FROM t WHERE c LIKE '%\"paid\"%' AND a = ?") == "SELECT * FROM t WHERE c LIKE '%%\"paid\"%%' AND a = %s"


def test_a_url_is_shown_without_its_password():
    assert shown_url("postgresql://slotguard:hunter2@db:5432/s") == "postgresql://slotguard:***@db:5432/s"
    assert shown_url("postgresql://:hunter2@db/s") == "postgresql://:***@db/s"
    assert shown_url("postgresql://db/s?user=a&password=hunter2") == "postgresql://db/s?user=a&password=***"
    assert "hunter2" not in shown_url("postgres://u:hunter2@db/s")
