"""In-memory calendar, mailer and inbox, used by `replay` and `simulate` (and tests): nothing leaves the process."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage

from slotguard.domain.durations import to_utc_text
from slotguard.domain.interfaces import InboxPage, ReceivedMail, SyncPage


class MemoryCalendar:
    """A calendar held in memory with Google-like incremental sync (the token is a version)."""

    def __init__(self, calendar_id: str = "primary"):
        self.calendar_id = calendar_id
        self.events: dict[str, dict] = {}
        self.changed_at: dict[str, int] = {}
        self.version = 0

    def put(self, event: dict, at: datetime) -> None:
        """Create or replace an event by id; its `updated` becomes `at`."""
        stored = copy.deepcopy(event)
        stored["updated"] = to_utc_text(at)
        stored.setdefault("status", "confirmed")
        self.version += 1
        self.events[stored["id"]] = stored
        self.changed_at[stored["id"]] = self.version

    def delete(self, event_id: str, at: datetime) -> None:
        """Mark an event cancelled, as Google does for a deleted event."""
        if event_id not in self.events:
            raise KeyError(f"no event {event_id!r} to delete")
        self.version += 1
        self.events[event_id] = {"id": event_id, "status": "cancelled", "updated": to_utc_text(at)}
        self.changed_at[event_id] = self.version

    def pages(self, sync_token: str | None, now: datetime) -> Iterator[SyncPage]:
        since = int(sync_token) if sync_token else 0
        changed = [copy.deepcopy(self.events[key]) for key, version in self.changed_at.items() if version > since]
        if since == 0:
            changed = [event for event in changed if event.get("status") != "cancelled"]
        yield SyncPage(events=changed, full=False, last=True, next_sync_token=str(self.version))


class MemoryMailer:
    name = "memory"

    def __init__(self) -> None:
        self.sent: dict[str, EmailMessage] = {}

    def send(self, message: EmailMessage, action_id: str) -> None:
        self.sent.setdefault(action_id, message)


class MemoryInbox:
    """An inbox held in memory (`InboxSource`): `deliver` puts a message in as the server would,
    with the time it received it; the cursor is how many messages were read."""

    name = "memory"

    def __init__(self) -> None:
        self.mails: list[ReceivedMail] = []
        self.filed: dict[str, bool] = {}  # ref -> handled (True: moved out of the way; False: left unread)

    def deliver(self, raw: bytes, received_at: datetime) -> ReceivedMail:
        mail = ReceivedMail(ref=str(len(self.mails) + 1), raw=raw, received_at=received_at)
        self.mails.append(mail)
        return mail

    def deliver_too_large(self, size: int, received_at: datetime) -> ReceivedMail:
        """A message over inbox.max_message_size, as a transport returns it: not downloaded."""
        mail = ReceivedMail(ref=str(len(self.mails) + 1), raw=b"", received_at=received_at, too_large=size)
        self.mails.append(mail)
        return mail

    def read(self, cursor: str | None, now: datetime) -> InboxPage:
        """The messages after the first `cursor` that had arrived by `now` (deliver them in
        the order they arrive)."""
        start = int(cursor) if cursor and cursor.isdigit() else 0
        arrived = [mail for mail in self.mails[start:] if mail.received_at <= now]
        return InboxPage(arrived, str(start + len(arrived)))

    def file(self, mail: ReceivedMail, handled: bool) -> None:
        self.filed[mail.ref] = handled

    def wait(self, seconds: float) -> bool:
        return False

    def close(self) -> None:
        return None
