"""What a client invited to an appointment can read of Slotguard's notes and the
practitioner's marks (issue 11, item 16).

Google shows an event's title and description to everyone invited, in their own calendar;
its colour and `extendedProperties.private` belong to the practitioner's calendar alone. So
the status line goes only onto events no one else can read, unless the practitioner opts in,
and the practitioner is warned when a fee mark can only be written as a visible tag.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from integration.google_calendar import open_calendars
from integration.memory import MemoryCalendar, MemoryMailer
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.config.schema import ConfigError, parse_settings
from slotguard.domain.interfaces import NullWriteBack
from slotguard.practitioner.digest import digest_details
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import config, event
from tests.support.builders import settings as practice_settings

ROOT = Path(__file__).resolve().parents[2]
OSLO = ZoneInfo("Europe/Oslo")


def invited(event_id: str, start: datetime, **extra) -> dict:
    """The practitioner's event with the client invited: the client's calendar shows its
    title and description."""
    return {
        "id": event_id, "summary": "Massage – Kari",
        "description": "Kari: shoulder, left side.",
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Oslo"},
        "organizer": {"email": "lena@example.com", "self": True},
        "attendees": [
            {"email": "lena@example.com", "organizer": True, "self": True, "responseStatus": "accepted"},
            {"email": "kari@example.com", "displayName": "Kari", "responseStatus": "accepted"},
        ],
        **extra,
    }


def not_invited(event_id: str, start: datetime) -> dict:
    """The client named by an `email:` line: no one but the practitioner sees the event."""
    return {
        "id": event_id, "summary": "Massage", "description": "email: ola@example.com",
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Oslo"},
        "organizer": {"email": "lena@example.com", "self": True},
    }


def practice_on(fake, credentials, tmp_path, now, **calendar):
    settings = practice_settings(
        calendar={"source": "google", "calendar_ids": ["primary"], "api_endpoint": fake.api_endpoint, **calendar},
        storage={"data_dir": str(tmp_path / "data")},
        mail={"quiet_hours": ""},  # on the real clock, quiet hours would make when fees and emails go depend on the hour the tests run
    )
    calendars = open_calendars(settings, credentials=credentials(), retry_budget=0, sleep=lambda s: None)
    return build_engine(settings, now, ledger=Ledger(tmp_path / "ledger.sqlite3"), calendars=calendars,
                        provider=RecordOnlyProvider(), mailer=OutboxDirMailer(tmp_path / "outbox"))


def no_show_fee(fake, engine, t0, *event_ids):
    for event_id in event_ids:
        fake.modify_event("primary", event_id, colorId="11")  # tomato: private to the practitioner
    engine.tick(t0 + timedelta(hours=2))


def test_by_default_the_client_invited_to_the_event_reads_no_slotguard_line(google_fake, google_credentials, tmp_path):
    t0 = datetime.now(UTC).replace(microsecond=0)
    engine = practice_on(google_fake, google_credentials, tmp_path, t0)
    google_fake.put_event("primary", invited("kari1", t0 + timedelta(hours=1)))
    google_fake.put_event("primary", not_invited("ola1", t0 + timedelta(hours=1)))
    engine.tick(t0)
    no_show_fee(google_fake, engine, t0, "kari1", "ola1")

    kari = google_fake.get_event("primary", "kari1")
    assert kari["description"] == "Kari: shoulder, left side."  # what Kari sees in her own calendar
    assert kari["summary"] == "Massage – Kari"
    assert kari["extendedProperties"]["private"]["slotguard_state"] == "pending_review"  # the practitioner's own state
    # No one else can read Ola's event: the practitioner gets the status line there.
    assert "Slotguard: no-show fee 900.00 NOK pending review" in google_fake.get_event("primary", "ola1")["description"]


def test_with_write_note_always_the_invited_client_reads_the_line(google_fake, google_credentials, tmp_path):
    t0 = datetime.now(UTC).replace(microsecond=0)
    engine = practice_on(google_fake, google_credentials, tmp_path, t0, write_note="always")
    google_fake.put_event("primary", invited("kari1", t0 + timedelta(hours=1)))
    engine.tick(t0)
    no_show_fee(google_fake, engine, t0, "kari1")
    description = google_fake.get_event("primary", "kari1")["description"]
    assert description.startswith("Kari: shoulder, left side.\nSlotguard: no-show fee 900.00 NOK pending review")


def test_a_line_written_before_a_client_was_invited_is_taken_out_at_the_next_write(google_fake, google_credentials, tmp_path):
    t0 = datetime.now(UTC).replace(microsecond=0)
    engine = practice_on(google_fake, google_credentials, tmp_path, t0)
    google_fake.put_event("primary", invited("kari1", t0 + timedelta(hours=1),
                                             description="Kari: shoulder.\nSlotguard: no-show fee 900.00 NOK charged"))
    engine.tick(t0)
    no_show_fee(google_fake, engine, t0, "kari1")
    assert google_fake.get_event("primary", "kari1")["description"] == "Kari: shoulder."


def test_write_note_never_leaves_every_description_alone(google_fake, google_credentials, tmp_path):
    t0 = datetime.now(UTC).replace(microsecond=0)
    engine = practice_on(google_fake, google_credentials, tmp_path, t0, write_note="never")
    google_fake.put_event("primary", not_invited("ola1", t0 + timedelta(hours=1)))
    engine.tick(t0)
    no_show_fee(google_fake, engine, t0, "ola1")
    ola = google_fake.get_event("primary", "ola1")
    assert ola["description"] == "email: ola@example.com" and ola["extendedProperties"]["private"]["slotguard_fee"]


# --- the setting, and the warnings -----------------------------------------------------------


def test_write_note_takes_a_choice_false_means_never_and_true_asks_to_choose():
    assert parse_settings(config()).calendar.write_note == "no_attendees"
    assert parse_settings(config(calendar={"write_note": False})).calendar.write_note == "never"
    assert parse_settings(config(calendar={"write_note": "always"})).calendar.write_note == "always"
    with pytest.raises(ConfigError) as error:
        parse_settings(config(calendar={"write_note": True}))
    [problem] = error.value.problems
    assert problem.startswith("calendar.write_note:")
    assert '"no_attendees"' in problem and '"always"' in problem and "invited" in problem


def check_config(path, capsys):
    from slotguard.cli.main import main

    root, ours = logging.getLogger(), logging.getLogger("slotguard")
    handlers, root_level, our_level = root.handlers[:], root.level, ours.level
    try:
        status = main(["check-config", "--config", str(path)])
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        ours.setLevel(our_level)
    return status, capsys.readouterr()


def test_check_config_warns_when_fee_marks_can_only_be_tags_clients_may_read(tmp_path, capsys):
    example = (ROOT / "config/example.toml").read_text().replace('url = "config/sample-week.ics"', f'url = "{ROOT}/config/sample-week.ics"')
    assert 'late_cancel = { tags = ["#latecancel"] }' in example and 'waive = { tags = ["#waive", "#emergency"] }' in example
    path = tmp_path / "slotguard.toml"
    path.write_text(example)
    status, out = check_config(path, capsys)
    assert status == 0 and "configuration is valid" in out.out
    [warning] = [line for line in out.out.splitlines() if line.startswith("warning:")]
    assert "calendar.marks.late_cancel" in warning and "calendar.marks.waive" in warning
    assert "calendar.marks.no_show" not in warning  # it has a colour
    assert "#latecancel" in warning and "invited" in warning and "colour" in warning
    assert "config" in warning  # said from the configuration alone: it cannot know who is invited

    path.write_text(example.replace('late_cancel = { tags = ["#latecancel"] }', 'late_cancel = { color = "banana", tags = ["#latecancel"] }')
                           .replace('waive = { tags = ["#waive", "#emergency"] }', 'waive = { color = "sage" }'))
    status, out = check_config(path, capsys)
    assert status == 0 and "warning:" not in out.out


def test_the_digest_warns_only_when_clients_are_invited_to_appointments_marked_by_tags(tmp_path):
    monday = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
    settings = practice_settings(calendar={"source": "ics", "url": "feed.ics"}, mail={"digest_hour": 7})
    calendar = MemoryCalendar("primary")
    ledger = Ledger(":memory:")
    engine = build_engine(settings, monday, ledger=ledger, calendars=[(calendar, NullWriteBack())],
                          provider=RecordOnlyProvider(), mailer=MemoryMailer())
    calendar.put(event("e1", monday + timedelta(days=1), client=None, description="email: ola@example.com"), monday)
    engine.tick(monday)
    assert digest_details(settings, ledger, monday)["mark_privacy"] is None  # no one invited

    calendar.put(event("e2", monday + timedelta(days=2)), monday)  # ana@example.com invited
    engine.tick(monday + timedelta(minutes=5))
    warning = digest_details(settings, ledger, monday + timedelta(minutes=5))["mark_privacy"]
    assert warning == {"rules": ["late_cancel", "waive"], "tags": ["#latecancel", "#waive", "#emergency", "#mistake"]}

    in_memory = practice_settings(mail={"digest_hour": 7})  # replay, tests: no calendar anyone reads
    assert digest_details(in_memory, ledger, monday + timedelta(minutes=5))["mark_privacy"] is None
