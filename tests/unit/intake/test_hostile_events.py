"""The hostile-input suite, normalize half: whatever a calendar sends, normalize either
reads an appointment or raises its own EventError, never anything else; someone else's
event is never an appointment; and what it keeps is safe to store and to mail. And one
arbitrary VEVENT in an .ics feed never stops the practitioner's other appointment from
being read (issue 11, item 10).

Deterministic (derandomize, no example database) and a few seconds long."""

import re
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings

from integration.ics_source import IcsSource
from slotguard.domain.interfaces import AdapterError
from slotguard.domain.untrusted import email_address, https_link
from slotguard.intake.normalize import EventError, normalize
from tests.support.builders import settings
from tests.support.hostile import (
    CALENDAR_ID,
    GOOD_UID,
    NOW,
    OTHER_OWN_ADDRESS,
    feed_with_a_good_appointment,
    ics_feed,
    practitioners_own,
    v3_event,
)

SETTINGS = settings(calendar={"practitioner_addresses": [OTHER_OWN_ADDRESS]})
LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
HOSTILE = hsettings(max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


def _check(event: dict, calendar_id: str = CALENDAR_ID) -> None:
    try:
        result = normalize(event, calendar_id, SETTINGS, NOW)
    except EventError as error:
        assert "\n" not in str(error) and "\r" not in str(error), "a problem message is one line"
        return
    appointment = result.appointment
    if appointment is None:
        return
    assert practitioners_own(event), "someone else's event never becomes an appointment"
    assert email_address(appointment.client.email) == appointment.client.email
    assert appointment.meeting_link == "" or https_link(appointment.meeting_link) == appointment.meeting_link
    for kept in (appointment.location, appointment.client.name, appointment.title, appointment.locale or ""):
        assert not LINE_BREAKING.search(kept), repr(kept)
    assert appointment.end > appointment.start
    assert appointment.price.minor > 0 and appointment.price <= SETTINGS.services.price_ceiling
    assert appointment.cancelled_at is None or appointment.cancelled_at <= NOW


@HOSTILE
@given(v3_event("evt1"))
def test_normalize_raises_only_its_own_error_on_any_v3_event(event):
    _check(event)


@hsettings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(ics_feed())
def test_any_vevent_text_reaches_normalize_as_an_event_it_can_refuse(tmp_path_factory, feed):
    path = Path(tmp_path_factory.mktemp("feed")) / "hostile.ics"
    path.write_text(feed, encoding="utf-8", errors="surrogatepass")
    source = IcsSource(settings(calendar={"source": "ics", "url": str(path)}))
    try:
        pages = list(source.pages(None, NOW))
    except AdapterError:
        return  # the whole feed is unreadable: reported as such, nothing changes
    for page in pages:
        for event in page.events:
            _check(event, source.calendar_id)


@hsettings(max_examples=80, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(feed_with_a_good_appointment())
def test_one_arbitrary_vevent_never_stops_the_good_appointment_being_read(tmp_path_factory, feed):
    path = Path(tmp_path_factory.mktemp("feed")) / "mixed.ics"
    path.write_text(feed, encoding="utf-8", errors="surrogatepass")
    ics = settings(calendar={"source": "ics", "url": str(path)})
    [page] = list(IcsSource(ics).pages(None, NOW))  # never "the whole feed is unreadable"
    [good] = [event for event in page.events if event["id"].startswith(GOOD_UID) and "_error" not in event]
    appointment = normalize(good, str(path), ics, NOW).appointment
    assert appointment is not None and appointment.client.email == "ana@example.com"
    assert appointment.start == datetime(2026, 3, 5, 10, tzinfo=UTC)
    problems = [event["_error"] for event in page.events if "_error" in event]
    assert all("\n" not in problem and "\r" not in problem for problem in problems)
    assert not problems or not page.full, "while a VEVENT is left out, nothing is taken as deleted"
