"""Deterministic replay of a calendar timeline on a simulated clock.

A scenario is JSON: {"config": {same keys as the TOML}, "start", "end", "tick" (ISO 8601
duration or "15m"), "clients": {...}, "existing": [EVENT, ...], "steps": [{"at", "put": EVENT} | {"at", "delete": ID} |
{"at", "pay": EVENT_ID or ACTION_ID, "part": optional} | {"at", "mail": MAIL}]}. Events are Google
Calendar v3 Event resources. "pay" is the client paying what they owe for that appointment (or that charge):
the open settlement offer, else the next installment asked, else the rest, else the fee
("part": "settlement", "installment", "rest" or "fee" picks one; collections_ladder.payable).
"existing" are the events already in the calendar when Slotguard first reads it, at "start"
(bookings made before it watched: their clients get one introduction of the policy); every
"put" is a change made while it watches (a new event is a new booking).
"mail" is a message reaching the Slotguard inbox at "at" (slotguard/what_if/mail_steps.py):
{"from", "command": cancel | confirm | waive | charge_now | mark_paid | keep, "event_id" (the
appointment of a client's link; the open fee of that event for the practitioner's), "action"
(a fee's id instead), "token": "bad" for a forged one, "text": the body}, signed as the real
link would be under a secret replay keeps in memory; the tick's inbox step reads it, and the
result's "inbox" lists what it did with each message.
Replay uses the record-only provider, an in-memory mailer, inbox and ledger: it moves no
money, sends no mail, writes no file.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from integration.memory import MemoryCalendar, MemoryInbox, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.collections.views import PARTS, payable
from slotguard.config.schema import parse_settings
from slotguard.domain.durations import DurationError, parse_duration, parse_timestamp
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import Action, ActionKind
from slotguard.domain.tick_report import TickReport
from slotguard.mail.links import memory_secret
from slotguard.payments.paid import is_owed, record_paid
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from slotguard.what_if.mail_steps import REPLAY_SECRET, MailStepError, check_mail_step, mail_message

MAX_TICKS = 200_000


class ScenarioError(ValueError):
    """The scenario file cannot be used; the message names the problem."""


MAX_SCENARIO_BYTES = 50 * 1024 * 1024


def load_scenario(path: str | Path) -> dict[str, Any]:
    """Read a scenario file. Raises ScenarioError naming what is wrong: missing, a folder,
    unreadable, too large, not UTF-8, not JSON, nested too deeply, or not a JSON object."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_SCENARIO_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a folder; give the scenario's JSON file") from None
    except OSError as error:
        raise ScenarioError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{path}: larger than {MAX_SCENARIO_BYTES // (1024 * 1024)} MB; a scenario is a small JSON file")
    try:
        scenario = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {error.start} cannot be read); save it as UTF-8") from None
    except json.JSONDecodeError as error:
        raise ScenarioError(f"{path}: not valid JSON: {error}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: not usable JSON: arrays or objects are nested too deeply") from None
    if not isinstance(scenario, dict):
        raise ScenarioError(f"{path}: a scenario is a JSON object with config, start, end, tick and steps, not a {type(scenario).__name__}")
    return scenario


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
        "payment_status": action.context.get("payment_status", ""),
    }


def _pay(ledger: Ledger, target: str, part: str, now, where: str, problems: list[str]) -> None:
    """The client pays: mark what they owe for an appointment (or one charge) paid."""
    action = ledger.action(target)
    charge = action if action is not None and action.kind is ActionKind.CHARGE and not part else None
    if charge is None:
        event = (action.calendar_id, action.event_id) if action is not None else ("primary", target)
        charge = payable(ledger.actions(calendar_id=event[0], event_id=event[1]), part)
    if charge is None or not (charge.kind is ActionKind.CHARGE and is_owed(charge) and record_paid(ledger, charge, now, "paid by the client (replay step)")):
        problems.append(f"{where}: nothing owed for {target!r}" + (f" ({part})" if part else ""))


def run_scenario(scenario: dict[str, Any]) -> dict[str, Any]:
    """Run a scenario; return {"actions": [...], "problems": [...], "emails": {...}, "locale": the
    practice's, for showing amounts, "inbox": [what the inbox did with each message of a mail step]}.

    Raises ScenarioError or ConfigError naming what is wrong with the scenario.
    """
    if not isinstance(scenario, dict):
        raise ScenarioError("a scenario is a JSON object with config, start, end, tick and steps")
    config = copy.deepcopy(scenario.get("config") or {})
    if not isinstance(config, dict):
        raise ScenarioError(f"\"config\" is an object with the same keys as the TOML file, not a {type(config).__name__}")
    for section in ("calendar", "storage"):
        if not isinstance(config.setdefault(section, {}), dict):
            raise ScenarioError(f"config.{section} is an object, like [{section}] in the TOML file")
    config["calendar"]["source"] = "memory"
    config["storage"]["ledger"] = ":memory:"
    raw_steps = scenario.get("steps")
    with_inbox = "inbox" in config or (isinstance(raw_steps, list) and any(isinstance(item, dict) and "mail" in item for item in raw_steps))
    if with_inbox:  # an inbox in memory, its link secret too: no file is read or written
        if not isinstance(config.setdefault("inbox", {}), dict):
            raise ScenarioError("config.inbox is an object, like [inbox] in the TOML file")
        config["inbox"].setdefault("address", "slotguard@replay.invalid")
        # Mail that is no command is left where it is (no forward: that would keep the message in a file).
        config["inbox"].update(source="memory", secret_file=memory_secret("replay", REPLAY_SECRET), other_mail="leave")
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
    if step <= timedelta(0):
        raise ScenarioError(f"tick {scenario.get('tick')!r} must be longer than zero, e.g. \"15m\"")
    if not isinstance(scenario.get("steps") or [], list):
        raise ScenarioError("\"steps\" is a list of {\"at\", \"put\" | \"delete\" | \"pay\" | \"mail\"} objects")
    if (end - start) / step > MAX_TICKS:
        raise ScenarioError(f"more than {MAX_TICKS} ticks; use a longer tick")
    steps = []
    for index, item in enumerate(scenario.get("steps") or []):
        if not isinstance(item, dict):
            raise ScenarioError(f"steps[{index}]: a step is an object with \"at\" and \"put\", \"delete\", \"pay\" or \"mail\"")
        try:
            at = parse_timestamp(item["at"])
        except (KeyError, TypeError, DurationError) as error:
            raise ScenarioError(f"steps[{index}]: needs a valid \"at\" timestamp ({error})") from None
        if not {"put", "delete", "pay", "mail"} & set(item):
            raise ScenarioError(f"steps[{index}]: needs \"put\" (an event), \"delete\" (an event id), \"pay\" (an event or action id) "
                                "or \"mail\" (a message to the inbox)")
        if "mail" in item:
            try:
                check_mail_step(item["mail"])
            except MailStepError as error:
                raise ScenarioError(f"steps[{index}]: {error}") from None
        if "pay" in item and item.get("part", "") not in ("", *PARTS):
            raise ScenarioError(f"steps[{index}]: \"part\" is one of {', '.join(PARTS)}")
        if "put" in item and not (isinstance(item["put"], dict) and item["put"].get("id")):
            raise ScenarioError(f"steps[{index}]: \"put\" needs an event with an \"id\"")
        steps.append((at, index, item))
    steps.sort(key=lambda entry: (entry[0], entry[1]))

    calendar = MemoryCalendar("primary")
    mailer = MemoryMailer()
    ledger = Ledger.scratch()
    inbox = MemoryInbox() if with_inbox else None
    engine = build_engine(
        settings, start, ledger=ledger, calendars=[(calendar, NullWriteBack())], provider=RecordOnlyProvider(), mailer=mailer,
        inbox=inbox,
    )
    problems: list[str] = []
    existing = scenario.get("existing") or []
    if not isinstance(existing, list) or not all(isinstance(event, dict) and event.get("id") for event in existing):
        raise ScenarioError("\"existing\" is a list of events, each with an \"id\"")
    for event in existing:
        calendar.put(event, start)
    # Slotguard's first look at the calendar, before any step: what is there was booked before.
    first_look = TickReport()
    engine.sync_calendar(calendar, start, first_look)
    problems.extend(f"{start.isoformat()}: {problem}" for problem in first_look.problems)
    now = start
    pending = list(steps)
    while now <= end:
        while pending and pending[0][0] <= now:
            at, index, item = pending.pop(0)
            try:
                if "mail" in item and inbox is not None:
                    inbox.deliver(mail_message(ledger, item["mail"], at, index, settings.inbox.address, settings.inbox.link_valid_for), at)
                elif "pay" in item:
                    _pay(ledger, str(item["pay"]), str(item.get("part", "")), now, f"steps[{index}]", problems)
                elif "put" in item:
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
    handled = [{key: row[key] for key in ("received_at", "sender", "kind", "command", "event_id", "action_id", "outcome")}
               for row in ledger.mail_since(start)] if with_inbox else []
    ledger.close()
    return {"actions": actions, "problems": problems, "emails": emails, "locale": settings.practice.locale, "inbox": handled}


__all__ = ["run_scenario", "load_scenario", "ScenarioError"]
