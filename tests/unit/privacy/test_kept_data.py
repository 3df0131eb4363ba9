"""What the ledger keeps of an event (titles: only the words policies look for), the migration
that takes titles out of an older ledger, the [privacy] settings, and the daily retention step
(real ledgers: SQLite; PostgreSQL with SLOTGUARD_TEST_BACKEND=postgresql)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from slotguard.config.types import ConfigError
from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import ActionKind, ActionState, ActionSubject, new_action
from slotguard.domain.money import Money
from slotguard.domain.tick_report import TickReport
from slotguard.intake.normalize import normalize
from slotguard.intake.tracker import Tracked
from slotguard.policies.owners import default_manager, tick_steps
from slotguard.policies.title_words import kept_title
from slotguard.privacy.retention import LAST_RUN
from slotguard.store.ledger import SCHEMA_VERSION, Ledger
from slotguard.store.rows import appointment_to_json
from slotguard.store.schema import TITLES_TAKEN_OUT
from tests.support.builders import event, settings

NOW = datetime(2027, 6, 15, 10, 0, tzinfo=UTC)
NOTE = "Intro session - physio after knee surgery #emergency"
WAIVER_POLICIES = {"enabled": ["no_show", "prospect_second_chance", "emergency_waiver"]}


def test_a_title_keeps_only_the_words_policies_look_for():
    with_words = settings(policies=WAIVER_POLICIES)
    appointment = normalize(event("e1", NOW, title=NOTE), "primary", with_words, NOW - timedelta(days=2)).appointment
    assert appointment.title == "intro | #emergency"
    assert "knee" not in appointment_to_json(appointment)
    assert "waive" in appointment.marks, "marks are still read from the whole title"
    # Policies not enabled are asked too, with their settings (simulate tries them).
    own_words = settings(policies={"prospect_second_chance": {"title_words": ["kickoff"]}})
    kickoff = normalize(event("e1", NOW, title="Kickoff - " + NOTE), "primary", own_words, NOW - timedelta(days=2)).appointment
    assert kickoff.title == "kickoff | #emergency"
    notes = normalize(event("e1", NOW, title="Physio after knee surgery"), "primary", settings(), NOW - timedelta(days=2)).appointment
    assert notes.title == "", "a title without a word any policy looks for is not kept at all"


def test_kept_title_matches_whole_words_and_never_joins_two_into_a_phrase():
    assert kept_title("Introductory call", ("intro",)) == ""
    assert kept_title("first visit, then meeting", ("first", "meeting", "first meeting")) == "first | meeting"
    assert "first meeting" not in kept_title("first visit, then meeting", ("first", "meeting", "first meeting"))


def test_an_unknown_event_that_ended_before_the_retention_period_is_not_a_booking():
    practice = settings()
    old = NOW - practice.privacy.retention - timedelta(days=2)
    result = normalize(event("e1", old), "primary", practice, NOW)
    assert result.appointment is None and "retention" in result.skipped
    recent = normalize(event("e2", NOW - timedelta(days=20)), "primary", practice, NOW)
    assert recent.appointment is not None


def test_privacy_settings_default_and_are_checked_against_the_calendar_window():
    practice = settings()
    assert practice.privacy.retention == timedelta(days=548) and practice.privacy.bookkeeping_years == 10
    with pytest.raises(ConfigError) as error:
        settings(privacy={"retention": "30d"})
    assert any(problem.startswith("privacy.retention:") and "window_past" in problem for problem in error.value.problems)
    with pytest.raises(ConfigError) as error:
        settings(privacy={"retention": "2000d", "bookkeeping_years": 5})
    assert any("bookkeeping_years" in problem for problem in error.value.problems)
    with pytest.raises(ConfigError):
        settings(privacy={"bookkeeping_years": 0})
    assert settings(privacy={"retention": "365d", "bookkeeping_years": 5}).privacy.bookkeeping_years == 5


def _old_ledger(path, start: datetime) -> None:
    """A ledger as schema 3 left it: snapshots with the whole title."""
    ledger = Ledger(path)
    if not ledger.place.postgres:
        ledger.db.execute("PRAGMA secure_delete=OFF")  # as an older Slotguard wrote: freed space not overwritten
    practice = settings()
    with ledger.transaction():
        for event_id, outcome in (("open", ""), ("settled", "attended")):
            appointment = normalize(event(event_id, start), "primary", practice, start - timedelta(days=3)).appointment
            ledger.save_tracked(Tracked(appointment, "", outcome, start - timedelta(days=3)))
            # An edit leaves the old copy (a long note: on overflow pages) in free space.
            for title in ("Physio after knee surgery: " + "notes " * 1500, f"Physio after knee surgery ({event_id})"):
                stored = json.loads(appointment_to_json(appointment))
                stored["title"] = title
                ledger.db.execute("UPDATE appointments SET snapshot = ? WHERE event_id = ?", (json.dumps(stored, separators=(",", ":")), event_id))
        ledger.set_meta("full_sync:primary", to_utc_text(start))
        ledger.set_meta("schema_version", str(TITLES_TAKEN_OUT - 1))
    ledger.close()


def test_the_migration_takes_titles_out_of_an_older_ledger(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    _old_ledger(path, NOW)
    if path.exists():  # SQLite (on PostgreSQL the test hook keeps no file)
        raw = b"".join(found.read_bytes() for found in tmp_path.glob("ledger.sqlite3*"))
        assert b"knee surgery" in raw, "the test can fail: the old file holds the titles"
    ledger = Ledger(path)
    try:
        assert ledger.meta("schema_version") == str(SCHEMA_VERSION)
        rows = {row["event_id"]: dict(row) for row in ledger.db.execute("SELECT event_id, snapshot, fingerprint FROM appointments")}
        assert all("knee" not in row["snapshot"] for row in rows.values())
        assert ledger.tracked("primary", "open").appointment.title == ""
        assert rows["open"]["fingerprint"] == "", "an open appointment is read again in full"
        assert rows["settled"]["fingerprint"] != ""
        assert ledger.meta("full_sync:primary") is None, "the next tick lists every calendar in full"
        if not ledger.place.postgres:
            ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            raw = b"".join(found.read_bytes() for found in tmp_path.glob("ledger.sqlite3*"))
            assert b"knee surgery" not in raw, "the old titles are overwritten in the file, not left in free space"
    finally:
        ledger.close()


def _retention_step():
    steps = [step for step in tick_steps(default_manager()) if step.name == "retention"]
    assert len(steps) == 1, "the retention feature is registered"
    return steps[0]


def _closed_fee(ledger: Ledger, event_id: str, start: datetime) -> None:
    practice = settings()
    with ledger.transaction():
        appointment = normalize(event(event_id, start), "primary", practice, start - timedelta(days=1)).appointment
        ledger.save_tracked(Tracked(appointment, "", "no_show", start - timedelta(days=1)))
        subject = ActionSubject.of_appointment(appointment)
        fee = new_action(subject, ActionKind.CHARGE, "no_show", "fee", key=f"{event_id}/no_show", now=start,
                         state=ActionState.DONE, amount=Money(50000, "NOK"), context={"payment_status": "paid"})
        ledger.add_action(fee)


def test_the_retention_step_prunes_once_a_day_not_every_tick(tmp_path):
    practice = settings()
    step = _retention_step()
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        morning = datetime(2027, 6, 15, 6, 0, tzinfo=UTC)  # 08:00 in Oslo
        # Its last activity (the start) becomes older than the retention period at 09:00 UTC.
        start = morning + timedelta(hours=3) - practice.privacy.retention
        _closed_fee(ledger, "e1", start)
        step.run(practice, ledger, None, morning, TickReport())
        assert ledger.meta(LAST_RUN) == to_utc_text(morning)
        assert ledger.tracked("primary", "e1") is not None, "not yet past the retention period"
        for hour in (4, 8, 12):  # later ticks that day: nothing runs
            step.run(practice, ledger, None, morning + timedelta(hours=hour), TickReport())
        assert ledger.meta(LAST_RUN) == to_utc_text(morning)
        assert ledger.tracked("primary", "e1") is not None, "pruned once a day, not every tick"
        next_day = morning + timedelta(days=1)
        step.run(practice, ledger, None, next_day, TickReport())
        assert ledger.meta(LAST_RUN) == to_utc_text(next_day)
        assert ledger.tracked("primary", "e1") is None
        client = ledger.db.execute("SELECT client_email FROM actions WHERE event_id = 'e1'").fetchone()["client_email"]
        assert client.startswith("client-") and "@" not in client
    finally:
        ledger.close()


def test_the_daily_pruning_is_logged_in_counts_never_who(tmp_path, caplog):
    practice = settings()
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        _closed_fee(ledger, "e1", NOW - timedelta(days=700))
        with caplog.at_level("INFO", logger="slotguard.retention"):
            _retention_step().run(practice, ledger, None, NOW, TickReport())
        lines = [record.getMessage() for record in caplog.records if record.name == "slotguard.retention"]
        assert len(lines) == 1 and "appointments=1" in lines[0] and "pseudonymised=1" in lines[0]
        assert "ana" not in lines[0].lower() and "example.com" not in lines[0]
    finally:
        ledger.close()


def test_a_crash_in_the_middle_of_pruning_leaves_the_ledger_as_it_was(tmp_path, monkeypatch):
    from slotguard.privacy import retention
    from slotguard.store import retention_rows

    practice = settings()
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        _closed_fee(ledger, "e1", NOW - timedelta(days=700))
        _closed_fee(ledger, "e2", NOW - timedelta(days=690))

        def crash(db, action):
            raise RuntimeError("power cut")

        monkeypatch.setattr(retention_rows, "rewrite_action", crash)
        with pytest.raises(RuntimeError):
            retention.prune_daily(ledger, practice, NOW)
        assert ledger.tracked("primary", "e1") is not None and ledger.tracked("primary", "e2") is not None
        assert ledger.meta(LAST_RUN) is None, "the day is not marked done: the next tick runs it again"
        monkeypatch.undo()
        assert retention.prune_daily(ledger, practice, NOW).appointments == 2
    finally:
        ledger.close()


def test_a_series_confirmation_stays_while_the_series_goes_on(tmp_path):
    """A weekly client booked two years ago: the first instance is pruned, but its booking
    confirmation stays while later instances are kept, so the series is not confirmed again."""
    from slotguard.privacy.retention import prune

    practice = settings()
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        with ledger.transaction():
            for event_id, start, series in (("w_old", NOW - timedelta(days=700), "weekly"), ("w_new", NOW - timedelta(days=7), "weekly"),
                                            ("x_old", NOW - timedelta(days=700), "ended")):
                resource = event(event_id, start) | {"recurringEventId": series}
                appointment = normalize(resource, "primary", practice, start - timedelta(days=1)).appointment
                ledger.save_tracked(Tracked(appointment, "", "attended", start - timedelta(days=1)))
                if event_id.endswith("_old"):
                    ledger.add_action(new_action(ActionSubject.of_appointment(appointment), ActionKind.EMAIL, "lifecycle", "booked",
                                                 key=f"{event_id}/booked", now=start - timedelta(days=1), state=ActionState.DONE,
                                                 template="booking_confirmation", context={"series_id": series}))
        pruned = prune(ledger, NOW - practice.privacy.retention, datetime(2017, 1, 1, tzinfo=UTC))
        assert pruned.appointments == 2 and pruned.emails == 1
        assert ledger.series_confirmed("ana@example.com", "weekly"), "the going series keeps its confirmation"
        assert not ledger.series_confirmed("ana@example.com", "ended"), "an ended series' confirmation is pruned with it"
    finally:
        ledger.close()
