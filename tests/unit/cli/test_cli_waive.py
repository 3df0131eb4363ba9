"""`main.py waive` on every kind of fee waiting for review."""

from datetime import UTC, datetime, timedelta

import pytest

from slotguard.cli.main import main
from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.store.ledger import Ledger

NOW = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
CONFIG = """
[practice]
name = "Lena"
email = "lena@example.com"
timezone = "Europe/Oslo"
currency = "NOK"
[calendar]
source = "ics"
url = "none.ics"
[services]
default = {{ price = "900 NOK" }}
[storage]
data_dir = "{data}"
"""


def fee(kind, state=ActionState.PENDING_REVIEW):
    return Action(
        id=f"act_{kind.value}", kind=kind, state=state, policy="no_show", reason="no_show proposed 900.00 NOK",
        calendar_id="primary", event_id="e1", client_email="ana@example.com", client_name="Ana",
        happening_key="primary/e1/no_show/x", due_at=NOW + timedelta(hours=12), created_at=NOW, updated_at=NOW,
        amount=Money(90000, "NOK"), appointment_start=NOW - timedelta(hours=2), executed_at=NOW if state is ActionState.DONE else None,
    )


@pytest.fixture
def practice(tmp_path):
    (tmp_path / "slotguard.toml").write_text(CONFIG.format(data=tmp_path / "var"))
    return tmp_path


@pytest.mark.parametrize("kind", [ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE, ActionKind.CREDIT])
def test_an_open_fee_of_any_kind_can_be_waived_by_id(practice, kind, capsys):
    ledger = Ledger(practice / "var/ledger.sqlite3")
    ledger.add_action(fee(kind))
    code = main(["waive", f"act_{kind.value}", "--reason", "flu", "--config", str(practice / "slotguard.toml"), "--now", NOW.isoformat()])
    assert code == 0
    waived = ledger.action(f"act_{kind.value}")
    assert waived.state is ActionState.WAIVED and "flu" in waived.reason


def test_a_captured_fee_is_refunded_when_waived_after_the_fact(practice):
    ledger = Ledger(practice / "var/ledger.sqlite3")
    ledger.add_action(fee(ActionKind.CAPTURE, ActionState.DONE))
    assert main(["waive", "act_capture", "--reason", "mistake", "--config", str(practice / "slotguard.toml"), "--now", NOW.isoformat()]) == 0
    [refund] = ledger.actions(kinds=[ActionKind.REFUND])
    assert refund.amount == Money(90000, "NOK") and refund.state is ActionState.PLANNED


def test_an_email_is_not_a_fee(practice, capsys):
    ledger = Ledger(practice / "var/ledger.sqlite3")
    ledger.add_action(fee(ActionKind.EMAIL))
    assert main(["waive", "act_email", "--reason", "x", "--config", str(practice / "slotguard.toml")]) == 1
    assert "no fee with id act_email" in capsys.readouterr().err
