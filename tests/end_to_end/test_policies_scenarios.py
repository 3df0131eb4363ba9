"""Every policy, and the interactions that matter, replayed through `replay` on a simulated
week: each scenario file in tests/end_to_end/scenarios/ (policy_*.json, interaction_*.json)
says what it shows (`description`) and lists the actions it must produce (`expect`).

An expectation names a client and an action kind, optionally a policy, state, template,
amount (minor units, null for none), time (`at`: when it was carried out) and texts its
reason contains (`reason`); it holds when that many actions match (`count`, default at least
one; `absent`: none). The runner is tests/support/scenarios.py.
"""

import json

import pytest

from slotguard.what_if.replay import run_scenario
from tests.support.scenarios import SCENARIOS, check_expectations, replayed, shared_renderers

FILES = sorted([*SCENARIOS.glob("policy_*.json"), *SCENARIOS.glob("interaction_*.json")])


@pytest.fixture(scope="module")
def results():
    """Replays shared by the tests of this module."""
    yield from shared_renderers()


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_scenario_produces_the_expected_actions_and_reasons(path, results):
    check_expectations(*replayed(path, results))


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_replaying_a_scenario_twice_gives_the_same_ledger(path, results):
    _, first = replayed(path, results)
    second = run_scenario(json.loads(path.read_text(encoding="utf-8")))
    assert second == first


def test_every_built_in_policy_has_a_scenario():
    from slotguard.policies.loading import DEFAULT_PLUGINS

    enabled = set()
    for path in FILES:
        enabled |= set(json.loads(path.read_text(encoding="utf-8"))["config"]["policies"]["enabled"])
    names = {module.rpartition(".")[2] for module in DEFAULT_PLUGINS}
    assert names - enabled == set()
