"""The trust boundary in normalize: whose event it is, and what calendar text may do.

Issue 11 items 1, 2 (only the practitioner's events are appointments), 3 (price ceiling),
4 (impossible cancellation times), 10 (poison lines are refused, never crash), 12 (linear
reading and a description cap), 17 (text that reaches client emails is folded, links are
https only) and 20 (addresses are checked on the way in).
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from slotguard.domain.model import Mark
from slotguard.domain.money import Money
from slotguard.intake.normalize import DESCRIPTION_LIMIT, EventError, ForeignEvent, normalize
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
START = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
NOW = datetime(2026, 3, 4, 14, 0, tzinfo=OSLO)
SETTINGS = settings(calendar={"practitioner_addresses": ["lena.berg@gmail.com"]})


def invitation(organizer: str, *guests: str, title: str = "Coffee? #noshow", description: str = "") -> dict:
    """An event someone else organised, as it appears in the practitioner's Google calendar."""
    resource = event("inv1", START, client=None, title=title, description=description)
    resource["organizer"] = {"email": organizer}
    resource["attendees"] = [
        {"email": organizer, "organizer": True, "responseStatus": "accepted"},
        {"email": "lena@example.com", "self": True, "responseStatus": "needsAction"},
        *({"email": guest, "responseStatus": "accepted"} for guest in guests),
    ]
    return resource


# -- items 1 and 2: whose event is it ------------------------------------------------------


def test_a_strangers_invitation_is_not_an_appointment_and_says_why_in_plain_words():
    with pytest.raises(ForeignEvent) as error:
        normalize(invitation("stranger@x.example", "ana@example.com"), "primary", SETTINGS, NOW)
    message = str(error.value)
    assert "stranger@x.example" in message and "not by you" in message
    assert "nothing is sent or charged" in message
    assert isinstance(error.value, EventError), "the engine records it as a problem like any unreadable event"


def test_a_meeting_a_client_organised_never_makes_a_co_invitee_the_client():
    resource = invitation("ana@example.com", "bo@example.com", title="Catch-up #noshow", description="price: 5000 NOK")
    with pytest.raises(ForeignEvent) as error:
        normalize(resource, "primary", SETTINGS, NOW)
    assert "ana@example.com" in str(error.value)


def test_a_strangers_event_with_only_the_practitioner_or_cancelled_is_skipped_quietly():
    result = normalize(invitation("colleague@example.org"), "primary", SETTINGS, NOW)
    assert result.appointment is None and "colleague@example.org" in result.skipped
    cancelled = invitation("stranger@x.example", "ana@example.com") | {"status": "cancelled"}
    assert normalize(cancelled, "primary", SETTINGS, NOW).appointment is None


@pytest.mark.parametrize(
    "organizer",
    [
        {"email": "someone@example.org", "self": True},  # Google: the calendar's owner organised it
        {"email": "LENA@example.com"},  # practice.email, any case
        {"email": "lena.berg@gmail.com"},  # one of calendar.practitioner_addresses
        {"email": "clinic@group.calendar.google.com"},  # a secondary calendar names itself
        None,  # no organizer: only the owner can put such an event on their calendar
    ],
)
def test_the_practitioners_own_events_stay_appointments(organizer):
    resource = event("e1", START, color="11", description="price: 1200 NOK")
    if organizer is None:
        del resource["organizer"]
        resource["attendees"] = resource["attendees"][1:]
    else:
        resource["organizer"] = organizer
        resource["attendees"][0]["email"] = organizer["email"]
    appointment = normalize(resource, "clinic@group.calendar.google.com", SETTINGS, NOW).appointment
    assert appointment.client.email == "ana@example.com"
    assert Mark.NO_SHOW in appointment.marks and appointment.price == Money(120000, "NOK")


def test_an_organizer_address_with_line_breaks_is_shown_folded_never_raw():
    with pytest.raises(ForeignEvent) as error:
        normalize(invitation("evil@x.example\r\nBcc: victim@example.com", "ana@example.com"), "primary", SETTINGS, NOW)
    assert "\r" not in str(error.value) and "\n" not in str(error.value)


# -- item 3: price ceiling ----------------------------------------------------------------------


def test_a_price_line_above_the_ceiling_is_refused_naming_the_ceiling_and_the_key():
    with pytest.raises(EventError) as error:
        normalize(event("e1", START, description="price: 1000000 NOK", color="11"), "primary", SETTINGS, NOW)
    message = str(error.value)
    assert "2700.00 NOK" in message and "services.max_price" in message, message  # default: 3 x 900 NOK
    capped = settings(services={"max_price": "1500 NOK"})
    with pytest.raises(EventError, match="1500.00 NOK"):
        normalize(event("e1", START, description="price: 1600 NOK"), "primary", capped, NOW)
    assert normalize(event("e1", START, description="price: 1500 NOK"), "primary", capped, NOW).appointment.price == Money(150000, "NOK")


# -- item 4: impossible cancellation times ------------------------------------------------------


def test_a_cancelled_line_later_than_the_event_was_read_is_refused():
    typo = (NOW + timedelta(days=365)).isoformat()
    with pytest.raises(EventError) as error:
        normalize(event("e1", START, title="Massage #latecancel", description=f"cancelled: {typo}"), "primary", SETTINGS, NOW)
    assert "e1" in str(error.value) and "cancelled:" in str(error.value) and "later than" in str(error.value)
    fine = (NOW - timedelta(hours=30)).isoformat()
    appointment = normalize(event("e1", START, description=f"cancelled: {fine}"), "primary", SETTINGS, NOW).appointment
    assert appointment.cancelled_at == NOW - timedelta(hours=30)


def test_a_cancelled_line_earlier_than_the_events_creation_is_refused():
    resource = event("e1", START, title="Massage #latecancel", description=f"cancelled: {(NOW - timedelta(days=20)).isoformat()}")
    resource["created"] = (NOW - timedelta(days=3)).astimezone(ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")
    with pytest.raises(EventError, match="before the event was created"):
        normalize(resource, "primary", SETTINGS, NOW)


# -- item 10: poison lines are refused as the event's own problem -------------------------------


@pytest.mark.parametrize(
    "description, words",
    [
        ("cancelled: 0001-01-01T00:00:00+01:00", "cancelled:"),
        ("cancelled: 9999-12-31T23:59:59-12:00", "cancelled:"),
        ("price: 100000000000000000000000 NOK", "price"),
        ("price: " + "9" * 5000 + " NOK", "price"),
    ],
)
def test_poison_lines_are_an_error_on_their_event(description, words):
    with pytest.raises(EventError) as error:
        normalize(event("e1", START, title="Massage #latecancel", description=description), "primary", SETTINGS, NOW)
    assert "e1" in str(error.value) and words in str(error.value)


@pytest.mark.parametrize("field", ["start", "end"])
def test_times_at_the_ends_of_the_calendar_are_an_error_on_their_event(field):
    for moment in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"):
        resource = event("e1", START)
        resource[field] = {"dateTime": moment}
        with pytest.raises(EventError, match="e1"):
            normalize(resource, "primary", SETTINGS, NOW)


def test_an_unreadable_all_day_date_or_stamp_is_an_error_on_its_event():
    resource = event("e1", START)
    resource["start"] = {"date": "2026-02-30"}
    with pytest.raises(EventError, match="e1"):
        normalize(resource, "primary", SETTINGS, NOW)
    resource = event("e1", START)
    resource["updated"] = "0001-01-01T00:00:00+01:00"
    with pytest.raises(EventError, match="e1"):
        normalize(resource, "primary", SETTINGS, NOW)


# -- item 12: linear reading and a cap ----------------------------------------------------------


# 56 s with the MULTILINE regex; milliseconds now (bench/bench_normalize.py prints it). The
# timeout fails a reader gone quadratic again instead of hanging the suite.
@pytest.mark.timeout(30)
def test_forty_thousand_blank_lines_are_read():
    resource = event("e1", START, description="price: 1200 NOK\nnotes:" + "\n" * 40_000 + "end", color="11")
    appointment = normalize(resource, "primary", SETTINGS, NOW).appointment
    assert appointment.price == Money(120000, "NOK")


def test_text_beyond_the_description_cap_is_not_read():
    near = "x" * (DESCRIPTION_LIMIT - 100) + "\nprice: 1200 NOK"
    assert normalize(event("e1", START, description=near), "primary", SETTINGS, NOW).appointment.price == Money(120000, "NOK")
    far = "x" * DESCRIPTION_LIMIT + "\nprice: 1200 NOK\n#noshow"
    appointment = normalize(event("e1", START, description=far), "primary", SETTINGS, NOW).appointment
    assert appointment.price == Money(90000, "NOK") and Mark.NO_SHOW not in appointment.marks


def test_the_last_of_repeated_lines_wins_and_blank_or_spaced_lines_are_read():
    resource = event("e1", START, description="\r\n  PRICE :  1000 NOK  \r\n\r\nprice: 1100 NOK\n  lang : de\n")
    appointment = normalize(resource, "primary", SETTINGS, NOW).appointment
    assert appointment.price == Money(110000, "NOK") and appointment.locale == "de"


# -- item 17: text that can reach a client email -------------------------------------------------


def test_location_name_and_lang_are_folded_to_one_line_and_capped():
    resource = event("e1", START, name="Ana\r\n\r\nSilva" + " x" * 500, description="lang: de\u2028en")
    resource["location"] = "Storgata 1\n\nUNPAID FEE: pay today at https://evil.example/pay\x00" + "y" * 5000
    appointment = normalize(resource, "primary", SETTINGS, NOW).appointment
    assert "\n" not in appointment.location and "\x00" not in appointment.location
    assert appointment.location.startswith("Storgata 1 UNPAID FEE") and len(appointment.location) <= 300
    assert appointment.client.name.startswith("Ana Silva") and len(appointment.client.name) <= 100
    assert appointment.locale is None, "a lang line that is not a language code is not used"


@pytest.mark.parametrize(
    "link",
    ["javascript:alert(1)", "http://meet.example.com/x", "data:text/html,<b>hi</b>", "https://", "https://a b.example/x",
     'https://meet.example.com/x"><script>'],
)
def test_only_https_links_become_the_meeting_link(link):
    resource = event("e1", START, description=f"link: {link}")
    resource["hangoutLink"] = link
    resource["conferenceData"] = {"entryPoints": [{"entryPointType": "video", "uri": link}]}
    resource["location"] = link
    with pytest.raises(EventError, match="link:"):
        normalize(resource, "primary", SETTINGS, NOW)
    del resource["description"]
    appointment = normalize(resource, "primary", SETTINGS, NOW).appointment
    assert appointment.meeting_link == ""


def test_an_https_meeting_link_is_kept():
    resource = event("e1", START, description="link: https://meet.example.com/abc-defg?pwd=1")
    assert normalize(resource, "primary", SETTINGS, NOW).appointment.meeting_link == "https://meet.example.com/abc-defg?pwd=1"


# -- item 20: addresses ----------------------------------------------------------------------------


def test_a_client_address_with_line_breaks_is_an_error_shown_folded():
    resource = event("e1", START, client="ana@example.com\r\nBcc: victim@example.com")
    with pytest.raises(EventError) as error:
        normalize(resource, "primary", SETTINGS, NOW)
    assert "not an email address" in str(error.value) and "\n" not in str(error.value) and "\r" not in str(error.value)


@pytest.mark.parametrize("junk", ["bo@example.com\nX: y", "not an address", "bo@@example.com", "<bo@example.com>", "bo@example"])
def test_a_junk_attendee_who_is_not_the_client_is_ignored(junk):
    resource = event("e1", START)
    resource["attendees"].insert(1, {"email": junk, "resource": True})
    resource["attendees"].append({"email": junk})
    appointment = normalize(resource, "primary", SETTINGS, NOW).appointment
    assert appointment.client.email == "ana@example.com"


@pytest.mark.parametrize("junk", ["ana@example.com, bo@example.com", "ana@exa mple.com", "ana@.example.com", "a" * 300 + "@example.com"])
def test_an_email_line_that_is_not_one_address_is_an_error(junk):
    with pytest.raises(EventError, match="email"):
        normalize(event("e1", START, client=None, description=f"email: {junk}"), "primary", SETTINGS, NOW)


def test_an_event_id_with_line_breaks_is_refused_and_shown_folded():
    with pytest.raises(EventError) as error:
        normalize(event("e1\nINFO forged log line", START), "primary", SETTINGS, NOW)
    assert "\n" not in str(error.value)


def test_an_ics_feed_events_creation_time_bounds_its_cancelled_line():
    import icalendar

    from integration.ics_source import vevent_to_resource

    feed = icalendar.Calendar.from_ical(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:u1\r\n"
        "DTSTART:20260304T090000Z\r\nDTEND:20260304T100000Z\r\nSUMMARY:Massage #latecancel\r\n"
        "DESCRIPTION:email: ana@example.com\\ncancelled: 2026-02-01T09:00:00+01:00\r\n"
        "CREATED:20260220T120000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    [component] = feed.walk("VEVENT")
    resource = vevent_to_resource(component, "Europe/Oslo")
    assert resource["created"] == "2026-02-20T12:00:00Z"
    with pytest.raises(EventError, match="before the event was created"):
        normalize(resource, "feed.ics", SETTINGS, NOW)


# -- review 1: more than one attendee who could be the client ---------------------------------


def with_guests(*guests: str, description: str = "", **extra) -> dict:
    """The practitioner's own event with these guests, in this order (Google lets a guest
    invite others unless the practitioner turned that off)."""
    resource = event("e1", START, client=None, description=description, **extra)
    resource["attendees"] += [{"email": guest, "displayName": guest.split("@")[0].title(), "responseStatus": "accepted"}
                              for guest in guests]
    return resource


def test_two_guests_who_could_be_the_client_are_a_problem_that_says_how_to_choose():
    with pytest.raises(EventError) as error:
        normalize(with_guests("bo@example.com", "ana@example.com", color="11"), "primary", SETTINGS, NOW)
    message = str(error.value)
    assert "e1" in message and "2 possible clients" in message
    assert "bo@example.com" in message and "ana@example.com" in message
    assert "email: bo@example.com" in message, "it shows the line to add"
    assert "no fee" in message and "nothing is sent" in message


def test_an_email_line_naming_one_guest_makes_that_guest_the_client():
    resource = with_guests("bo@example.com", "ana@example.com", description="email: Ana@Example.com", color="11")
    appointment = normalize(resource, "primary", SETTINGS, NOW).appointment
    assert appointment.client.email == "ana@example.com" and appointment.client.name == "Ana"
    assert appointment.client_invited and Mark.NO_SHOW in appointment.marks


def test_an_email_line_naming_someone_else_than_the_guests_is_a_problem():
    for guests in (("bo@example.com",), ("bo@example.com", "cy@example.com")):
        with pytest.raises(EventError) as error:
            normalize(with_guests(*guests, description="email: ana@example.com"), "primary", SETTINGS, NOW)
        assert "ana@example.com" in str(error.value) and "bo@example.com" in str(error.value)


def test_one_guest_listed_twice_or_beside_rooms_and_the_practitioner_is_one_client():
    resource = with_guests("ana@example.com", "ANA@example.com")
    resource["attendees"].append({"email": "room1@resource.example.com", "resource": True})
    resource["attendees"].append({"email": "lena.berg@gmail.com"})  # calendar.practitioner_addresses
    assert normalize(resource, "primary", SETTINGS, NOW).appointment.client.email == "ana@example.com"


def test_a_cancelled_event_with_two_guests_keeps_the_client_we_knew_and_is_no_problem():
    previous = normalize(with_guests("ana@example.com"), "primary", SETTINGS, NOW).appointment
    cancelled = with_guests("bo@example.com", "ana@example.com") | {"status": "cancelled"}
    result = normalize(cancelled, "primary", SETTINGS, NOW, previous)
    assert result.appointment.is_cancelled and result.appointment.client.email == "ana@example.com"
    assert normalize(cancelled, "primary", SETTINGS, NOW).appointment is None


# -- review 2: descriptions written in Google's web editor are HTML ----------------------------


@pytest.mark.parametrize("description", [
    "lang: de<br>price: 450 NOK",
    "price: 450 NOK<br/>lang: de",
    "<p>lang: de</p><p>price:&nbsp;450 NOK</p>",
    "<div>lang: de</div><div><b>price</b>: 450 NOK</div>",
    "<ul><li>lang: de</li><li>price: 450 NOK</li></ul>",
    "lang: de<BR />price: 450 NOK",
])
def test_lines_of_an_html_description_are_read_one_by_one(description):
    appointment = normalize(event("e1", START, description=description), "primary", SETTINGS, NOW).appointment
    assert appointment.price == Money(45000, "NOK") and appointment.locale == "de"


def test_a_cancelled_line_and_a_tag_in_html_are_read_and_entities_unescaped():
    moment = (NOW - timedelta(hours=30)).isoformat()
    resource = event("e1", START, description=f"Late again<br>cancelled: {moment}<br><b>#late&#99;ancel</b>")
    appointment = normalize(resource, "primary", SETTINGS, NOW).appointment
    assert appointment.cancelled_at == NOW - timedelta(hours=30) and Mark.LATE_CANCEL in appointment.marks


def test_a_plain_description_with_angle_brackets_is_read_as_written():
    resource = event("e1", START, client=None, description="email: <ana@example.com>\nprice: 450 NOK\nnote: a < b > c")
    appointment = normalize(resource, "primary", SETTINGS, NOW).appointment
    assert appointment.client.email == "ana@example.com" and appointment.price == Money(45000, "NOK")


def test_html_beyond_the_description_cap_is_not_read_for_lines_or_tags():
    far = "<b>x</b>" * (DESCRIPTION_LIMIT // 8) + "<br>price: 1200 NOK<br>#noshow"
    appointment = normalize(event("e1", START, description=far), "primary", SETTINGS, NOW).appointment
    assert appointment.price == Money(90000, "NOK") and Mark.NO_SHOW not in appointment.marks


@pytest.mark.timeout(30)  # bench/bench_normalize.py prints how long each takes
@pytest.mark.parametrize("junk", ["<" * 20_000, "<b" * 10_000, "<!--" * 5_000, "&#" * 10_000, "<br " * 5_000])
def test_hostile_html_is_read(junk):
    appointment = normalize(event("e1", START, description=junk + "\nprice: 1200 NOK"), "primary", SETTINGS, NOW).appointment
    assert appointment is not None


# -- review 3: a tag typed on Slotguard's own note line ----------------------------------------

NOTE = "Slotguard: no-show fee 900.00 NOK pending review, charged Thu 05 Mar 00:00 unless you add #waive"


def noted(description: str, written: str = NOTE) -> dict:
    """The event as the Google write-back leaves it: the note line, and the note it wrote
    kept in the event's private properties."""
    resource = event("e1", START, color="11", description=description)
    resource["extendedProperties"] = {"private": {"slotguard_note": written, "slotguard_state": "pending_review"}}
    return resource


@pytest.mark.parametrize("description", [f"Regular client\n{NOTE} #waive", f"Regular<br>{NOTE}&nbsp;#waive</div>"])
def test_a_waive_tag_typed_after_slotguards_note_on_its_line_counts(description):
    appointment = normalize(noted(description), "primary", SETTINGS, NOW).appointment
    assert Mark.WAIVE in appointment.marks


def test_slotguards_own_note_alone_or_edited_inside_is_never_read_as_a_waiver():
    edited = NOTE.replace("pending review", "pending review (call her)")
    for description, written in ((f"Regular client\n{NOTE}", NOTE), (f"Regular client\n{edited}", NOTE),
                                 (f"{NOTE}\nSlotguard: an older line unless you add #waive", NOTE),
                                 (f"Regular client\n{NOTE}", "")):
        appointment = normalize(noted(description, written), "primary", SETTINGS, NOW).appointment
        assert Mark.WAIVE not in appointment.marks and Mark.NO_SHOW in appointment.marks, description


def test_a_waive_tag_typed_after_a_note_slotguard_kept_no_text_of_still_counts():
    # An older Slotguard wrote the line without keeping its text; or the practitioner edited
    # inside it: what follows "unless you add #waive" was typed by the practitioner.
    edited = NOTE.replace("pending review", "pending review (call her)")
    for description in (f"Regular client\n{NOTE} #waive", f"{edited} #waive"):
        assert Mark.WAIVE in normalize(noted(description, written=""), "primary", SETTINGS, NOW).appointment.marks
    ending_edited = NOTE.replace("unless you add", "unless you write") + " #waive"  # the whole line stays unread
    assert Mark.WAIVE not in normalize(noted(ending_edited, written=""), "primary", SETTINGS, NOW).appointment.marks


def test_a_stored_note_that_is_not_slotguards_never_hides_the_practitioners_text():
    # Only a Slotguard line is ever taken out: a stored value not starting "Slotguard:" is ignored.
    appointment = normalize(noted("Regular client #waive", written="Regular client #waive"), "primary", SETTINGS, NOW).appointment
    assert Mark.WAIVE in appointment.marks


# -- review 4: on an event guests may modify, only Google Meet's link is the meeting link -----


def test_on_an_event_guests_may_modify_only_google_meets_link_is_the_meeting_link():
    resource = event("e1", START) | {
        "guestsCanModify": True,
        "location": "https://pay-lena-massage.example/fee",
        "conferenceData": {"entryPoints": [{"entryPointType": "video", "uri": "https://pay-lena-massage.example/join"}]},
    }
    assert normalize(resource, "primary", SETTINGS, NOW).appointment.meeting_link == ""
    resource["hangoutLink"] = "https://meet.google.com/abc-defg-hij"
    assert normalize(resource, "primary", SETTINGS, NOW).appointment.meeting_link == "https://meet.google.com/abc-defg-hij"
    del resource["guestsCanModify"]
    del resource["hangoutLink"]
    assert normalize(resource, "primary", SETTINGS, NOW).appointment.meeting_link == "https://pay-lena-massage.example/join"


# -- calendar.client_organised = "remind": only an invitation you accepted, and never its names -


@pytest.mark.parametrize(("answer", "result"), [("accepted", "confirmed"), ("tentative", None), ("needsAction", None),
                                                ("declined", None), (None, None)])
def test_a_client_organised_event_is_an_appointment_only_once_you_accept_it(answer, result):
    remind = settings(calendar={"client_organised": "remind"})
    resource = invitation("ana@example.com") | {"organizer": {"email": "ana@example.com", "displayName": "URGENT pay at evil.example"}}
    resource["attendees"][1]["responseStatus"] = answer
    found = normalize(resource, "primary", remind, NOW)
    if result is None:
        assert found.appointment is None and "not accepted" in found.skipped
        return
    assert found.appointment is not None and found.appointment.status == result
    assert found.appointment.client.email == "ana@example.com" and found.appointment.client.name == "", "the display name is theirs to choose"
    # Accepted once, then no longer: followed as cancelled, so its reminders stop.
    for later in ("tentative", "needsAction", "declined"):
        resource["attendees"][1]["responseStatus"] = later
        again = normalize(resource, "primary", remind, NOW, previous=found.appointment).appointment
        assert again is not None and again.is_cancelled, later
