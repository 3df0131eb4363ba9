"""The CalDAV write-back's edit of an object's text (integration/caldav_write.py `edited`):
only Slotguard's own lines change, everything else stays byte for byte."""

from __future__ import annotations

import icalendar

from integration.caldav_write import edited

STATE = {"slotguard_fee": "act_1", "slotguard_state": "pending_review", "slotguard_amount": "90000", "slotguard_currency": "NOK"}
NOTE = "Slotguard: no-show fee 900.00 NOK pending review, charged Tue 08 Dec 10:00 unless you add #waive"
SINGLE = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//macOS 15//EN\r\nBEGIN:VEVENT\r\nUID:a1\r\n"
    "DTSTAMP:20261201T000000Z\r\nDTSTART;TZID=Europe/Oslo:20261208T100000\r\nDTEND;TZID=Europe/Oslo:20261208T110000\r\n"
    "SUMMARY:Massage – Åse\r\nDESCRIPTION:email: ase@example.com\\nRoom 2\r\nX-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _without_ours(text: str) -> list[str]:
    unfolded = text.replace("\r\n ", "")
    return [line for line in unfolded.split("\r\n") if not line.startswith("X-SLOTGUARD-") and not line.startswith("DESCRIPTION:email")]


def test_a_single_event_gets_its_properties_and_the_line_and_nothing_else_moves():
    text = edited(SINGLE, "a1", STATE, NOTE, "no_attendees", "Europe/Oslo")
    assert text is not None and text != SINGLE
    assert _without_ours(text) == _without_ours(SINGLE), "every other line stays, in its place"
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n")), "lines are folded at 75 octets"
    event = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    assert str(event["DESCRIPTION"]) == "email: ase@example.com\nRoom 2\n" + NOTE
    assert str(event["X-SLOTGUARD-NOTE"]).replace("\\,", ",") == NOTE
    assert event.walk("VALARM")[0].get("X-SLOTGUARD-FEE") is None, "nothing goes into the alarm"
    assert edited(text, "a1", STATE, NOTE, "no_attendees", "Europe/Oslo") == text, "the same state again changes nothing"


def test_a_new_note_replaces_the_line_it_wrote_and_keeps_what_was_typed_after_it():
    text = edited(SINGLE, "a1", STATE, NOTE, "no_attendees", "Europe/Oslo")
    typed = text.replace("10:00 unless you add #waive\r\nX-APPLE", "10:00 unless you add #waive #emergency\r\nX-APPLE", 1)
    assert typed != text
    again = edited(typed, "a1", {**STATE, "slotguard_state": "done"}, "Slotguard: no-show fee 900.00 NOK charged", "no_attendees", "Europe/Oslo")
    event = icalendar.Calendar.from_ical(again).walk("VEVENT")[0]
    assert str(event["DESCRIPTION"]) == "email: ase@example.com\nRoom 2\nSlotguard: no-show fee 900.00 NOK charged #emergency"
    assert str(event["X-SLOTGUARD-STATE"]) == "done"


def test_never_a_line_on_an_event_with_attendees_and_only_the_fee_and_its_state():
    invited = SINGLE.replace("END:VALARM\r\n", "END:VALARM\r\nORGANIZER:mailto:lena@example.com\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:ase@example.com\r\n")
    text = edited(invited, "a1", STATE, NOTE, "always", "Europe/Oslo")
    assert "Slotguard:" not in text and "SCHEDULE-AGENT" not in text
    assert "X-SLOTGUARD-FEE:act_1\r\n" in text and "X-SLOTGUARD-STATE:pending_review\r\n" in text and "AMOUNT" not in text
    assert text.replace("X-SLOTGUARD-FEE:act_1\r\nX-SLOTGUARD-STATE:pending_review\r\n", "") == invited


def test_an_instance_without_an_exception_is_written_on_the_master_for_it_alone():
    series = SINGLE.replace("SUMMARY:", "RRULE:FREQ=WEEKLY;COUNT=3\r\nSUMMARY:")
    text = edited(series, "a1_20261215T090000Z", STATE, NOTE, "no_attendees", "Europe/Oslo")
    assert "X-SLOTGUARD-FEE;X-SLOTGUARD-INSTANCE=20261215T090000Z:act_1" in text
    assert "Slotguard:" not in text.replace("X-SLOTGUARD", ""), "the series' shared description is left alone"
    assert "RECURRENCE-ID" not in text, "no exception is made"
    assert edited(series, "b2_20261215T090000Z", STATE, NOTE, "no_attendees", "Europe/Oslo") is None


def test_write_note_never_writes_no_line():
    text = edited(SINGLE, "a1", STATE, NOTE, "never", "Europe/Oslo")
    assert "Slotguard:" not in text and "X-SLOTGUARD-FEE:act_1" in text


def _attendee_added(text: str) -> str:
    """`text` as the practitioner's app saves it after inviting the client."""
    return text.replace("END:VALARM\r\n", "END:VALARM\r\nORGANIZER:mailto:lena@example.com\r\n"
                        "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:ase@example.com\r\n", 1)


def test_once_attendees_are_added_the_line_note_and_amount_go_and_the_practitioners_text_stays():
    invited = _attendee_added(edited(SINGLE, "a1", STATE, NOTE, "no_attendees", "Europe/Oslo") or "")
    assert "Slotguard:" in invited and "ATTENDEE" in invited
    text = edited(invited, "a1", STATE, NOTE, "no_attendees", "Europe/Oslo")
    assert text is not None and "Slotguard:" not in text
    assert "X-SLOTGUARD-NOTE" not in text and "X-SLOTGUARD-AMOUNT" not in text and "X-SLOTGUARD-CURRENCY" not in text
    assert "X-SLOTGUARD-FEE:act_1\r\n" in text and "X-SLOTGUARD-STATE:pending_review\r\n" in text
    assert "\r\nDESCRIPTION:email: ase@example.com\\nRoom 2\r\n" in text, "the practitioner's description, byte for byte"
    assert [line for line in text.split("\r\n") if not line.startswith("X-SLOTGUARD-")] == \
        [line for line in _attendee_added(SINGLE).split("\r\n") if not line.startswith("X-SLOTGUARD-")]
    assert edited(text, "a1", STATE, NOTE, "no_attendees", "Europe/Oslo") == text, "nothing more to do"


def test_text_typed_after_the_line_stays_and_a_description_slotguard_made_goes():
    written = edited(SINGLE, "a1", STATE, NOTE, "no_attendees", "Europe/Oslo") or ""
    typed = _attendee_added(written.replace("unless you add #waive\r\n", "unless you add #waive #emergency\r\n", 1))
    assert typed != _attendee_added(written)
    event = icalendar.Calendar.from_ical(edited(typed, "a1", STATE, NOTE, "no_attendees", "Europe/Oslo")).walk("VEVENT")[0]
    assert str(event["DESCRIPTION"]) == "email: ase@example.com\nRoom 2\n #emergency"
    bare = SINGLE.replace("DESCRIPTION:email: ase@example.com\\nRoom 2\r\n", "")
    made = edited(bare, "a1", STATE, NOTE, "no_attendees", "Europe/Oslo") or ""
    assert made.count("\r\nDESCRIPTION:") == 2  # ours, and the alarm's
    cleaned = edited(_attendee_added(made), "a1", STATE, NOTE, "no_attendees", "Europe/Oslo") or ""
    assert "Slotguard:" not in cleaned and cleaned.count("\r\nDESCRIPTION:") == 1 and "DESCRIPTION:Reminder\r\n" in cleaned


def test_a_note_property_slotguard_could_not_have_written_removes_nothing():
    forged = _attendee_added(SINGLE).replace("END:VALARM\r\n", "END:VALARM\r\nX-SLOTGUARD-NOTE:Room 2\r\n", 1)
    text = edited(forged, "a1", STATE, NOTE, "no_attendees", "Europe/Oslo") or ""
    assert "\r\nDESCRIPTION:email: ase@example.com\\nRoom 2\r\n" in text and "X-SLOTGUARD-NOTE" not in text
