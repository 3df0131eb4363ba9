"""Deterministic replay of a calendar timeline on a simulated clock.

A scenario is JSON: {"config": {same keys as the TOML}, "start", "end", "tick" (ISO 8601
duration or "15m"), "clients": {...}, "steps": [{"at", "put": EVENT} | {"at", "delete": ID}]}.
Events are Google Calendar v3 Event resources. Replay uses the record-only provider, an
in-memory mailer and an in-memory ledger: it moves no money, sends no mail, writes no file.
"""

from __future__ import annotations

import copy
import json

from pathlib import Path
from typing import Any

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.config import ConfigError, parse_settings
from slotguard.durations import DurationError, parse_duration, parse_timestamp
from slotguard.interfaces import NullWriteBack
from slotguard.ledger import Ledger
from slotguard.model import Action
from slotguard.wiring import build_engine

MAX_TICKS = 200_000


class ScenarioError(ValueError):
    """The scenario file cannot be used; the message names the problem."""


def load_scenario(path: str | Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except json.JSONDecodeError as error:
        raise ScenarioError(f"{path}: not valid JSON: {error}") from None


def action_record(action: Action, zone) -> dict[str, Any]:
    at = action.executed_at or action.due_at
    return {
        "id": action.id,
        "at": at.astimezone(zone).isoformat(),
        "kind": action.kind.value,
        "state": action.state.value,
        "event_id": action.event_id,
        "client": action.client_email,
        "policy": action.policy,
        "reason": action.reason,
        "amount": action.amount.as_json() if action.amount else None,
        "template": action.template,
    }


def run_scenario(scenario: dict[str, Any]) -> dict[str, Any]:
    """Run a scenario; return {"actions": [...], "problems": [...], "emails": {...}}.

    Raises ScenarioError or ConfigError naming what is wrong with the scenario.
    """
    if not isinstance(scenario, dict):
        raise ScenarioError("a scenario is a JSON object with config, start, end, tick and steps")
    config = copy.deepcopy(scenario.get("config") or {})
    calendar_config = config.setdefault("calendar", {})
    calendar_config["source"] = "memory"
    config.setdefault("storage", {})["ledger"] = ":memory:"
    settings = parse_settings(config, "scenario config")
    try:
        start = parse_timestamp(scenario["start"])
        end = parse_timestamp(scenario["end"])
        step = parse_duration(scenario.get("tick", "PT15M"))
    except KeyError as error:
        raise ScenarioError(f"the scenario needs {error.args[0]!r}") from None
    except DurationError as error:
        raise ScenarioError(str(error)) from None
    if end < start:
        raise ScenarioError("end is before start")
    if (end - start) / step > MAX_TICKS:
        raise ScenarioError(f"more than {MAX_TICKS} ticks; use a longer tick")
    steps = []
    for index, item in enumerate(scenario.get("steps") or []):
        try:
            at = parse_timestamp(item["at"])
        except (KeyError, TypeError, DurationError) as error:
            raise ScenarioError(f"steps[{index}]: needs a valid \"at\" timestamp ({error})") from None
        if "put" not in item and "delete" not in item:
            raise ScenarioError(f"steps[{index}]: needs \"put\" (an event) or \"delete\" (an event id)")
        if "put" in item and not (isinstance(item["put"], dict) and item["put"].get("id")):
            raise ScenarioError(f"steps[{index}]: \"put\" needs an event with an \"id\"")
        steps.append((at, index, item))
    steps.sort(key=lambda entry: (entry[0], entry[1]))

    calendar = MemoryCalendar("primary")
    mailer = MemoryMailer()
    ledger = Ledger(":memory:")
    engine = build_engine(
        settings, start, ledger=ledger, calendars=[(calendar, NullWriteBack())], provider=RecordOnlyProvider(), mailer=mailer
    )
    problems: list[str] = []
    now = start
    pending = list(steps)
    while now <= end:
        while pending and pending[0][0] <= now:
            at, index, item = pending.pop(0)
            try:
                if "put" in item:
                    calendar.put(item["put"], at)
                else:
                    calendar.delete(str(item["delete"]), at)
            except KeyError as error:
                problems.append(f"steps[{index}]: {error.args[0]}")
        report = engine.tick(now)
        problems.extend(f"{now.isoformat()}: {problem}" for problem in report.problems)
        now += step
    zone = settings.zone
    actions = sorted(
        (action_record(action, zone) for action in ledger.actions()), key=lambda record: (record["at"], record["id"])
    )
    emails = {
        action_id: {"to": message["To"], "subject": message["Subject"]} for action_id, message in mailer.sent.items()
    }
    ledger.close()
    return {"actions": actions, "problems": problems, "emails": emails}


__all__ = ["run_scenario", "load_scenario", "ScenarioError"]
