"""`main.py export` after real Stripe traffic (localstripe): a no-show fee charged from the
saved card, then waived and refunded. The export's Stripe ids are the ones Stripe itself
holds for that fee: its PaymentIntent on the fee and payment rows, its Refund on the refund."""

from __future__ import annotations

import csv
import io

import pytest

from slotguard.domain.model import ActionKind
from slotguard.store.ledger import Ledger
from tests.support.stripe_fixtures import *  # noqa: F401,F403 - localstripe, proxy, admin client
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY, intents_for_action, refunds_for
from tests.support.stripe_practice import NOW, main_process, write_practice

pytestmark = pytest.mark.timeout(300)
LATER = "2026-11-26T13:00:00+01:00"


@pytest.fixture
def practice(tmp_path, stripe_proxy, stripe_client_with_card, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    return write_practice(tmp_path, stripe_proxy.base_url)


def test_export_names_the_stripe_payment_and_refund_of_a_fee(practice, stripe_admin):
    ran = main_process(practice, "run", "--once", "--now", NOW)
    assert ran.returncode == 0, ran.stderr
    ledger = Ledger(practice.parent / "var" / "ledger.sqlite3")
    [fee] = ledger.actions(kinds=[ActionKind.CHARGE])
    ledger.close()
    [intent] = intents_for_action(stripe_admin, fee.id)
    assert intent["status"] == "succeeded"
    waived = main_process(practice, "waive", fee.id, "--reason", "family emergency", "--now", LATER)
    assert waived.returncode == 0, waived.stderr
    ran = main_process(practice, "run", "--once", "--now", LATER)
    assert ran.returncode == 0, ran.stderr
    [refund] = refunds_for(stripe_admin, intent["id"])

    exported = main_process(practice, "export", "--from", "2026-11-01", "--to", "2026-11-30")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    by_type = {row["type"]: row for row in rows}
    assert sorted(by_type) == ["fee", "payment", "refund"] and len(rows) == 3
    assert by_type["fee"]["stripe_id"] == by_type["payment"]["stripe_id"] == intent["id"]
    assert by_type["refund"]["stripe_id"] == refund["id"]
    assert by_type["refund"]["fee_id"] == by_type["payment"]["fee_id"] == fee.id
    paid = intent["amount_received"] if "amount_received" in intent else intent["amount"]
    assert by_type["payment"]["amount"] == f"{paid // 100}.{paid % 100:02d}"
    assert by_type["refund"]["amount"] == f"{refund['amount'] // 100}.{refund['amount'] % 100:02d}"
    assert by_type["fee"]["client_email"] == "ana@example.com" and by_type["fee"]["currency"] == "NOK"
