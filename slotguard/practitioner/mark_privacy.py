"""Which of the practitioner's marks a client can read.

Google shows an event's title and description to everyone invited to it, in their own
calendar (an .ics feed exported from such a calendar carries the same text). A tag such as
`#latecancel` or `#emergency` in either is therefore read by a client invited to the
appointment; an event's colour, and Slotguard's private extended properties, stay with the
practitioner's calendar. So a fee mark that can only be written as a tag is worth a warning:
in `check-config` from the configuration alone (it cannot know who is invited), and in the
daily digest once the ledger holds appointments the client is invited to.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from slotguard.config.schema import Settings
from slotguard.store.ledger import Ledger

FEE_MARKS = ("no_show", "late_cancel", "waive")  # the marks that say something about the client
SOURCES_CLIENTS_READ = ("google", "ics")
RECENT = timedelta(days=30)  # the digest looks at appointments from this long ago onwards


def tag_only_marks(settings: Settings) -> list[str]:
    """Names of the fee marks configured by tags and no colour, when the calendar is one
    clients can be invited to; [] otherwise."""
    if settings.calendar.source not in SOURCES_CLIENTS_READ:
        return []
    marks = settings.calendar.marks
    return [name for name in FEE_MARKS if getattr(marks, name).tags and not getattr(marks, name).color]


def check_config_warnings(settings: Settings) -> list[str]:
    """What `check-config` says about marks clients may read (said from the config alone)."""
    names = tag_only_marks(settings)
    if not names:
        return []
    tags = _tags(settings, names)
    paths = ", ".join(f"calendar.marks.{name}" for name in names)
    return [
        f"{paths}: marked only by tags ({', '.join(tags)}). Google shows an event's title and description to "
        "everyone invited to it, so a client invited to their appointment reads these tags in their own calendar. "
        'Add a colour to each (e.g. color = "banana"): colours are the private way to mark. '
        "(Said from the config alone: it does not matter if you never invite clients.)"
    ]


def digest_warning(settings: Settings, ledger: Ledger, now: datetime) -> dict[str, Any] | None:
    """{"rules": [...], "tags": [...]} for the digest's one-line warning when fee marks are
    tags only and the ledger holds recent or coming appointments the client is invited to;
    None otherwise."""
    names = tag_only_marks(settings)
    if not names or not ledger.has_invited_clients(now - RECENT):
        return None
    return {"rules": names, "tags": _tags(settings, names)}


def _tags(settings: Settings, names: list[str]) -> list[str]:
    return [tag for name in names for tag in getattr(settings.calendar.marks, name).tags]
