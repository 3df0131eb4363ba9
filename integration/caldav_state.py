"""What the CalDAV adapter remembers of a calendar between ticks, in one 0600 file.

A CalDAV server speaks of calendar objects (one href holds one UID: a single event, or a
series with its exceptions); the engine speaks of events (one per instance, ids like
Google's). To tell the engine which instances went away when an object changes or is
deleted, and to find the object to write back to, the adapter keeps, per href, the object's
ETag and the ids (with start times) of the instances it gave the engine from it. It also
keeps what discovery found (the calendar's address, whether it answers sync-collection, the
account's own addresses), so a restart or a deployment's worker costs no discovery requests.

The file goes with one sync token: `token` is the token the engine was given with the
listing this state describes. When the engine comes with another token (the file was lost,
or is behind after a crash), the state cannot say what changed, and the source asks for a
full sync (SyncTokenExpired). The file is written after the engine has stored the token.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from slotguard.store.private_files import OutputRefused, private_folder, write_out

log = logging.getLogger("slotguard.caldav")
VERSION = 1


@dataclass
class Remembered:
    """Discovery (`calendar_url`, `display_name`, `sync`, `addresses`) and the last listing
    (`token`, and per href its `etag` and the instances read from it: id -> start, ISO)."""

    key: str = ""
    calendar_url: str = ""
    display_name: str = ""
    sync: bool = False
    addresses: list[str] = field(default_factory=list)
    token: str = ""
    objects: dict[str, dict] = field(default_factory=dict)

    def href_of(self, event_id: str) -> str | None:
        """The href of the object the engine's event `event_id` was read from, or None."""
        for href, known in self.objects.items():
            if event_id in known.get("ids", {}):
                return href
        return None


def state_path(data_dir: str, key: str) -> Path:
    return Path(data_dir) / f"caldav-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def load(path: Path, key: str) -> Remembered:
    """The state in `path` for the calendar `key`; an empty one when there is none or it is
    unreadable or another calendar's (a changed config): discovery and a full sync follow."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Remembered(key=key)
    except (OSError, ValueError) as error:
        log.warning("caldav_state_unreadable path=%s error=%r", path, str(error)[:120])
        return Remembered(key=key)
    if not isinstance(raw, dict) or raw.get("version") != VERSION or raw.get("key") != key:
        return Remembered(key=key)
    raw.pop("version", None)
    try:
        return Remembered(**raw)
    except TypeError:
        return Remembered(key=key)


def save(path: Path, state: Remembered) -> None:
    """Write `state` to `path` (0600, atomically). A failure is logged, not raised: the next
    tick then sees a state behind its token and does a full sync."""
    try:
        private_folder(path.parent)
        write_out(path, json.dumps({"version": VERSION, **asdict(state)}, separators=(",", ":")), force=True)
    except (OutputRefused, OSError) as error:
        log.warning("caldav_state_not_saved path=%s error=%r", path, str(error)[:120])
