"""The loop on hostile calendar input: a real SQLite ledger, a real outbox folder, an
in-memory calendar. Issue 11 as the practitioner meets it: one bad event never stops the
others (item 10)."""

import dataclasses
import email
import email.policy
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from integration.memory import MemoryCalendar
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.hookspecs import hookimpl
from slotguard.interfaces import NullWriteBack, SyncPage
from slotguard.ledger import Ledger
from slotguard.model import MONEY_KINDS
from slotguard.plugins import Policy, PolicyInfo, _hooks_of, plugin_manager
from slotguard.wiring import build_engine
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
AFTER_REVIEW = WEDNESDAY_10 + timedelta(days=1)


class Loop:
    def __init__(self, tmp_path, sources_before=(), extra_policies=(), **sections):
        self.settings = settings(**sections)
        self.calendar = MemoryCalendar("primary")
        calendars = [*((source, NullWriteBack()) for source in sources_before), (self.calendar, NullWriteBack())]
        self.outbox = OutboxDirMailer(tmp_path / "outbox")
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        engine = build_engine(
            self.settings, MONDAY, ledger=self.ledger,
            calendars=calendars,
            provider=RecordOnlyProvider(), mailer=self.outbox,
        )
        self.engine = dataclasses.replace(engine, policies=[*engine.policies, *extra_policies]) if extra_policies else engine

    def put(self, resource, at=MONDAY):
        self.calendar.put(resource, at)

    def tick(self, at):
        return self.engine.tick(at)

    def fees(self, event_id=None):
        return [a for a in self.ledger.actions(event_id=event_id) if a.kind in MONEY_KINDS]

    def messages(self):
        folder = self.outbox.folder
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in sorted(folder.glob("*.eml"))] if folder.exists() else []

    def problems(self):
        return {p["item"]: p["message"] for p in self.ledger.problems()}


# -- item 10: one failing event, calendar or step never stops the others ----------------------


class _Crashes:
    """A third-party policy with a bug that fires for one client."""

    @hookimpl
    def slotguard_propose(self, happening, appointment):
        if appointment.client.email == "bo@example.com":
            raise RuntimeError("policy bug")
        return []


def _crashing_policy() -> Policy:
    manager = plugin_manager()
    plugin = _Crashes()
    manager.register(plugin, name="crashes")
    return Policy(info=PolicyInfo(name="crashes", role="fee"), config=None, hooks=_hooks_of(manager, plugin))


def test_any_exception_while_processing_one_event_rolls_back_only_that_event(tmp_path):
    loop = Loop(tmp_path, extra_policies=[_crashing_policy()], mail={"digest_hour": -1})
    loop.put(event("ana", WEDNESDAY_10))
    loop.put(event("bo", WEDNESDAY_10 + timedelta(hours=2), client="bo@example.com"))
    loop.put(event("cy", WEDNESDAY_10 + timedelta(hours=4), client="cy@example.com"))
    report = loop.tick(MONDAY)
    assert loop.ledger.tracked("primary", "bo") is None, "its snapshot was rolled back with the rest of it"
    assert loop.ledger.happenings_for("primary", "bo") == [] and loop.ledger.actions(event_id="bo") == []
    assert "RuntimeError" in loop.problems()["bo"] and "policy bug" in loop.problems()["bo"]
    assert {m["To"].addresses[0].addr_spec for m in loop.messages()} == {"ana@example.com", "cy@example.com"}
    assert report.planned["email:planned"] == 2, "the rolled-back event's plans are not counted"


class _BrokenSource:
    """A calendar source with a bug: raises something that is not an AdapterError."""

    calendar_id = "broken"

    def pages(self, sync_token, now):
        raise KeyError("surprise")
        yield SyncPage(events=[], full=False, last=True)  # pragma: no cover


def test_a_calendar_that_raises_anything_is_reported_and_the_tick_goes_on(tmp_path):
    loop = Loop(tmp_path, sources_before=[_BrokenSource()], mail={"digest_hour": -1})
    loop.put(event("e1", WEDNESDAY_10))
    report = loop.tick(MONDAY)
    assert any("broken" in problem and "KeyError" in problem for problem in report.problems)
    assert [m["To"].addresses[0].addr_spec for m in loop.messages()] == ["ana@example.com"], "later calendars and phases ran"
    assert "KeyError" in {s["calendar_id"]: s["last_error"] for s in loop.ledger.sync_states()}["broken"]


def test_a_problem_clears_once_the_event_reads_again(tmp_path):
    loop = Loop(tmp_path, mail={"digest_hour": -1})
    loop.put(event("e1", WEDNESDAY_10, description="price: a lot"))
    loop.tick(MONDAY)
    assert "price" in loop.problems()["e1"] and loop.ledger.tracked("primary", "e1") is None
    loop.put(event("e1", WEDNESDAY_10, description="price: 1200 NOK"), MONDAY + timedelta(hours=1))
    loop.tick(MONDAY + timedelta(hours=1))
    assert loop.problems() == {} and loop.ledger.tracked("primary", "e1").appointment.price.minor == 120000
