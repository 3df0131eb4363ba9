"""What the daemon logs about a failing tick carries no secret (issue 11, item 10)."""

from slotguard.failures import redact, tick_failure
from slotguard.ledger_errors import LedgerError


def test_a_tick_failure_names_the_error_without_the_secrets_in_it():
    error = RuntimeError("Invalid API Key provided: sk_live_51Habc123XYZ; webhook whsec_9f8e7d; Authorization: Bearer ya29.a0AfB_x")
    text = tick_failure(error)
    assert text.startswith("RuntimeError: Invalid API Key provided: [redacted]")
    for secret in ("sk_live_51Habc123XYZ", "whsec_9f8e7d", "ya29.a0AfB_x"):
        assert secret not in text
    assert redact("refresh 1//0gAbCdEfGhIjKlMnOpQrStUv-wx") == "refresh [redacted]"


def test_a_ledger_failure_is_told_as_it_is():
    assert tick_failure(LedgerError("the disk holding the ledger var/ledger.sqlite3 is full")) == (
        "the disk holding the ledger var/ledger.sqlite3 is full"
    )
