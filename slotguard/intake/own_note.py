"""Slotguard's own status line in an event's description, told apart from the practitioner's.

Where it may, the calendar write-back (integration/google_calendar.py) writes one line onto
the event, such as "Slotguard: no-show fee 900.00 NOK pending review, charged Thu 05 Mar 00:00
unless you add #waive", and keeps the exact text it wrote in the event's private extended
property `slotguard_note` (private: only the calendar's owner and Slotguard see it).

Reading the event, that text is taken out once where it stands verbatim and the rest of its
line is read like any other line: a `#waive` the practitioner types after the note counts.
When it is not found verbatim (the practitioner edited inside it; an older Slotguard kept
no text), a line starting with "Slotguard:" is left out whole, so the words of a note
("unless you add #waive") are never read as the practitioner's mark; only what follows the
line's last "unless you add <tag>" is read, since a pending fee's note ends there.

Pure: no I/O.
"""

from __future__ import annotations

NOTE_PREFIX = "Slotguard:"
NOTE_PROPERTY = "slotguard_note"
NOTE_PROPERTY_LIMIT = 1024  # Google keeps at most 1024 characters of a property's value
WAIVE_HINT = "unless you add"  # how the note of a fee pending review ends: "... unless you add #waive"


def note_line(note: str) -> str:
    """`note` as the one line Slotguard writes: whitespace folded, starting "Slotguard:"."""
    text = " ".join(note.split())
    return text if text.startswith(NOTE_PREFIX) else f"{NOTE_PREFIX} {text}"


def written_note(event: dict) -> str:
    """The line Slotguard last wrote onto `event`, from its private `slotguard_note`; "" when
    there is none Slotguard could have written (not text, too long, several lines, or not
    starting "Slotguard:"), so no other text is ever taken for it."""
    properties = event.get("extendedProperties")
    private = properties.get("private") if isinstance(properties, dict) else None
    value = private.get(NOTE_PROPERTY) if isinstance(private, dict) else None
    if not isinstance(value, str) or len(value) > NOTE_PROPERTY_LIMIT or "\n" in value or "\r" in value:
        return ""
    return value if value.startswith(NOTE_PREFIX) else ""


def without_own_note(text: str, written: str = "") -> str:
    """`text` (a description read as text, lines split by "\\n") without Slotguard's status
    line: `written`, the note it wrote last, taken out once where found, the rest of that
    line kept; every other line starting with "Slotguard:" (any case, after spaces or tabs)
    left out whole. Linear in the length of `text`."""
    if not text or NOTE_PREFIX.lower() not in text.lower():
        return text or ""
    kept: list[str] = []
    for line in text.split("\n"):
        if written:
            at = line.find(written)
            if at >= 0:
                kept.append(line[:at] + line[at + len(written):])
                written = ""  # once
                continue
        if not line.lstrip(" \t").lower().startswith(NOTE_PREFIX.lower()):
            kept.append(line)
        else:
            kept.append(_after_note(line))
    return "\n".join(kept)


def _after_note(line: str) -> str:
    """What the practitioner typed after a note on a "Slotguard:" line whose text is not
    known: what follows the line's last "unless you add <tag>" (where a pending fee's note
    ends), else nothing."""
    at = line.lower().rfind(f" {WAIVE_HINT} ")
    if at < 0:
        return ""
    tag_and_after = line[at + len(WAIVE_HINT) + 2:].split(None, 1)
    return " " + tag_and_after[1] if len(tag_and_after) == 2 else ""
