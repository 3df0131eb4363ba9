"""An event its source names otherwise than an older Slotguard did: the stored appointment is
renamed before the page is read, so the event stays the same appointment.

The case: the .ics source (integration/ics_source.py) named every event UID_YYYYMMDDTHHMMSSZ,
a single event's too (its start in UTC, with its UID as series id), so a moved single event
came back under a new id, read as a cancellation by the practitioner and a new booking. It now
names a single event by its UID alone (as Google names an event by its id; the instances of a
series keep UID_RECURRENCE-ID). A ledger kept by the older code holds the old ids, and the
ledger alone cannot tell an old single event from an unmoved instance of a series: both look
alike (the UID as series id, the start as original start). The feed can: the source marks
each single event with FORMER_ID_PREFIX (UID + "_"). Without this, the first read of the feed
after the upgrade would take every single event as deleted (a cancellation notice, money
given back) and booked again (a confirmation).

`adopt_former_ids` runs in the page's transaction, before its events are looked up, for the
marked events the ledger does not know by their id: the appointment stored under the prefix,
a stamp after it (YYYYMMDDTHHMMSSZ) and the event's id as its series id is renamed in every
table that holds event ids: its snapshot (which keeps the old id as `former_id`, so that the
keys made from it, happenings, reminders, the UID of the .ics its emails carry, stay the same
and nothing planned before is planned again), its happenings, actions, pending status notes
and problems, and the `event` of an action's context (the practitioner's alerts about money
asked ahead). Action ids, happening keys and an action's happening key never change: payments'
idempotency keys derive from them. When several share the prefix (the older code saw each move
as a new event), the one seen last is the event as it is now and is renamed; the others, ended
as cancelled by the practitioner, keep their ids. A problem stored under an old id of the
event that is not renamed (it could not be read) is dropped: reading it stores the problem
again under its id now. Other sources mark nothing, so nothing of theirs is ever renamed.
"""

from __future__ import annotations

import json
import re

from slotguard.domain.interfaces import FORMER_ID_PREFIX
from slotguard.domain.untrusted import one_line
from slotguard.intake.normalize import ID_LIMIT
from slotguard.store.backend import Connection

STAMP = re.compile(r"\d{8}(T\d{6}Z)?")


def _after(prefix: str) -> str:
    """The least text greater than every text starting with `prefix` (for a range scan on the
    key, compared byte by byte on both engines)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _move(db: Connection, table: str, column: str, calendar_id: str, old: str, new: str) -> None:
    """Rename a row keyed by (calendar_id, `column`); where the new key is taken, the old row goes."""
    taken = db.execute(f"SELECT 1 FROM {table} WHERE calendar_id = ? AND {column} = ?", (calendar_id, new)).fetchone()
    if taken:
        db.execute(f"DELETE FROM {table} WHERE calendar_id = ? AND {column} = ?", (calendar_id, old))
    else:
        db.execute(f"UPDATE {table} SET {column} = ? WHERE calendar_id = ? AND {column} = ?", (new, calendar_id, old))


def rename(db: Connection, calendar_id: str, old: str, new: str, snapshot: dict) -> None:
    """Store the appointment `old` (its decoded `snapshot`) as `new`, everywhere; the caller
    holds the transaction and has checked that `new` is not stored."""
    snapshot["event_id"], snapshot["former_id"] = new, snapshot.get("former_id") or old
    db.execute(
        "UPDATE appointments SET event_id = ?, snapshot = ? WHERE calendar_id = ? AND event_id = ?",
        (new, json.dumps(snapshot, separators=(",", ":")), calendar_id, old),
    )
    for table in ("happenings", "actions"):
        db.execute(f"UPDATE {table} SET event_id = ? WHERE calendar_id = ? AND event_id = ?", (new, calendar_id, old))
    _move(db, "pending_writes", "event_id", calendar_id, old, new)
    _move(db, "problems", "item", calendar_id, old, new)
    pattern = '%"event":' + json.dumps(old) + "%"
    for row in db.execute("SELECT id, context FROM actions WHERE context LIKE ?", (pattern,)).fetchall():
        context = json.loads(row["context"])
        if context.get("calendar") == calendar_id and context.get("event") == old:
            context["event"] = new
            db.execute("UPDATE actions SET context = ? WHERE id = ?", (json.dumps(context, default=str, separators=(",", ":")), row["id"]))


def adopt_former_ids(db: Connection, calendar_id: str, events: list[dict]) -> list[tuple[str, str]]:
    """Rename the stored appointments the page's marked events were stored under by an older
    version (see the module docstring); return (old id, new id) of each renamed."""
    marked = {str(event.get("id") or ""): str(event[FORMER_ID_PREFIX]) for event in events
              if event.get(FORMER_ID_PREFIX) and event.get("id")}
    if not marked:
        return []
    known = set()
    ids = list(marked)
    for index in range(0, len(ids), 500):
        chunk = ids[index:index + 500]
        rows = db.execute(f"SELECT event_id FROM appointments WHERE calendar_id = ? AND event_id IN ({','.join('?' * len(chunk))})",
                          [calendar_id, *chunk])
        known |= {row["event_id"] for row in rows}
    renamed = []
    for new, prefix in marked.items():
        series = one_line(new, ID_LIMIT)  # the UID as normalize kept it as the series id
        if new in known or not prefix:
            continue
        bounds = (calendar_id, prefix, _after(prefix))
        found = []
        for row in db.execute("SELECT event_id, first_seen, start_utc, snapshot FROM appointments "
                              "WHERE calendar_id = ? AND event_id > ? AND event_id < ?", bounds).fetchall():
            if STAMP.fullmatch(row["event_id"][len(prefix):]):
                snapshot = json.loads(row["snapshot"])
                if snapshot.get("series_id") == series:
                    found.append(((row["first_seen"], row["start_utc"], row["event_id"]), row["event_id"], snapshot))
        if found:
            _, old, snapshot = max(found, key=lambda item: item[0])
            rename(db, calendar_id, old, new, snapshot)
            renamed.append((old, new))
        for row in db.execute("SELECT item FROM problems WHERE calendar_id = ? AND item > ? AND item < ?", bounds).fetchall():
            if STAMP.fullmatch(row["item"][len(prefix):]):
                db.execute("DELETE FROM problems WHERE calendar_id = ? AND item = ?", (calendar_id, row["item"]))
    return renamed
