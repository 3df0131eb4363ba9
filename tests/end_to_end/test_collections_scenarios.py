"""Unpaid fees through `replay` (record-only, simulated clock): each scenario in
tests/end_to_end/scenarios/collections_*.json says what it shows (`description`) and what the
ledger must hold afterwards (`expect`, the format of test_policies_scenarios.py, plus
`payment_status`). A step {"at", "pay": EVENT_ID} is the client paying what they owe."""

import json

import pytest

from slotguard.what_if.replay import run_scenario
from tests.support.scenarios import FIELDS as SCENARIO_FIELDS
from tests.support.scenarios import SCENARIOS, check_expectations, replayed, shared_renderers

FILES = sorted(SCENARIOS.glob("collections_*.json"))
FIELDS = (*SCENARIO_FIELDS, "payment_status")


@pytest.fixture(scope="module")
def results():
    """Replays shared by the tests of this module."""
    yield from shared_renderers()


def test_the_scenarios_cover_what_the_ladder_promises():
    names = {path.stem for path in FILES}
    assert {"collections_paid_after_reminder_1", "collections_paid_between_ticks", "collections_plan_fully_paid",
            "collections_plan_missed_installment", "collections_settlement_accepted", "collections_writeoff_below_threshold",
            "collections_refer_above_threshold", "collections_waived"} <= names


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_collections_scenario_produces_the_expected_actions(path, results):
    check_expectations(*replayed(path, results), fields=FIELDS)


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_no_reminder_or_charge_after_the_balance_is_paid(path, results):
    """Whatever the scenario: once the receipt went out, nothing chasing the client follows."""
    _, result = replayed(path, results)
    receipts = [a["at"] for a in result["actions"] if a["template"] == "payment_receipt" and a["state"] == "done"]
    if not receipts:
        return
    chasing = [a for a in result["actions"] if a["policy"] == "collections" and a["state"] == "done" and a["at"] > receipts[0]
               and (a["template"] in ("payment_reminder_1", "payment_reminder_2", "payment_final_notice", "payment_referral")
                    or (a["kind"] == "charge" and a["payment_status"] != "paid"))]
    assert chasing == []


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_replaying_a_collections_scenario_twice_gives_the_same_ledger(path, results):
    _, first = replayed(path, results)
    assert run_scenario(json.loads(path.read_text(encoding="utf-8"))) == first


PAYMENT_EMAILS = ("payment_reminder_1", "payment_reminder_2", "payment_final_notice", "payment_plan_installment")


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_a_client_gets_at_most_one_payment_email_a_day(path, results):
    """Collections speak to a client, not to a fee: whatever the scenario, no two reminders or
    installment notices reach one client on the same day in the practice's time zone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    scenario, result = replayed(path, results)
    zone = ZoneInfo(scenario["config"]["practice"]["timezone"])
    days = [(a["client"], datetime.fromisoformat(a["at"]).astimezone(zone).date()) for a in result["actions"]
            if a["kind"] == "email" and a["state"] == "done" and a["template"] in PAYMENT_EMAILS]
    assert len(days) == len(set(days)), sorted(days)


def test_two_fees_due_together_make_one_email_whose_subject_gives_the_total(results):
    _, result = replayed(SCENARIOS / "collections_two_fees_one_email.json", results)
    combined = [a for a in result["actions"] if a["template"] == "payment_reminder_2" and a["state"] == "done"
                and a["at"].startswith("2026-03-19")]
    assert [result["emails"][a["id"]]["subject"] for a in combined] == ["Still open: NOK\u00a01,800.00"]
