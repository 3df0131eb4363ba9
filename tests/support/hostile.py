"""Hypothesis strategies for hostile calendar input: Google Calendar v3 Event resources and
VEVENT text with any text in every field, any dates (the extremes included, in any time
zone), any RRULE, RDATE, EXDATE, RECURRENCE-ID, DURATION and alarm, any arrangement of
organizer and attendees, any colours. Used by the hostile-input suite
(tests/unit/intake/test_hostile_events.py, tests/integration/test_hostile_tick.py).

`practitioners_own(event)` says, from the rule in issue 11 alone, whether an event is the
practitioner's (PRACTITIONER_ADDRESSES, organizer `self`, or no organizer at all).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

CALENDAR_ID = "primary"
PRACTICE_EMAIL = "lena@example.com"
OTHER_OWN_ADDRESS = "lena.berg@gmail.com"  # configured as calendar.practitioner_addresses
PRACTITIONER_ADDRESSES = {PRACTICE_EMAIL, OTHER_OWN_ADDRESS, CALENDAR_ID}
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=ZoneInfo("Europe/Oslo"))

# Text that has broken something somewhere, plus plain and control-laden text.
NASTY = [
    "", " ", "\n", "\r\n", "\x00", "\u2028", "\ufeff", "#noshow", "#waive", "#latecancel", "#earlier",
    "price: 1000000 NOK", "price: 100000000000000000000000 NOK", "price: -5 NOK", "price: 0.001 NOK", "price: NOK",
    "cancelled: 0001-01-01T00:00:00+01:00", "cancelled: 9999-12-31T23:59:59-12:00", "cancelled: 2027-03-04T09:00:00+01:00",
    "cancelled: 2026-03-03T09:00:00", "email: ana@example.com", "email: a@b\r\nBcc: x@y.z", "email: <bo@example.com>",
    "lang: de", "lang: ../../etc", "lang: " + "x" * 300, "link: javascript:alert(1)", "link: https://meet.example.com/a",
    "link: data:text/html,<script>", "Slotguard: no-show fee pending review unless you add #waive",
    "\n" * 200 + "x", " \t" * 100, "<br>" * 20, "{{ 7*7 }}", "{% raw %}", "<script>alert(1)</script>", "%s%s%n",
]
text = st.one_of(st.text(max_size=40), st.sampled_from(NASTY))
ADDRESSES = [
    PRACTICE_EMAIL, "LENA@Example.com", " lena@example.com ", OTHER_OWN_ADDRESS, CALENDAR_ID, "ana@example.com",
    "bo@example.com", "stranger@x.example", "ana@example.com\r\nBcc: victim@example.com", "not an address",
    "a@b", "@example.com", "ana@", "ana@@example.com", "<ana@example.com>", "Ana <ana@example.com>", "",
    "x" * 300 + "@example.com", "анна@пример.рф", "ana@exam_ple.com",
]
address = st.one_of(st.sampled_from(ADDRESSES), st.emails(), st.text(max_size=30))
ZONES = [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12)), ZoneInfo("Europe/Oslo"), ZoneInfo("Asia/Kolkata")]
moment = st.one_of(
    st.datetimes(min_value=NOW.replace(tzinfo=None) - timedelta(days=20), max_value=NOW.replace(tzinfo=None) + timedelta(days=20), timezones=st.sampled_from(ZONES)),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59), timezones=st.sampled_from(ZONES)),
)
stamp = st.one_of(moment.map(lambda value: value.isoformat()), text, st.datetimes().map(lambda value: value.isoformat()))
colour = st.one_of(st.sampled_from(["11", "tomato", "TOMATO", "1", "10", "0", "12", " 11", ""]), text)
zone_name = st.one_of(st.sampled_from(["Europe/Oslo", "UTC", "Asia/Kolkata", "Europe/Atlantis", "../../etc/passwd", "America", ""]), text)


@st.composite
def when(draw) -> dict:
    """A v3 start/end: dateTime (with or without a zone), an all-day date, or junk."""
    kind = draw(st.sampled_from(["dateTime", "dateTime", "dateTime", "date", "junk"]))
    value: dict = {}
    if kind == "dateTime":
        value["dateTime"] = draw(stamp)
    elif kind == "date":
        value["date"] = draw(st.one_of(st.dates().map(lambda day: day.isoformat()), text))
    else:
        value = draw(st.dictionaries(st.sampled_from(["dateTime", "date", "timeZone", "x"]), text, max_size=2))
    if draw(st.booleans()):
        value["timeZone"] = draw(zone_name)
    return value


@st.composite
def slot(draw) -> tuple[dict, dict]:
    """Mostly a plausible start and end around NOW (so policies act on it), else any two."""
    if draw(st.integers(0, 3)):
        start = draw(st.datetimes(min_value=NOW.replace(tzinfo=None) - timedelta(days=3), max_value=NOW.replace(tzinfo=None) + timedelta(days=5),
                                  timezones=st.just(ZoneInfo("Europe/Oslo"))))
        minutes = draw(st.sampled_from([30, 60, 60, 90, -60, 0]))
        return ({"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
                {"dateTime": (start + timedelta(minutes=minutes)).isoformat(), "timeZone": "Europe/Oslo"})
    return draw(when()), draw(when())


description = st.lists(st.one_of(st.sampled_from(NASTY), text), max_size=6).map("\n".join)


CLIENTS = ["ana@example.com", "bo@example.com", "Cy@Example.com", "ana@example.com\r\nBcc: victim@example.com", "not an address"]


@st.composite
def attendee(draw, email: st.SearchStrategy = address) -> dict:
    entry: dict = {"email": draw(email)}
    for key, strategy in (
        ("displayName", text),
        ("responseStatus", st.one_of(st.sampled_from(["accepted", "declined", "tentative", "needsAction"]), text)),
        ("self", st.booleans()),
        ("organizer", st.booleans()),
        ("resource", st.booleans()),
    ):
        if draw(st.integers(0, 3)) == 0:
            entry[key] = draw(strategy)
    return entry


@st.composite
def v3_event(draw, event_id: str) -> dict:
    """One Event resource as a Google Calendar (or a hostile fake of it) might send it:
    mostly shaped like an appointment (someone's, with a would-be client), with hostile
    text in its fields; sometimes anything at all."""
    start, end = draw(slot())
    event: dict = {"id": event_id, "start": start, "end": end}
    optional = {
        "status": st.one_of(st.sampled_from(["confirmed", "confirmed", "cancelled", "tentative"]), text),
        "summary": st.one_of(text, st.sampled_from(["Massage #noshow", "Coffee? #noshow", "Massage #latecancel", "Massage #waive", "Massage"])),
        "description": description,
        "location": text,
        "colorId": colour,
        "updated": stamp,
        "created": stamp,
        "hangoutLink": st.one_of(text, st.sampled_from(["https://meet.google.com/abc", "javascript:alert(1)"])),
        "recurringEventId": text,
        "originalStartTime": when(),
        "conferenceData": st.fixed_dictionaries({"entryPoints": st.lists(st.fixed_dictionaries({"entryPointType": st.sampled_from(["video", "phone"]), "uri": text}), max_size=2)}),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            event[key] = draw(strategy)
    who = draw(st.sampled_from(["practitioner", "practitioner-self", "other-own-address", "none", "stranger", "client", "anyone"]))
    organizer = {
        "practitioner": {"email": PRACTICE_EMAIL},
        "practitioner-self": {"email": draw(address), "self": True},
        "other-own-address": {"email": OTHER_OWN_ADDRESS.upper()},
        "none": None,
        "stranger": {"email": "stranger@x.example"},
        "client": {"email": "ana@example.com"},
        "anyone": {"email": draw(address), **({"self": draw(st.booleans())} if draw(st.booleans()) else {})},
    }[who]
    if organizer is not None:
        event["organizer"] = organizer
    # Hypothesis leans towards small numbers: 0 here means "shaped like an appointment".
    if draw(st.integers(0, 5)) != 5:
        guests = [attendee(st.sampled_from(CLIENTS)) for _ in range(1 if draw(st.integers(0, 3)) != 3 else draw(st.sampled_from([0, 2])))]
        others = [attendee() for _ in range(draw(st.integers(0, 2)))]
        people = [draw(guest) for guest in guests] + [draw(other) for other in others]
        if organizer is not None and draw(st.booleans()):
            people.insert(0, {"email": organizer["email"], "organizer": True, **({"self": True} if organizer.get("self") else {})})
        if draw(st.booleans()):
            people.insert(draw(st.integers(0, len(people))), {"email": PRACTICE_EMAIL, "self": True, "responseStatus": "accepted"})
        event["attendees"] = draw(st.permutations(people)) if draw(st.integers(0, 3)) == 0 else people
    return event


@st.composite
def appointment_like(draw, event_id: str) -> dict:
    """An event that reads as an appointment but for who organised it: a client attendee,
    a sane time around NOW, and marks and lines that would move money (a no-show colour or
    tag, a late cancellation, a price line), organised by the practitioner in one of the
    ways they can, by nobody, by a stranger or by a client."""
    start = NOW + timedelta(hours=draw(st.integers(-72, 120)))
    client = draw(st.sampled_from(["ana@example.com", "bo@example.com", "cy@example.com"]))
    who = draw(st.sampled_from(["stranger", "practitioner", "client", "practitioner-self", "other-own-address", "none"]))
    event: dict = {
        "id": event_id,
        "summary": draw(st.sampled_from(["Massage #noshow", "Coffee? #noshow", "Massage #latecancel", "Massage", "Massage #waive"])),
        "description": "\n".join(draw(st.lists(st.sampled_from(["price: 1500 NOK", "price: 1000000 NOK", "email: bo@example.com", "#noshow",
                                                                     f"cancelled: {(start - timedelta(hours=3)).isoformat()}", "link: https://meet.example.com/x"]), max_size=3))),
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Oslo"},
        "attendees": [{"email": PRACTICE_EMAIL, "self": True, "responseStatus": "accepted"},
                      {"email": client, "displayName": draw(text), "responseStatus": draw(st.sampled_from(["accepted", "declined"]))}],
    }
    if draw(st.booleans()):
        event["colorId"] = "11"
    organizer = {
        "stranger": {"email": "stranger@x.example"},
        "practitioner": {"email": PRACTICE_EMAIL},
        "client": {"email": draw(st.sampled_from(["ana@example.com", "bo@example.com"]))},
        "practitioner-self": {"email": "owner@example.org", "self": True},
        "other-own-address": {"email": OTHER_OWN_ADDRESS},
        "none": None,
    }[who]
    if organizer is not None:
        event["organizer"] = organizer
        event["attendees"].insert(0, {"email": organizer["email"], "organizer": True, "responseStatus": "accepted"})
    return event


def practitioners_own(event: dict) -> bool:
    """Issue 11's rule, independently of the code: the practitioner's event when its
    organizer (or, without one, the attendee flagged organizer) is marked `self`, is one of
    the practitioner's addresses, or there is none at all."""
    organizer = event.get("organizer")
    if organizer is None:
        organizer = next((entry for entry in event.get("attendees") or [] if entry.get("organizer")), None)
    if organizer is None or organizer.get("self") is True:
        return True
    return str(organizer.get("email") or "").strip().lower() in PRACTITIONER_ADDRESSES


# -- VEVENT text ---------------------------------------------------------------------------


def ics_text(value: str) -> str:
    """A TEXT value escaped as RFC 5545 says (so the hostile text arrives as written)."""
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


ics_moment = st.one_of(
    moment.map(lambda value: value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") if 1 < value.year < 9999 else "00010101T000000Z"),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(lambda value: value.strftime("%Y%m%dT%H%M%S")),
    st.sampled_from(["20260304T100000Z", "20260304", "99991231T235959Z", "00010101T000000Z", "garbage", ""]),
)
# Time zones east and west of UTC (a year-1 or year-9999 time overflows on its way to UTC in
# one of them), and one that does not exist.
ICS_ZONES = ["Europe/Oslo", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Mars/Olympus"]
EXTREME_DAYS = ["00010101", "00010102", "99991230", "99991231", "20260304", "20260305"]
DURATIONS = ["PT1H", "PT0S", "-PT1H", "P99999W", "P500000W", "P1000000W", "-P1000000W", "P1D", "junk"]


EXTREME_MOMENTS = ["00010101T000000Z", "00010101T000000", "00010101T120000", "99991231T235959Z", "99991231T235959", "99991231T120000"]


@st.composite
def ics_time(draw, name: str) -> str:
    """A date-time property line: in UTC, floating, in a TZID, an all-day date, or junk;
    often at the very start or end of the years Python knows."""
    kind = draw(st.sampled_from(["plain", "extreme", "zone", "date"]))
    if kind == "extreme":
        return f"{name}:{draw(st.sampled_from(EXTREME_MOMENTS))}"
    if kind == "zone":
        value = draw(st.one_of(
            st.sampled_from([moment.rstrip("Z") for moment in EXTREME_MOMENTS]),
            st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(lambda value: value.strftime("%Y%m%dT%H%M%S")),
        ))
        return f"{name};TZID={draw(st.sampled_from(ICS_ZONES))}:{value}"
    if kind == "date":
        return f"{name};VALUE=DATE:{draw(st.one_of(st.sampled_from(EXTREME_DAYS), st.dates().map(lambda day: day.strftime('%Y%m%d'))))}"
    return f"{name}:{draw(ics_moment)}"


@st.composite
def rrule(draw) -> str:
    """Any RRULE: every frequency, UNTIL at any time, absurd COUNT and INTERVAL, and day and
    time filters that match rarely or never (day 366 of January, a 29 February on a Monday)."""
    parts = [f"FREQ={draw(st.sampled_from(['SECONDLY', 'MINUTELY', 'HOURLY', 'DAILY', 'WEEKLY', 'MONTHLY', 'YEARLY', 'JUNK']))}"]
    optional = {
        "UNTIL": ics_moment,
        "COUNT": st.sampled_from(["1", "3", "0", "-1", "1000000000", "x"]),
        "INTERVAL": st.sampled_from(["1", "2", "7", "1000", "0", "-1"]),
        "BYMONTH": st.sampled_from(["1", "2", "6", "12", "13", "2,4"]),
        "BYMONTHDAY": st.sampled_from(["1", "29", "30", "31", "-1", "-31", "0"]),
        "BYYEARDAY": st.sampled_from(["1", "200", "366", "-366", "367"]),
        "BYWEEKNO": st.sampled_from(["1", "53", "-1", "54"]),
        "BYDAY": st.sampled_from(["MO", "TU,TH", "1MO", "-1FR", "5FR", "53MO", "XX"]),
        "BYHOUR": st.sampled_from(["3", "23", "24"]),
        "BYSETPOS": st.sampled_from(["1", "-1", "6", "400"]),
    }
    for name in draw(st.lists(st.sampled_from(list(optional)), max_size=3, unique=True)):
        parts.append(f"{name}={draw(optional[name])}")
    return "RRULE:" + ";".join(parts)


@st.composite
def vevent(draw, uid: str) -> str:
    """One VEVENT's lines; some properties are raw (unescaped) hostile text, and any of its
    times, recurrence parts and alarms may be absurd."""
    lines = [f"UID:{uid}"]
    if draw(st.integers(0, 11)):
        lines.append(draw(st.one_of(st.just("DTSTART:20260304T100000Z"), ics_time("DTSTART"))))
    if draw(st.integers(0, 3)) != 3:
        lines.append(draw(st.one_of(st.just("DTEND:20260304T110000Z"), ics_time("DTEND"))))
    elif draw(st.booleans()):
        lines.append(f"DURATION:{draw(st.sampled_from(DURATIONS))}")
    for name, strategy in (("SUMMARY", text), ("DESCRIPTION", description), ("LOCATION", text), ("COLOR", colour), ("STATUS", text)):
        if draw(st.booleans()):
            lines.append(f"{name}:{ics_text(draw(strategy))}")
    for name in ("LAST-MODIFIED", "CREATED"):
        if draw(st.booleans()):
            lines.append(f"{name}:{draw(ics_moment)}")
    organizer = draw(st.sampled_from([PRACTICE_EMAIL, None, "stranger@x.example", "ana@example.com", OTHER_OWN_ADDRESS, ""]))
    if organizer == "":
        organizer = draw(address)
    if organizer is not None:
        lines.append(f"ORGANIZER;CN={ics_text(draw(text))[:20] or 'x'}:mailto:{ics_text(organizer)}")
    # Hypothesis leans towards small numbers: 0 here means one would-be client.
    for index in range(1 if draw(st.integers(0, 3)) != 3 else draw(st.integers(0, 3))):
        partstat = draw(st.sampled_from(["ACCEPTED", "DECLINED", "NEEDS-ACTION", "junk"]))
        guest = draw(st.sampled_from(CLIENTS)) if index == 0 and draw(st.integers(0, 2)) != 2 else draw(address)
        lines.append(f"ATTENDEE;PARTSTAT={partstat}:mailto:{ics_text(guest)}")
    if draw(st.integers(0, 3)) == 0:
        lines.append(draw(st.one_of(
            st.sampled_from(["RRULE:FREQ=DAILY;COUNT=3", "RRULE:FREQ=WEEKLY;COUNT=2", "RRULE:FREQ=JUNK", "RRULE:FREQ=DAILY;UNTIL=00010101T000000Z"]),
            rrule(),
        )))
    if draw(st.integers(0, 5)) == 0:
        lines.append(draw(ics_time("RECURRENCE-ID")))
    for name in ("EXDATE", "RDATE"):
        if draw(st.integers(0, 7)) == 0:
            lines.append(draw(st.one_of(
                ics_time(name),
                st.lists(ics_moment, min_size=1, max_size=3).map(lambda values, name=name: f"{name}:{','.join(values)}"),
                st.sampled_from(DURATIONS).map(lambda duration, name=name: f"{name};VALUE=PERIOD:20260305T100000Z/{duration}"),
            )))
    if draw(st.integers(0, 7)) == 0:
        trigger = draw(st.sampled_from(["-PT15M", "junk", "19970317T133000Z", "-P1000000W", ""]))
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:x", f"TRIGGER:{trigger}", "END:VALARM"]
    return "\r\n".join(["BEGIN:VEVENT", *lines, "END:VEVENT"])


GOOD_UID = "good@practice.example"
GOOD_VEVENT = "\r\n".join([
    "BEGIN:VEVENT", f"UID:{GOOD_UID}", "SUMMARY:Massage", "DTSTART:20260305T100000Z", "DTEND:20260305T110000Z",
    f"ORGANIZER:mailto:{PRACTICE_EMAIL}", "ATTENDEE;CN=Ana Silva;PARTSTAT=ACCEPTED:mailto:ana@example.com", "END:VEVENT",
])


@st.composite
def feed_with_a_good_appointment(draw) -> str:
    """A feed of one arbitrary VEVENT (or a series and an arbitrary moved instance of it)
    and the practitioner's appointment GOOD_VEVENT, in either order, sometimes with a
    calendar time zone (X-WR-TIMEZONE, as Google's feeds have)."""
    arbitrary = [draw(vevent("uid-0@hostile.example"))]
    if draw(st.integers(0, 3)) == 0:
        arbitrary.append(draw(vevent("uid-0@hostile.example")))
    events = [*arbitrary, GOOD_VEVENT] if draw(st.booleans()) else [GOOD_VEVENT, *arbitrary]
    header = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//hostile//test//EN"]
    if draw(st.booleans()):
        header.append(f"X-WR-TIMEZONE:{draw(st.sampled_from(ICS_ZONES[:4]))}")
    return "\r\n".join([*header, *events, "END:VCALENDAR", ""])


@st.composite
def ics_feed(draw) -> str:
    events = [draw(vevent(f"uid-{index}@hostile.example")) for index in range(draw(st.integers(1, 4)))]
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//hostile//test//EN", *events, "END:VCALENDAR", ""])
