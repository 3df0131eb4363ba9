"""Replay's mail steps (slotguard/what_if/mail_steps.py): messages to the inbox signed as the
real links would be, a forged token, and clear errors for a step that cannot be used."""

from __future__ import annotations

import copy
import json

import pytest

from slotguard.what_if.replay import ScenarioError, run_scenario
from tests.support.scenarios import SCENARIOS

SCENARIO = json.loads((SCENARIOS / "interaction_email_cancel.json").read_text(encoding="utf-8"))


def with_steps(*steps: dict) -> dict:
    scenario = copy.deepcopy(SCENARIO)
    scenario["steps"] = [step for step in scenario["steps"] if "put" in step] + list(steps)
    return scenario


def charges(result: dict, client: str) -> list[int]:
    return [a["amount"]["minor"] for a in result["actions"] if a["kind"] == "charge" and a["client"] == client]


def test_a_cancel_step_is_carried_out_and_a_forged_one_is_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_scenario(with_steps(
        {"at": "2026-03-05T07:00:00+01:00", "mail": {"from": "ana@example.com", "command": "cancel", "event_id": "e2"}},
        {"at": "2026-03-05T07:00:00+01:00", "mail": {"from": "bo@example.com", "command": "cancel", "event_id": "e3", "token": "bad"}},
    ))
    assert result["problems"] == []
    assert charges(result, "ana@example.com") == [45000] and charges(result, "bo@example.com") == []
    assert [(row["sender"], row["command"], row["outcome"]) for row in result["inbox"]] == [
        ("ana@example.com", "cancel", "cancelled by the client"), ("bo@example.com", "", "left")]  # a client's forged link: not acted on, left for the practitioner
    assert list(tmp_path.iterdir()) == []  # no secret file, no data folder: replay writes nothing


def test_the_same_scenario_gives_the_same_result_twice():
    assert run_scenario(copy.deepcopy(SCENARIO)) == run_scenario(copy.deepcopy(SCENARIO))


def test_a_link_for_an_event_that_is_not_there_is_a_problem_of_the_step():
    result = run_scenario(with_steps(
        {"at": "2026-03-05T07:00:00+01:00", "mail": {"from": "ana@example.com", "command": "cancel", "event_id": "nope"}},
        {"at": "2026-03-05T07:00:00+01:00", "mail": {"from": "lena@example.com", "command": "waive", "event_id": "e2"}},
    ))
    assert [problem.split(":", 1)[0] for problem in result["problems"]] == ["steps[3]", "steps[4]"]
    assert "no appointment 'nope'" in result["problems"][0] and "no open fee of event 'e2'" in result["problems"][1]


@pytest.mark.parametrize(("mail", "says"), [
    ("cancel", '"mail" is an object'),
    ({"command": "cancel", "event_id": "e2"}, 'needs "from"'),
    ({"from": "Ana <ana@example.com>", "command": "cancel", "event_id": "e2"}, 'needs "from"'),
    ({"from": "ana@example.com", "command": "refund", "event_id": "e2"}, 'one of cancel'),
    ({"from": "ana@example.com", "command": "cancel"}, 'needs "event_id"'),
    ({"from": "lena@example.com", "command": "waive"}, 'needs "event_id" (that event\'s open fee) or "action"'),
    ({"from": "ana@example.com", "command": "cancel", "event_id": 2}, '"event_id" is text'),
    ({"from": "ana@example.com", "command": "cancel", "event_id": "e2", "body": "x"}, "has no 'body'"),
])
def test_a_mail_step_that_cannot_be_used_is_named(mail, says):
    with pytest.raises(ScenarioError) as error:
        run_scenario(with_steps({"at": "2026-03-05T07:00:00+01:00", "mail": mail}))
    assert str(error.value).startswith("steps[3]: ") and says in str(error.value)


def test_a_secret_kept_in_memory_is_for_replay_only():
    from slotguard.config.schema import ConfigError
    from tests.support.builders import settings

    with pytest.raises(ConfigError, match="for replay only"):
        settings(inbox={"source": "gmail", "address": "lena+slotguard@example.com", "secret_file": "memory:replay"})
