"""Replaying the scenario files in tests/end_to_end/scenarios/ and checking their `expect`
lists (the policy, interaction and collections scenario tests share this).

An expectation names a client and an action kind, optionally other fields of the replayed
action (`fields`), an amount (minor units, null for none) and texts its reason contains
(`reason`); it holds when that many actions match (`count`, default at least one; `absent`:
none).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from slotguard.what_if.replay import run_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "end_to_end" / "scenarios"
FIELDS = ("client", "kind", "policy", "state", "template", "at")


def matching(actions: list[dict], expectation: dict, fields: tuple[str, ...] = FIELDS) -> list[dict]:
    found = []
    for action in actions:
        if any(key in expectation and action[key] != expectation[key] for key in fields):
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


def check_expectations(scenario: dict, result: dict, fields: tuple[str, ...] = FIELDS) -> None:
    """A scenario says what it shows, replays without problems or failed actions, and every
    expectation in its `expect` list holds."""
    assert scenario["description"], "say what the scenario shows"
    assert result["problems"] == []
    failed = [a for a in result["actions"] if a["state"] == "failed"]
    assert failed == [], "nothing fails: every email renders, every money action is carried out"
    for expectation in scenario["expect"]:
        found = matching(result["actions"], expectation, fields)
        context = f"{expectation}\n{describe(result['actions'], expectation['client'])}"
        if expectation.get("absent"):
            assert found == [], context
        elif "count" in expectation:
            assert len(found) == expectation["count"], context
        else:
            assert found, context


def shared_renderers() -> Iterator[dict]:
    """For a module-scoped fixture: one renderer per practice (checking every template in
    every locale takes seconds at each engine start; the template tests own that), and a
    cache for `replayed`."""
    import slotguard.run.wiring as wiring

    renderers = {}
    original = wiring.make_renderer

    def make_renderer(settings, policies, template_dir=None, *, check=True):
        key = (settings.practice.locale, settings.practice.timezone, template_dir or settings.mail.templates_dir)
        if key not in renderers:
            renderers[key] = original(settings, policies, template_dir, check=check)
        return renderers[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wiring, "make_renderer", make_renderer)
        yield {}


def replayed(path: Path, cache: dict) -> tuple[dict, dict]:
    """(scenario, replay result) of one file, replayed once per module."""
    if path.name not in cache:
        scenario = json.loads(path.read_text(encoding="utf-8"))
        cache[path.name] = (scenario, run_scenario(scenario))
    return cache[path.name]
