"""Graph events read as v3 Event dicts, and the status line in an Outlook body
(integration/microsoft_events.py): pure, no server."""

from __future__ import annotations

from datetime import UTC, datetime

from integration.microsoft_events import body_with_note, iana_zone, to_v3
from slotguard.intake.normalize import normalize
from tests.support.builders import settings

SETTINGS = settings(practice={"email": "lena@contoso.example"},
                    calendar={"source": "microsoft", "microsoft": {"client_id": "x"}, "marks": {"late_cancel": {"tags": [], "color": "banana"}}})
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def graph(**extra):
    return {
        "id": "AAMkE1", "subject": "Massage", "isOrganizer": True, "type": "singleInstance",
        "start": {"dateTime": "2026-03-09T08:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-09T09:00:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": "Central European Standard Time",
        "organizer": {"emailAddress": {"name": "Lena", "address": "lena@contoso.example"}},
        "attendees": [{"type": "required", "status": {"response": "tentativelyAccepted"}, "emailAddress": {"name": "Ana", "address": "ana@example.com"}},
                      {"type": "resource", "status": {"response": "accepted"}, "emailAddress": {"name": "Room 1", "address": "room1@contoso.example"}}],
        **extra,
    }


def test_times_are_utc_with_the_organizers_zone_mapped_from_its_windows_name():
    event = to_v3(graph(), SETTINGS)
    assert event["start"] == {"dateTime": "2026-03-09T08:00:00.000000Z", "timeZone": "Europe/Warsaw"}
    appointment = normalize(event, "default", SETTINGS, NOW).appointment
    assert appointment.start == datetime(2026, 3, 9, 8, tzinfo=UTC) and appointment.timezone == "Europe/Warsaw"
    assert appointment.client.email == "ana@example.com"  # the room is a resource, never the client
    assert event["attendees"][0]["responseStatus"] == "tentative" and event["attendees"][1]["resource"] is True


def test_zone_names_windows_iana_and_unknown():
    assert iana_zone("W. Europe Standard Time") == "Europe/Berlin"
    assert iana_zone("Europe/Oslo") == "Europe/Oslo"
    assert iana_zone("Customized Time Zone") == "" and iana_zone(None) == ""


def test_an_answer_not_in_utc_is_not_taken_for_utc():
    event = to_v3(graph(start={"dateTime": "2026-03-09T08:00:00.0000000", "timeZone": "W. Europe Standard Time"}), SETTINGS)
    assert event["start"] == {"dateTime": "2026-03-09T08:00:00.0000000", "timeZone": "W. Europe Standard Time"}


def test_all_day_removed_cancelled_and_series_master():
    assert to_v3(graph(isAllDay=True), SETTINGS)["start"] == {"date": "2026-03-09"}
    assert to_v3({"id": "gone", "@removed": {"reason": "deleted"}}, SETTINGS) == {"id": "gone", "status": "cancelled"}
    assert to_v3(graph(isCancelled=True), SETTINGS)["status"] == "cancelled"
    assert to_v3(graph(type="seriesMaster"), SETTINGS) is None


def test_a_category_for_a_mark_without_tags_reads_as_its_colour():
    event = to_v3(graph(categories=["Late cancellation"]), SETTINGS)
    assert event["colorId"] == "5"
    assert normalize(event, "default", SETTINGS, NOW).appointment.marks == {"late_cancel"}


def test_the_meeting_link_comes_from_the_online_meeting():
    event = to_v3(graph(onlineMeeting={"joinUrl": "https://teams.microsoft.com/l/meetup-join/abc"}), SETTINGS)
    assert normalize(event, "default", SETTINGS, NOW).appointment.meeting_link == "https://teams.microsoft.com/l/meetup-join/abc"


def test_the_body_line_is_appended_once_then_replaced_and_nothing_else_moves():
    text = body_with_note({"contentType": "text", "content": "Notes\nemail: ana@example.com"}, "fee pending")
    assert text["content"] == "Notes\nemail: ana@example.com\nSlotguard: fee pending"
    again = body_with_note(text, "fee  charged\n now")
    assert again["content"] == "Notes\nemail: ana@example.com\nSlotguard: fee charged now"
    page = body_with_note({"contentType": "html", "content": "<html><body><p>A &amp; B</p></body></html>"}, "fee <pending>")
    assert page["content"] == "<html><body><p>A &amp; B</p><div>Slotguard: fee &lt;pending&gt;</div></body></html>"
    assert body_with_note(page, "fee charged")["content"] == "<html><body><p>A &amp; B</p><div>Slotguard: fee charged</div></body></html>"


def test_links_are_followed_only_under_the_configured_graph_endpoint():
    from integration.microsoft_graph import GraphClient

    proxied = settings(calendar={"source": "microsoft", "microsoft": {"client_id": "x", "graph_endpoint": "https://graph-proxy.example/v1.0"}})
    client = GraphClient(proxied, token=None, session=None)  # type: ignore[arg-type]  # no request is made
    link = "https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=abc"
    assert client.rebased(link) == "https://graph-proxy.example/v1.0/me/calendarView/delta?$deltatoken=abc"
    assert client.rebased("https://graph-proxy.example/v1.0/me/events/1") == "https://graph-proxy.example/v1.0/me/events/1"
    assert client.rebased("https://attacker.example/v1.0/me/calendarView/delta") is None
    assert client.rebased("https://graph.microsoft.com/beta/me/calendarView/delta") is None
    assert client.rebased("https://graph-proxy.example/v1.0evil/me") is None


def test_your_answer_to_a_clients_invitation_is_read_from_the_events_response_status():
    remind = settings(practice={"email": "lena@contoso.example"},
                      calendar={"source": "microsoft", "microsoft": {"client_id": "x"}, "client_organised": "remind"})
    # Ana organised it; in your copy your own attendee entry says nothing, the event's responseStatus is your answer.
    invitation = graph(isOrganizer=False, organizer={"emailAddress": {"name": "Ana", "address": "ana@example.com"}},
                       attendees=[{"type": "required", "status": {"response": "none"},
                                   "emailAddress": {"name": "Lena", "address": "lena@contoso.example"}}])
    for response, status in (("accepted", "confirmed"), ("tentativelyAccepted", None), ("notResponded", None), (None, None)):
        item = invitation | ({"responseStatus": {"response": response, "time": "2026-03-01T10:00:00Z"}} if response else {})
        appointment = normalize(to_v3(item, remind), "default", remind, NOW).appointment
        assert (appointment.status if appointment else None) == status, response
        if appointment is not None:
            assert appointment.client.email == "ana@example.com" and appointment.client.name == ""
    own = to_v3(graph(responseStatus={"response": "organizer"}), SETTINGS)
    assert not any(entry.get("self") for entry in own["attendees"]), "your own event: nothing added"
