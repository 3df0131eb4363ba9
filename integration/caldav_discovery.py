"""Finding the practitioner's calendar on a CalDAV server from its base address (RFC 4791
section 7.1, RFC 6764 without DNS): the current user's principal, the calendar home, then
the calendar by its display name or address.

Three PROPFINDs, once (a fourth when the address given names no account and the server's
/.well-known/caldav is asked): the result is kept in the adapter's state file
(integration/caldav_state.py), so later ticks and restarts send none. It also finds whether
the calendar answers `sync-collection` (RFC 6578; else the source compares ETags) and the
account's own addresses (calendar-user-address-set), which make the practitioner's events
theirs even when the organizer is their iCloud or Fastmail address, not practice.email.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

from integration.caldav_http import DavClient, Item, cal, dav
from slotguard.domain.interfaces import AdapterError, ReauthorizationNeeded
from slotguard.domain.untrusted import one_line, shown

PRINCIPAL = '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:current-user-principal/></D:prop></D:propfind>'
HOME = ('<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>'
        "<C:calendar-home-set/><C:calendar-user-address-set/></D:prop></D:propfind>")
CALENDARS = ('<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>'
             "<D:resourcetype/><D:displayname/><D:supported-report-set/><C:supported-calendar-component-set/></D:prop></D:propfind>")


@dataclass(frozen=True)
class Found:
    calendar_url: str
    display_name: str
    sync: bool
    addresses: tuple[str, ...]


def _is_calendar(item: Item) -> bool:
    kind = item.props.get(dav("resourcetype"))
    if kind is None or kind.find(cal("calendar")) is None:
        return False
    components = item.props.get(cal("supported-calendar-component-set"))
    if components is None or not list(components):
        return True  # not said: any component
    return any(component.get("name", "").upper() == "VEVENT" for component in components)


def _supports_sync(item: Item) -> bool:
    reports = item.props.get(dav("supported-report-set"))
    return reports is not None and reports.find(f".//{dav('sync-collection')}") is not None


def _name(item: Item) -> str:
    return item.text(dav("displayname")) or unquote(urlsplit(item.href).path.rstrip("/").rpartition("/")[2])


def _addresses(item: Item) -> tuple[str, ...]:
    element = item.props.get(cal("calendar-user-address-set"))
    found = []
    for href in element.iter(dav("href")) if element is not None else []:
        text = (href.text or "").strip()
        if text.lower().startswith("mailto:") and "@" in text:
            found.append(text[7:].strip().lower())
    return tuple(found)


def is_address(calendar: str) -> bool:
    """True when calendar.caldav.calendar names a calendar by address, not display name."""
    return calendar.startswith(("https://", "http://", "/"))


def discover(client: DavClient, calendar: str) -> Found:
    """Find the calendar. Raises AdapterError naming what is missing and what to do
    (retryable=False for a calendar that is not there, listing the ones that are)."""
    where = client.where
    principal = ""
    # The address given, then the server's /.well-known/caldav (RFC 6764), which redirects
    # to where its CalDAV lives.
    for start in (client.base_url, urljoin(client.base_url, "/.well-known/caldav")):
        try:
            items, _ = client.multistatus("PROPFIND", start, PRINCIPAL, "0", "finding your account (current-user-principal)")
        except ReauthorizationNeeded:
            raise
        except AdapterError:
            if start != client.base_url:
                raise
            continue
        principal = next((href for item in items for href in item.hrefs(dav("current-user-principal"), item.href)), "")
        if principal:
            break
    if not principal:
        raise AdapterError(f"{where}: {client.base_url} names no account (no current-user-principal); check calendar.caldav.url "
                           "(iCloud https://caldav.icloud.com/, Fastmail https://caldav.fastmail.com/, Nextcloud https://HOST/remote.php/dav/)", retryable=False)
    items, _ = client.multistatus("PROPFIND", principal, HOME, "0", "finding your calendars (calendar-home-set)")
    homes = [href for item in items for href in item.hrefs(cal("calendar-home-set"), item.href)]
    addresses = next((_addresses(item) for item in items if item.props.get(cal("calendar-user-address-set")) is not None), ())
    if is_address(calendar):
        url = urljoin(client.base_url, calendar)
        items, _ = client.multistatus("PROPFIND", url, CALENDARS, "0", "reading the calendar's properties")
        item = next((item for item in items if _is_calendar(item)), None)
        if item is None:
            raise AdapterError(f"{where}: {shown(calendar, 120)} is not a calendar of events; check calendar.caldav.calendar", retryable=False)
        return Found(url, _name(item), _supports_sync(item), addresses)
    if not homes:
        raise AdapterError(f"{where}: the account has no calendar home (calendar-home-set); give the calendar's address in calendar.caldav.calendar", retryable=False)
    items, _ = client.multistatus("PROPFIND", homes[0], CALENDARS, "1", "listing your calendars")
    calendars = [item for item in items if _is_calendar(item)]
    names = ", ".join(shown(one_line(_name(item), 60), 60) for item in calendars) or "none"
    if not calendar:
        if len(calendars) == 1:
            chosen = calendars[0]
        else:
            raise AdapterError(f"{where}: the account has {len(calendars)} calendars ({names}); name one in calendar.caldav.calendar", retryable=False)
    else:
        wanted = calendar.strip().casefold()
        matches = [item for item in calendars if _name(item).strip().casefold() == wanted]
        if not matches:
            raise AdapterError(f"{where}: no calendar named {shown(calendar, 60)}; the account has: {names}. Correct calendar.caldav.calendar", retryable=False)
        chosen = matches[0]
    return Found(chosen.href, _name(chosen), _supports_sync(chosen), addresses)
