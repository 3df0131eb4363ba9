"""Unpaid fees through `replay` (record-only, simulated clock): each scenario in
tests/end_to_end/scenarios/collections_*.json says what it shows (`description`) and what the
ledger must hold afterwards (`expect`, the format of test_policies_scenarios.py, plus
`payment_status`). A step {"at", "pay": EVENT_ID} is the client paying what they owe."""

import json
from pathlib import Path

import pytest

from slotguard.replay import run_scenario
from tests.end_to_end.test_policies_scenarios import describe

SCENARIOS = Path(__file__).parent / "scenarios"
FILES = sorted(SCENARIOS.glob("collections_*.json"))
FIELDS = ("client", "kind", "policy", "state", "template", "at", "payment_status")


def matching(actions: list[dict], expectation: dict) -> list[dict]:
    found = []
    for action in actions:
        if any(key in expectation and action[key] != expectation[key] for key in FIELDS):
            continue
        if "amount" in expectation and (action["amount"]["minor"] if action["amount"] else None) != expectation["amount"]:
            continue
        if all(text in action["reason"] for text in expectation.get("reason", [])):
            found.append(action)
    return found


@pytest.fixture(scope="module")
def results():
    """Replays shared by the tests of this module (templates are checked once per practice)."""
    import slotguard.wiring as wiring

    renderers = {}
    original = wiring.make_renderer

    def make_renderer(settings, policies, template_dir=None):
        key = (settings.practice.locale, settings.practice.timezone, template_dir or settings.mail.templates_dir)
        if key not in renderers:
            renderers[key] = original(settings, policies, template_dir)
        return renderers[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wiring, "make_renderer", make_renderer)
        yield {}


def replayed(path: Path, cache: dict) -> tuple[dict, dict]:
    if path.name not in cache:
        scenario = json.loads(path.read_text(encoding="utf-8"))
        cache[path.name] = (scenario, run_scenario(scenario))
    return cache[path.name]


def test_the_scenarios_cover_what_the_ladder_promises():
    names = {path.stem for path in FILES}
    assert {"collections_paid_after_reminder_1", "collections_paid_between_ticks", "collections_plan_fully_paid",
            "collections_plan_missed_installment", "collections_settlement_accepted", "collections_writeoff_below_threshold",
            "collections_refer_above_threshold", "collections_waived"} <= names


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_collections_scenario_produces_the_expected_actions(path, results):
    scenario, result = replayed(path, results)
    assert scenario["description"]
    assert result["problems"] == []
    assert [a for a in result["actions"] if a["state"] == "failed"] == [], "every email renders, every action is carried out"
    for expectation in scenario["expect"]:
        found = matching(result["actions"], expectation)
        context = f"{expectation}\n{describe(result['actions'], expectation['client'])}"
        if expectation.get("absent"):
            assert found == [], context
        elif "count" in expectation:
            assert len(found) == expectation["count"], context
        else:
            assert found, context


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
