"""Every policy, and the interactions that matter, replayed through `replay` on a simulated
week: each scenario file in tests/end_to_end/scenarios/ (policy_*.json, interaction_*.json)
says what it shows (`description`) and lists the actions it must produce (`expect`).

An expectation names a client and an action kind, optionally a policy, state, template,
amount (minor units, null for none), time (`at`: when it was carried out) and texts its
reason contains (`reason`); it holds when that many actions match (`count`, default at least
one; `absent`: none).
"""

import json
from pathlib import Path

import pytest

from slotguard.replay import run_scenario

SCENARIOS = Path(__file__).parent / "scenarios"
FILES = sorted([*SCENARIOS.glob("policy_*.json"), *SCENARIOS.glob("interaction_*.json")])
FIELDS = ("client", "kind", "policy", "state", "template", "at")


def matching(actions: list[dict], expectation: dict) -> list[dict]:
    found = []
    for action in actions:
        if any(key in expectation and action[key] != expectation[key] for key in FIELDS):
            continue
        if "amount" in expectation:
            amount = action["amount"]["minor"] if action["amount"] else None
            if amount != expectation["amount"]:
                continue
        if not all(text in action["reason"] for text in expectation.get("reason", [])):
            continue
        found.append(action)
    return found


def describe(actions: list[dict], client: str) -> str:
    return "\n".join(
        f"  {a['at']} {a['kind']:<8} {a['state']:<14} {a['policy']:<22} {a['amount'] and a['amount']['minor']} {a['template'] or ''} | {a['reason']}"
        for a in actions
        if a["client"] == client
    )


@pytest.fixture(scope="module")
def results():
    """Replays shared by the tests of this module. Checking every template in every locale
    takes seconds at each engine start; it is done once here (the template tests own it)."""
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


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_scenario_produces_the_expected_actions_and_reasons(path, results):
    scenario, result = replayed(path, results)
    assert scenario["description"], "say what the scenario shows"
    assert result["problems"] == []
    failed = [a for a in result["actions"] if a["state"] == "failed"]
    assert failed == [], "nothing fails: every email renders, every money action is carried out"
    for expectation in scenario["expect"]:
        found = matching(result["actions"], expectation)
        context = f"{expectation}\n{describe(result['actions'], expectation['client'])}"
        if expectation.get("absent"):
            assert found == [], context
            continue
        if "count" in expectation:
            assert len(found) == expectation["count"], context
        else:
            assert found, context


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_replaying_a_scenario_twice_gives_the_same_ledger(path, results):
    _, first = replayed(path, results)
    second = run_scenario(json.loads(path.read_text(encoding="utf-8")))
    assert second == first


def test_every_built_in_policy_has_a_scenario():
    from slotguard.plugins import DEFAULT_PLUGINS

    enabled = set()
    for path in FILES:
        enabled |= set(json.loads(path.read_text(encoding="utf-8"))["config"]["policies"]["enabled"])
    names = {module.rpartition(".")[2] for module in DEFAULT_PLUGINS}
    assert names - enabled == set()
