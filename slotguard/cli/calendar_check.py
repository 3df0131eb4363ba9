"""What `check-config` tries for real about the calendar: with calendar.source = "caldav", that
the server takes the user name and password and has the calendar named (discovery:
integration/caldav_discovery.py, three requests). Nothing is read or written beyond that."""

from __future__ import annotations

from slotguard.config.schema import ConfigError, Settings
from slotguard.domain.interfaces import AdapterError


def check_calendar(settings: Settings) -> str:
    """A phrase for check-config's output ("" for a source that is not tried). Raises
    ConfigError with the problem (a refused password, a missing calendar with the names the
    account has, an unreachable server), never quoting a secret."""
    if settings.calendar.source != "caldav":
        return ""
    from integration.caldav_source import open_calendar  # lazy: only a CalDAV practice loads the adapter

    try:
        source, _ = open_calendar(settings)
    except AdapterError as error:
        raise ConfigError([f"calendar.caldav: {error}"]) from None
    try:
        found = source.account.discovered()
    except AdapterError as error:
        raise ConfigError([f"calendar.caldav: {error}"]) from None
    finally:
        source.client.close()
    how = "asks what changed (sync-collection)" if found.sync else "compares ETags (no sync-collection)"
    return f"; the CalDAV server has the calendar {found.display_name!r} and Slotguard {how}"
