"""The mailbox of the Gmail fake (tests/support/fake_gmail.py): what users.getProfile,
users.history.list, users.messages.list/get/modify and users.labels.list/create see and do,
on Gmail's wire format.

- History ids are increasing integers (sent as strings, as Google does); every change to the
  mailbox (a delivery, a label added or removed) is one history record. history.list
  returns the records after `startHistoryId`, filtered by `historyTypes` and `labelId`, with
  the mailbox's current `historyId`; a start id older than `expire_history()` answers 404.
- messages.list understands the parts of Gmail's search `q` Slotguard uses: `is:unread`,
  `in:inbox`, `after:EPOCH_SECONDS`, `newer_than:Nd`, `to:`, `deliveredto:`, and a `{...}`
  group (any of the terms inside); it lists newest first, as Gmail does.
- messages.get answers `format` raw (base64url of the bytes), metadata (only the headers
  named in `metadataHeaders`, when given), minimal and full (headers only).
- messages.modify changes labels (an unknown label id: 400); labels.create refuses a name
  already used (409).

Not thread-safe on its own: the fake calls it under its lock.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.utils import getaddresses
from typing import Any

from tests.support.fake_google_calendar import ApiError

MAILBOX_METHODS = (("history", "list"), ("messages", "list"), ("messages", "get"), ("messages", "modify"),
                   ("labels", "list"), ("labels", "create"))
SYSTEM_LABELS = ("INBOX", "UNREAD", "SENT", "DRAFT", "SPAM", "TRASH", "IMPORTANT", "STARRED",
                 "CATEGORY_PERSONAL", "CATEGORY_UPDATES")
_ROUTES = (
    ("GET", re.compile(r"^/gmail/v1/users/([^/]+)/profile$"), "getProfile"),
    ("GET", re.compile(r"^/gmail/v1/users/([^/]+)/history$"), "history.list"),
    ("GET", re.compile(r"^/gmail/v1/users/([^/]+)/messages$"), "messages.list"),
    ("GET", re.compile(r"^/gmail/v1/users/([^/]+)/messages/([^/]+)$"), "messages.get"),
    ("POST", re.compile(r"^/gmail/v1/users/([^/]+)/messages/([^/]+)/modify$"), "messages.modify"),
    ("GET", re.compile(r"^/gmail/v1/users/([^/]+)/labels$"), "labels.list"),
    ("POST", re.compile(r"^/gmail/v1/users/([^/]+)/labels$"), "labels.create"),
)
_RECORD_KEYS = {"messageAdded": "messagesAdded", "messageDeleted": "messagesDeleted", "labelAdded": "labelsAdded", "labelRemoved": "labelsRemoved"}
_TERM = re.compile(r"\{[^}]*\}|\S+")


@dataclass
class StoredMail:
    id: str
    thread_id: str
    raw: bytes
    internal_date: int  # ms since the epoch: when "Gmail" received it
    labels: list[str]
    history_id: int

    def header_pairs(self) -> list[tuple[str, str]]:
        message = message_from_bytes(self.raw, policy=policy.compat32)
        return [(name, str(value)) for name, value in message.items()]

    def addresses(self, *names: str) -> set[str]:
        wanted = {name.lower() for name in names}
        values = [value for name, value in self.header_pairs() if name.lower() in wanted]
        return {address.lower() for _, address in getaddresses(values) if address}


@dataclass
class Mailbox:
    account: str
    page_size: int = 100
    messages: dict[str, StoredMail] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    history_id: int = 41_000
    oldest_start: int = 0  # a startHistoryId below it is too old (404)
    labels: dict[str, dict] = field(default_factory=dict)  # user labels by id
    next_id: int = 0x18c0_0000_0000

    # --- test helpers ------------------------------------------------------------------

    def deliver(self, raw: bytes, *, received_at: datetime | None = None, label_ids: tuple[str, ...] = ("INBOX", "UNREAD"),
                thread_id: str | None = None) -> str:
        """Put `raw` in the mailbox as received at `received_at` (now when None), with these
        labels; adds a messagesAdded history record. Returns the message id."""
        self.next_id += 0x1_0000
        message_id = format(self.next_id, "x")
        moment = received_at.timestamp() if received_at is not None else time.time()
        self.history_id += 1 + len(self.history) % 3  # Google's ids increase, not always by one
        mail = StoredMail(message_id, thread_id or message_id, raw, int(moment * 1000), list(label_ids), self.history_id)
        self.messages[message_id] = mail
        self.history.append({"id": str(self.history_id), "messages": [self._short(mail)],
                             "messagesAdded": [{"message": self._short(mail)}], "_labels": set(mail.labels)})
        return message_id

    def relabel(self, message_id: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> None:
        """Change a message's labels as the practitioner does in Gmail ("Not spam", "Move to
        Inbox"): labelsAdded / labelsRemoved history records, as messages.modify makes."""
        self._modify(self._mail(message_id), {"addLabelIds": list(add), "removeLabelIds": list(remove)})

    def expire_history(self) -> None:
        self.oldest_start = self.history_id + 1

    def label_named(self, name: str) -> dict | None:
        return next((label for label in self.labels.values() if label["name"] == name), None)

    # --- routing -------------------------------------------------------------------------

    def route(self, method: str, path: str) -> tuple[str, str, str] | None:
        """(method name, userId, message id or "") for a mailbox request, else None."""
        for verb, pattern, name in _ROUTES:
            match = pattern.match(path)
            if match and verb == method:
                return name, match.group(1), match.group(2) if pattern.groups > 1 else ""
        return None

    def call(self, name: str, item: str, query: dict[str, list[str]], body: bytes) -> dict:
        params = {key: values[-1] for key, values in query.items()}
        if name == "getProfile":
            return {"emailAddress": self.account, "messagesTotal": len(self.messages), "threadsTotal": len(self.messages),
                    "historyId": str(self.history_id)}
        if name == "history.list":
            return self._history(params, query.get("historyTypes", []))
        if name == "messages.list":
            return self._list(params, query.get("labelIds", []))
        if name == "messages.get":
            return self._get(self._mail(item), params.get("format", "full"), query.get("metadataHeaders", []))
        if name == "messages.modify":
            return self._modify(self._mail(item), _json(body))
        if name == "labels.list":
            return {"labels": [{"id": label, "name": label, "type": "system"} for label in SYSTEM_LABELS] + list(self.labels.values())}
        return self._create_label(_json(body))

    # --- methods -------------------------------------------------------------------------

    def _history(self, params: dict[str, str], types: list[str]) -> dict:
        try:
            start = int(params["startHistoryId"])
        except (KeyError, ValueError):
            raise ApiError(400, "invalidArgument", "Invalid startHistoryId") from None
        if start < self.oldest_start or start > self.history_id:
            raise ApiError(404, "notFound", "Requested entity was not found.")
        label = params.get("labelId")
        keys = {_RECORD_KEYS.get(kind, kind) for kind in types}  # historyTypes name what the records hold, in the singular
        records = []
        for record in self.history:
            if int(record["id"]) <= start or (label and label not in record["_labels"]):
                continue
            kept = {key: value for key, value in record.items() if key in ("id", "messages") or (key != "_labels" and (not types or key in keys))}
            if len(kept) > 2 or not types:
                records.append(kept)
        offset = int(params.get("pageToken") or 0)
        size = min(int(params.get("maxResults") or 100), self.page_size)
        answer: dict[str, Any] = {"historyId": str(self.history_id)}
        if records[offset:offset + size]:
            answer["history"] = records[offset:offset + size]
        if offset + size < len(records):
            answer["nextPageToken"] = str(offset + size)
        return answer

    def _list(self, params: dict[str, str], label_ids: list[str]) -> dict:
        found = [mail for mail in sorted(self.messages.values(), key=lambda m: (m.internal_date, m.id), reverse=True)
                 if all(label in mail.labels for label in label_ids) and self._matches(mail, params.get("q", ""))
                 and (params.get("includeSpamTrash") == "true" or not {"SPAM", "TRASH"} & set(mail.labels))]
        offset = int(params.get("pageToken") or 0)
        size = min(int(params.get("maxResults") or 100), self.page_size)
        answer: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if found[offset:offset + size]:
            answer["messages"] = [{"id": mail.id, "threadId": mail.thread_id} for mail in found[offset:offset + size]]
        if offset + size < len(found):
            answer["nextPageToken"] = str(offset + size)
        return answer

    def _matches(self, mail: StoredMail, q: str) -> bool:
        return all(self._term(mail, term) for term in _TERM.findall(q))

    def _term(self, mail: StoredMail, term: str) -> bool:
        if term.startswith("{"):
            return any(self._term(mail, inner) for inner in term.strip("{}").split())
        key, _, value = term.partition(":")
        value = value.strip('"').lower()
        if key == "is" and value == "unread":
            return "UNREAD" in mail.labels
        if key == "in" and value == "inbox":
            return "INBOX" in mail.labels
        if key == "after":
            return mail.internal_date >= int(value) * 1000
        if key == "newer_than" and value.endswith("d"):
            return mail.internal_date >= (time.time() - int(value[:-1]) * 86400) * 1000
        if key == "to":
            return value in mail.addresses("To", "Cc", "Bcc", "Delivered-To")
        if key == "deliveredto":
            return value in mail.addresses("Delivered-To")
        raise ApiError(400, "invalidArgument", f"The fake does not understand the search term {term!r}")

    def _mail(self, message_id: str) -> StoredMail:
        mail = self.messages.get(message_id)
        if mail is None:
            raise ApiError(404, "notFound", "Requested entity was not found.")
        return mail

    def _get(self, mail: StoredMail, form: str, names: list[str]) -> dict:
        answer = {**self._short(mail), "historyId": str(mail.history_id), "internalDate": str(mail.internal_date),
                  "sizeEstimate": len(mail.raw), "snippet": ""}
        if form == "raw":
            answer["raw"] = base64.urlsafe_b64encode(mail.raw).decode("ascii")
        elif form in ("metadata", "full"):
            wanted = {name.lower() for name in names}
            headers = [{"name": name, "value": value} for name, value in mail.header_pairs()
                       if form == "full" or not wanted or name.lower() in wanted]
            answer["payload"] = {"partId": "", "mimeType": "text/plain", "filename": "", "headers": headers}
        elif form != "minimal":
            raise ApiError(400, "invalidArgument", f"Invalid value for format: {form}")
        return answer

    def _modify(self, mail: StoredMail, body: dict) -> dict:
        add, remove = list(body.get("addLabelIds") or []), list(body.get("removeLabelIds") or [])
        for label in add + remove:
            if label not in SYSTEM_LABELS and label not in self.labels:
                raise ApiError(400, "invalidArgument", f"Invalid label: {label}")
        added = [label for label in add if label not in mail.labels]
        removed = [label for label in remove if label in mail.labels and label not in add]
        mail.labels = [label for label in mail.labels if label not in removed] + added
        for key, changed in (("labelsAdded", added), ("labelsRemoved", removed)):
            if changed:
                self.history_id += 1
                mail.history_id = self.history_id
                self.history.append({"id": str(self.history_id), "messages": [self._short(mail)],
                                     key: [{"message": self._short(mail), "labelIds": changed}], "_labels": set(mail.labels) | set(changed)})
        return self._short(mail)

    def _create_label(self, body: dict) -> dict:
        name = str(body.get("name") or "").strip()
        if not name:
            raise ApiError(400, "invalidArgument", "Invalid label name")
        if name.upper() in SYSTEM_LABELS or self.label_named(name) is not None:
            raise ApiError(409, "alreadyExists", "Label name exists or conflicts")
        label = {"id": f"Label_{len(self.labels) + 1}", "name": name, "type": "user",
                 "labelListVisibility": body.get("labelListVisibility", "labelShow"),
                 "messageListVisibility": body.get("messageListVisibility", "show")}
        self.labels[label["id"]] = label
        return label

    @staticmethod
    def _short(mail: StoredMail) -> dict:
        return {"id": mail.id, "threadId": mail.thread_id, "labelIds": list(mail.labels)}


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise ApiError(400, "parseError", "Invalid JSON payload received.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "parseError", "Invalid JSON payload received.")
    return data
