"""A fee paid to the practitioner directly (Vipps, cash) and recorded with `mark-paid`: the
client gets a receipt at the next tick, in their language, once; amounts the practitioner
reads in the commands' output are money in the practice's locale (JSON keeps minor units).
main.py as a separate process on the example practice (nb, record-only)."""

import email
import email.policy
import json
import shutil

import pytest

from tests.support.cli import NOW, ROOT, main

LATER = "2026-11-27T09:00:00+01:00"  # the review window of Thursday's fees has ended
PAID_AT = "2026-11-27T10:00:00+01:00"
NEXT_TICK = "2026-11-27T10:02:00+01:00"


@pytest.fixture()
def practice(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


def sent(folder, seen=frozenset()):
    """The messages in the outbox (by file name), leaving out the names in `seen`."""
    return {path.name: email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted((folder / "var/outbox").glob("*.eml")) if path.name not in seen}


def test_mark_paid_sends_the_client_a_receipt_and_amounts_read_as_money(practice):
    main(practice, "run", "--once", "--now", NOW)
    main(practice, "run", "--once", "--now", LATER)
    fees = {a["client"]: a for a in json.loads(main(practice, "ledger", "--json").stdout)["actions"] if a["kind"] == "charge"}
    bjorn = fees["bjorn@example.com"]
    assert bjorn["payment_status"] == "receivable" and bjorn["amount"] == {"minor": 90000, "currency": "NOK"}

    ledger_text = main(practice, "ledger").stdout
    assert "900,00\u00a0kr" in ledger_text and "90000" not in ledger_text
    status_text = main(practice, "status", "--now", LATER).stdout
    assert "900,00\u00a0kr" in status_text.split("Receivables")[1]
    balance_text = main(practice, "balance", "--now", LATER).stdout
    assert "owes 900,00\u00a0kr" in balance_text and "900.00 NOK" not in balance_text
    assert json.loads(main(practice, "balance", "--json", "--now", LATER).stdout)["clients"][0]["owed"]["minor"] in (45000, 90000)

    before = set(sent(practice))
    paid = main(practice, "mark-paid", bjorn["id"], "--note", "Vipps", "--now", PAID_AT).stdout
    assert "900,00\u00a0kr" in paid and "receipt" in paid
    main(practice, "run", "--once", "--now", NEXT_TICK)
    new = sent(practice, before)
    receipts = [m for m in new.values() if m["To"].addresses[0].addr_spec == "bjorn@example.com"]
    assert len(receipts) == 1, [m["Subject"] for m in new.values()]
    [receipt] = receipts
    text = receipt.get_body(("plain",)).get_content()
    assert receipt["Content-Language"] == "nb"
    assert "900,00\u00a0kr" in receipt["Subject"] and "kvittering" in text.lower()
    main(practice, "run", "--once", "--now", "2026-11-27T12:00:00+01:00")
    later = sent(practice, before | set(new)).values()
    assert not [m for m in later if m["To"].addresses[0].addr_spec == "bjorn@example.com"], "one receipt"


def test_replay_prints_amounts_as_money_and_json_keeps_minor_units(tmp_path):
    scenario = json.loads((ROOT / "tests/end_to_end/scenarios/week.json").read_text())
    scenario["config"]["practice"]["locale"] = "nb"
    path = tmp_path / "week_nb.json"
    path.write_text(json.dumps(scenario))
    text = main(tmp_path, "replay", str(path)).stdout
    assert "450,00\u00a0kr" in text and "900,00\u00a0kr" in text
    assert "45000 NOK" not in text and "90000 NOK" not in text
    charges = [a for a in json.loads(main(tmp_path, "replay", str(path), "--json").stdout)["actions"] if a["kind"] == "charge"]
    assert {a["amount"]["minor"] for a in charges} == {45000, 90000}
