"""Two events of one page under one id (slotguard/store/containment.py `unique_ids`), through
the engine: neither is read, the appointment known by that id stays as it was, one problem
names both, and the page, though its source calls it full, deletes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack, SyncPage
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

MONDAY = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


class DoublingCalendar(MemoryCalendar):
    """A faulty source: its listing is full, and may carry one id twice."""

    def __init__(self) -> None:
        super().__init__("primary")
        self.extra: list[dict] = []

    def pages(self, sync_token: str | None, now: datetime) -> Iterator[SyncPage]:
        events = [dict(each) for each in self.events.values() if each.get("status") != "cancelled"]
        yield SyncPage(events=events + self.extra, full=True, last=True, next_sync_token=str(self.version))


def _state(ledger: Ledger) -> dict:
    return {
        "appointments": {t.appointment.event_id: (t.appointment.client.email, t.appointment.start, t.cancellation) for t in ledger.all_tracked()},
        "actions": sorted((a.id, a.kind.value, a.state.value, a.event_id) for a in ledger.actions()),
    }


def test_two_events_under_one_id_are_one_problem_and_change_nothing(tmp_path):
    calendar, mailer, ledger = DoublingCalendar(), MemoryMailer(), Ledger(tmp_path / "ledger.sqlite3")
    engine = build_engine(settings(mail={"digest_hour": -1}), MONDAY, ledger=ledger, calendars=[(calendar, NullWriteBack())],
                          provider=RecordOnlyProvider(), mailer=mailer)
    calendar.put(event("ana-1", MONDAY + timedelta(days=2)), MONDAY)
    calendar.put(event("cy-1", MONDAY + timedelta(days=3), client="cy@example.com", name="Cy"), MONDAY)
    assert engine.tick(MONDAY).problems == []
    before, sent = _state(ledger), set(mailer.sent)

    calendar.extra = [event("ana-1", MONDAY + timedelta(days=4), client="mallory@example.com", name="Mallory\nRING", title="Mallory's")]
    del calendar.events["cy-1"]  # missing from a listing that is no longer full: not taken as deleted
    report = engine.tick(MONDAY + timedelta(minutes=5))

    assert _state(ledger) == before
    assert set(mailer.sent) == sent
    [problem] = [each for each in report.problems if "ana-1" in each]
    assert "2 events in the calendar have this id ('Massage' and \"Mallory's\")" in problem and "\n" not in problem, problem

    calendar.extra = []
    calendar.put(event("cy-1", MONDAY + timedelta(days=3), client="cy@example.com", name="Cy"), MONDAY)
    assert engine.tick(MONDAY + timedelta(minutes=10)).problems == []
    assert _state(ledger) == before


def test_a_page_without_shared_ids_is_given_back_as_it_is():
    from slotguard.store.containment import unique_ids

    page = SyncPage(events=[{"id": "a"}, {"id": "b"}, {"status": "cancelled"}, {"status": "cancelled"}], full=True, last=True)
    assert unique_ids(page) is page
    assert unique_ids(replace(page, events=[{"id": "a"}, {"id": "a"}])).full is False
