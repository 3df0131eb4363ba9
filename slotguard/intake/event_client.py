"""Who the client of the practitioner's own event is.

The guests of an event are not all clients: the practitioner, rooms and other resources,
the addresses in `calendar.exclude_addresses` never are. Of the rest, any one could be
the client, and Google lets a guest invite others unless the practitioner turned that off
(guestsCanInviteOthers), so the order of the guest list says nothing. The rule:

- one possible client among the guests: that guest;
- no guest who could be the client: the `email:` line, if there is one;
- several, or a guest and an `email:` line naming someone else: the `email:` line must
  name one of the guests, and that guest is the client; otherwise it is ambiguous, and the
  event is a problem for the practitioner: no fee, nothing sent (a couple's booking, a
  parent with a child, a guest someone added).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from slotguard.config.schema import Settings
from slotguard.domain.model import Client
from slotguard.domain.untrusted import email_address, one_line, shown
from slotguard.intake.ownership import practitioner_addresses

NAME_LIMIT = 100
SHOWN_CLIENTS = 5  # a problem message lists at most this many addresses

_NEVER_THE_CLIENT: dict[tuple[int, str], tuple[Settings, frozenset[str]]] = {}


class AmbiguousClient(ValueError):
    """The event does not say who the client is; the message says how to say it."""


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def never_the_client(settings: Settings, calendar_id: str) -> frozenset[str]:
    """practice.email, calendar.exclude_addresses, calendar.practitioner_addresses and the
    calendar's id, in lower case; worked out once per settings and calendar."""
    found = _NEVER_THE_CLIENT.get((id(settings), calendar_id))
    if found is not None and found[0] is settings:
        return found[1]
    excluded = {address.lower() for address in settings.calendar.exclude_addresses}
    excluded.update(practitioner_addresses(settings, calendar_id))
    if len(_NEVER_THE_CLIENT) > 64:
        _NEVER_THE_CLIENT.clear()
    _NEVER_THE_CLIENT[(id(settings), calendar_id)] = (settings, frozenset(excluded))
    return frozenset(excluded)


def candidates(event: dict, settings: Settings, calendar_id: str) -> list[dict]:
    """The attendees who could be the client: not the organizer, the practitioner, a
    resource or an excluded address. Addresses are read as given (see `choose_client`)."""
    excluded = never_the_client(settings, calendar_id)
    organizer = _text((event.get("organizer") or {}).get("email") if isinstance(event.get("organizer"), dict) else "").strip().lower()
    found = []
    for attendee in event.get("attendees") or []:
        if not isinstance(attendee, dict):
            continue
        email = _text(attendee.get("email")).strip()
        if (
            not email
            or attendee.get("organizer")
            or attendee.get("resource")
            or attendee.get("self")
            or email.lower() == organizer
            or email.lower() in excluded
        ):
            continue
        found.append(attendee)
    return found


def choose_client(guests: list[dict], lines: dict[str, str]) -> Client | None:
    """The client among `guests` (from `candidates`) and the `email:` line, or None when
    neither names anyone. Raises ValueError when the one address that would be the client
    is not one plain email address (a guest's, or the line's), AmbiguousClient when the
    event could be about more than one client. A junk address beside a usable one is never
    read: it can be neither billed nor mailed."""
    line = lines.get("email")
    named = None
    if line is not None:
        named = email_address(line.strip().strip("<>"))
        if named is None:
            raise ValueError(f"the email: line {shown(line)} is not an email address; write one address, like \"email: ana@example.com\"")
    usable: dict[str, dict] = {}
    for guest in guests:
        address = email_address(_text(guest.get("email")))
        if address is not None:
            usable.setdefault(address, guest)
    if not usable:
        if guests and named is None:
            raw = _text(guests[0].get("email"))
            raise ValueError(f"the attendee {shown(raw)} is not an email address; correct the guest's address")
        return Client(email=named, name="") if named else None
    if named is not None and named in usable:
        return _guest(named, usable[named])
    if named is None and len(usable) == 1:
        [(address, guest)] = usable.items()
        return _guest(address, guest)
    possible = list(usable) + ([named] if named else [])
    listed = ", ".join(possible[:SHOWN_CLIENTS]) + (f" and {len(possible) - SHOWN_CLIENTS} more" if len(possible) > SHOWN_CLIENTS else "")
    if named:
        raise AmbiguousClient(
            f"{len(possible)} possible clients: {listed} (its email: line names {named}, who is not a guest); no fee is "
            "taken and nothing is sent for it. Make the email: line name the guest who is the client, or take the line out"
        )
    raise AmbiguousClient(
        f"{len(possible)} possible clients: {listed}; no fee is taken and nothing is sent for it. Add a line like "
        f"\"email: {possible[0]}\" to its description to say who the client is (addresses that are never the client "
        "can go in calendar.exclude_addresses)"
    )


def _guest(address: str, guest: dict) -> Client:
    return Client(email=address, name=one_line(_text(guest.get("displayName")), NAME_LIMIT))
