"""`[collections]`: off unless configured; every problem reported at once with its path."""

import tomllib
from pathlib import Path

import pytest

from slotguard.config.schema import ConfigError
from tests.support.builders import settings

ROOT = Path(__file__).resolve().parents[3]


def test_collections_are_off_unless_steps_are_configured():
    assert not settings().collections.enabled
    assert settings(collections={"steps": [{"after": "3d", "template": "payment_reminder_1"}]}).collections.enabled


def test_every_ladder_problem_is_reported_at_once_with_its_path():
    with pytest.raises(ConfigError) as caught:
        settings(collections={
            "steps": [
                {"after": "14d", "template": "payment_reminder_1"},
                {"after": "3d", "template": "payment_remindr_2"},
                {"after": "30d", "action": "writeoff_or_refer", "template": "payment_final_notice"},
                {"after": "45d"},
            ],
            "plan": {"installments": 3, "min_installment": "20 EUR"},
            "writeoff_below": "150 SEK",
            "settlement": {"discount": "100%"},
        })
    problems = caught.value.problems
    expected = [
        "collections.steps.1.after: 3d is not after the previous step (14d)",
        "collections.steps.1.template: no template 'payment_remindr_2'",
        "collections.steps.2: a step with action = \"writeoff_or_refer\" sends nothing",
        "collections.steps.2.action: \"writeoff_or_refer\" ends the ladder, so make it the last step",
        "collections.steps.3.template: required",
        "collections.plan.min_installment: 20.00 EUR is not in the practice currency NOK",
        "collections.writeoff_below: 150.00 SEK is not in the practice currency NOK",
        "collections.settlement.discount: must be more than 0% and less than 100%",
    ]
    for text in expected:
        assert any(problem.startswith(text) for problem in problems), (text, problems)


def test_unknown_keys_and_floats_are_refused():
    with pytest.raises(ConfigError) as caught:
        settings(collections={"steps": [{"after": "3d", "template": "payment_reminder_1", "retry": True}], "writeoff_below": 150.0})
    assert any(p.startswith("collections.steps.0.retry: unknown key") for p in caught.value.problems)
    assert any(p.startswith("collections.writeoff_below") and "float" in p for p in caught.value.problems)


def test_the_commented_example_in_config_example_toml_is_valid():
    text = (ROOT / "config" / "example.toml").read_text(encoding="utf-8")
    block = text[text.index("# [collections]"):]
    uncommented = "\n".join(line[2:] if line.startswith("# ") else line for line in block.splitlines())
    ladder = tomllib.loads(uncommented)["collections"]
    collections = settings(collections=ladder).collections
    assert [step.after.days for step in collections.steps] == [3, 14, 30, 45]
    assert str(collections.writeoff_below) == "150.00 NOK" and str(collections.collection_cost) == "30%"
