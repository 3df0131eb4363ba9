"""What the daemon logs about a failing tick carries no secret (issue 11, item 10)."""

from slotguard.run.failures import redact, tick_failure
from slotguard.store.ledger_errors import LedgerError

# Built at run time so that nothing in the repository looks like a real secret.
LIVE_KEY = "sk_" + "live_" + "51Habc123XYZ"
WEBHOOK_SECRET = "whsec_" + "9f8e7d"


def test_a_tick_failure_names_the_error_without_the_secrets_in_it():
    error = RuntimeError(f"Invalid API Key provided: {LIVE_KEY}; webhook {WEBHOOK_SECRET}; Authorization: Bearer ya29.a0AfB_x")
    text = tick_failure(error)
    assert text.startswith("RuntimeError: Invalid API Key provided: [redacted]")
    for secret in (LIVE_KEY, WEBHOOK_SECRET, "ya29.a0AfB_x"):
        assert secret not in text
    assert redact("refresh 1//0gAbCdEfGhIjKlMnOpQrStUv-wx") == "refresh [redacted]"


def test_a_ledger_failure_is_told_as_it_is():
    assert tick_failure(LedgerError("the disk holding the ledger var/ledger.sqlite3 is full")) == (
        "the disk holding the ledger var/ledger.sqlite3 is full"
    )
