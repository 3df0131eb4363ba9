"""Slotguard's own status line on a Google event, and the practitioner's text beside it
(review finding: a `#waive` typed on the note line), on the Calendar v3 wire fake.

The note says "... unless you add #waive", and the most natural edit is to type " #waive" at
the end of that very line. The write-back keeps the exact text it wrote in the event's
private `slotguard_note`; reading the event, only that text is left unread, so the tag
counts, and the next write replaces only that text, so the tag stays.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integration.google_calendar import open_calendars
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.model import ActionKind, ActionState
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import settings as practice_settings


def practice(fake, credentials, tmp_path, now):
    settings = practice_settings(
        calendar={"source": "google", "calendar_ids": ["primary"], "api_endpoint": fake.api_endpoint},
        storage={"data_dir": str(tmp_path / "data")},
    )
    calendars = open_calendars(settings, credentials=credentials(), retry_budget=0, sleep=lambda s: None)
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    engine = build_engine(settings, now, ledger=ledger, calendars=calendars,
                          provider=RecordOnlyProvider(), mailer=OutboxDirMailer(tmp_path / "outbox"))
    return engine, ledger


def booking(start: datetime, description: str) -> dict:
    """The practitioner's own event, the client named by an email: line: no one else reads
    it, so Slotguard writes its status line there."""
    return {
        "id": "ola1", "summary": "Massage", "description": description,
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Oslo"},
        "organizer": {"email": "lena@example.com", "self": True},
    }


def fee(ledger):
    [charge] = ledger.actions(kinds=[ActionKind.CHARGE], event_id="ola1")
    return charge


def no_show_with_note(fake, credentials, tmp_path, description):
    """A no-show marked by colour; after the tick the event carries Slotguard's note."""
    t0 = datetime.now(UTC).replace(microsecond=0)
    engine, ledger = practice(fake, credentials, tmp_path, t0)
    fake.put_event("primary", booking(t0 + timedelta(hours=1), description))
    engine.tick(t0)
    fake.modify_event("primary", "ola1", colorId="11")
    engine.tick(t0 + timedelta(hours=2))
    event = fake.get_event("primary", "ola1")
    note = event["extendedProperties"]["private"]["slotguard_note"]
    assert note.startswith("Slotguard: no-show fee 900.00 NOK pending review") and note.endswith("unless you add #waive")
    return engine, ledger, t0, event["description"], note


@pytest.mark.parametrize("description, typed", [
    ("Ola: knee\nemail: ola@example.com", " #waive"),
    ("<b>Ola</b>: knee<br>email: ola@example.com", "&nbsp;#waive"),  # the web editor's HTML
])
def test_a_waive_tag_typed_at_the_end_of_slotguards_note_waives_the_fee_and_stays(google_fake, google_credentials, tmp_path,
                                                                                  description, typed):
    engine, ledger, t0, written, note = no_show_with_note(google_fake, google_credentials, tmp_path, description)
    assert written.startswith(description) and note in written
    # The practitioner does what the note says, on that line.
    google_fake.modify_event("primary", "ola1", description=written + typed)
    engine.tick(t0 + timedelta(hours=3))
    assert fee(ledger).state is ActionState.WAIVED
    after = google_fake.get_event("primary", "ola1")["description"]
    assert after.startswith(description) and "no-show fee 900.00 NOK waived" in after
    assert after.endswith("waived" + typed), "the next note replaced only its own text: the tag is still there"
    engine.tick(t0 + timedelta(hours=20))
    assert fee(ledger).state is ActionState.WAIVED and not ledger.actions(kinds=[ActionKind.REFUND])


def test_an_edit_inside_slotguards_note_never_turns_its_words_into_a_waiver(google_fake, google_credentials, tmp_path):
    engine, ledger, t0, written, note = no_show_with_note(google_fake, google_credentials, tmp_path,
                                                          "Ola: knee\nemail: ola@example.com")
    google_fake.modify_event("primary", "ola1", description=written.replace("pending review", "pending review (she called)"))
    engine.tick(t0 + timedelta(hours=3))
    engine.tick(fee(ledger).due_at)  # the end of the review window, or of the client's quiet hours it ends in
    assert fee(ledger).state is ActionState.DONE, "the note's own \"unless you add #waive\" is not the practitioner's mark"


def test_only_the_text_slotguard_wrote_is_replaced_or_taken_out():
    from integration.google_calendar import set_status_line, strip_status_line

    note = "Slotguard: no-show fee 900.00 NOK pending review unless you add #waive"
    typed = f"Knee\n{note} #waive"
    assert set_status_line(typed, "no-show fee 900.00 NOK waived", note) == "Knee\nSlotguard: no-show fee 900.00 NOK waived #waive"
    assert strip_status_line(typed, note) == "Knee\n #waive", "taken out where a client reads it, the tag stays"
    assert strip_status_line(f"Knee\n{note}", note) == "Knee"
    html = f"<b>Knee</b><br>{note}&nbsp;#waive"
    assert set_status_line(html, "waived", note) == "<b>Knee</b><br>Slotguard: waived&nbsp;#waive"
    # Edited inside: the whole line is Slotguard's to replace, as before.
    edited = typed.replace("pending review", "pending review (she called)")
    assert set_status_line(edited, "waived", note) == "Knee\nSlotguard: waived"
