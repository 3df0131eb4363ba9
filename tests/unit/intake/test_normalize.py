from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from slotguard.domain.model import Mark
from slotguard.domain.money import Money
from slotguard.intake.normalize import EventError, normalize
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
START = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=OSLO)
SETTINGS = settings(
    calendar={"exclude_addresses": ["assistant@example.com"]},
    services={"intro": {"price": "500 NOK", "duration": "30m", "match": ["discovery"]}},
)


def test_the_client_is_the_attendee_who_is_not_the_practitioner_a_room_or_excluded():
    resource = event("e1", START)
    resource["attendees"][1:1] = [
        {"email": "room@resource.example.com", "resource": True},
        {"email": "assistant@example.com"},
    ]
    appointment = normalize(resource, "primary", SETTINGS, NOW).appointment
    assert appointment.client.email == "ana@example.com" and appointment.client.name == "Ana Silva"


def test_an_email_line_names_the_client_when_there_is_no_attendee():
    resource = event("e1", START, client=None, description="email: Ana@Example.com\nprice: 1200 NOK")
    appointment = normalize(resource, "primary", SETTINGS, NOW).appointment
    assert appointment.client.email == "ana@example.com"
    assert appointment.price == Money(120000, "NOK")


def test_events_without_a_client_are_skipped_quietly():
    result = normalize(event("lunch", START, client=None, title="Lunch"), "primary", SETTINGS, NOW)
    assert result.appointment is None and result.skipped


def test_colour_names_tags_and_declines_are_read_as_marks():
    appointment = normalize(event("e1", START, color="11", title="Massage #waive", response="declined"), "primary", SETTINGS, NOW).appointment
    assert Mark.NO_SHOW in appointment.marks and Mark.WAIVE in appointment.marks
    assert appointment.client_declined


def test_a_tag_must_be_a_whole_word():
    appointment = normalize(event("e1", START, title="Massage #noshowcase"), "primary", SETTINGS, NOW).appointment
    assert Mark.NO_SHOW not in appointment.marks


def test_services_are_matched_by_title_words():
    appointment = normalize(event("e1", START, title="Discovery call", minutes=30), "primary", SETTINGS, NOW).appointment
    assert appointment.service == "intro" and appointment.price == Money(50000, "NOK")


def test_an_unreadable_price_names_the_event_and_how_to_fix_it():
    with pytest.raises(EventError) as error:
        normalize(event("e7", START, title="Massage", description="price: lots"), "primary", SETTINGS, NOW)
    assert "e7" in str(error.value) and "price: 900 NOK" in str(error.value)


def test_a_cancelled_event_with_only_an_id_keeps_what_we_knew():
    previous = normalize(event("e1", START), "primary", SETTINGS, NOW).appointment
    result = normalize({"id": "e1", "status": "cancelled"}, "primary", SETTINGS, NOW, previous)
    assert result.appointment.is_cancelled and result.appointment.client.email == "ana@example.com"


def test_our_own_status_note_is_never_read_as_a_mark():
    note = "Slotguard: no-show fee 900.00 NOK pending review, charged Thu 05 Mar 00:00 unless you add #waive"
    for description in (f"Regular client\n{note}", f"<b>Regular</b><br>{note}"):
        appointment = normalize(event("e1", START, color="11", description=description), "primary", SETTINGS, NOW).appointment
        assert Mark.WAIVE not in appointment.marks and Mark.NO_SHOW in appointment.marks
    waived = normalize(event("e1", START, description=f"#waive\n{note}"), "primary", SETTINGS, NOW).appointment
    assert Mark.WAIVE in waived.marks


def test_an_appointment_across_the_autumn_clock_change_keeps_its_real_length():
    # 2026-10-25: 03:00 CEST becomes 02:00 CET in Oslo; a session 02:30 CEST - 02:30 CET lasts an hour.
    resource = event("dst", datetime(2026, 10, 25, 0, 30, tzinfo=ZoneInfo("UTC")))
    appointment = normalize(resource, "primary", SETTINGS, NOW).appointment
    assert appointment.end - appointment.start == timedelta(hours=1)
    assert appointment.timezone == "Europe/Oslo"


def test_an_unknown_time_zone_names_the_event():
    resource = event("tz", START)
    resource["start"]["timeZone"] = "Europe/Atlantis"
    with pytest.raises(EventError) as error:
        normalize(resource, "primary", SETTINGS, NOW)
    assert "tz" in str(error.value) and "Europe/Atlantis" in str(error.value)
