"""A local HTTP server speaking the Gmail v1 wire format: users.messages.send, and the
mailbox Slotguard's inbox reads (users.getProfile, history.list, messages.list/get/modify,
labels.list/create).

Google answers Calendar and Gmail on different hosts but with one OAuth token; this fake
extends the Calendar fake (tests/support/fake_google_calendar.py), so one server on one
loopback port has the token endpoint, Bearer-token and scope checks, fault injection and
request log of that fake, plus:

- POST /gmail/v1/users/{userId}/messages/send with a JSON body `{"raw": ...}`, as Google
  documents it: `raw` must be base64url (padding optional; "+" or "/" are refused), the
  message must have at least one address in To, Cc or Bcc ("Recipient address required")
  and readable address headers ("Invalid To header"); `userId` is "me" or the account's
  address (anything else: 403 "Delegation denied"). The scopes allowed are those of the
  client library's own discovery document. A `From` that is neither the account nor one
  of its `send_as` addresses is replaced by the account's, a missing Message-ID is
  added, and Bcc is taken off the delivered copy, as Gmail does. The answer is a Message
  resource `{"id", "threadId", "labelIds": ["SENT"]}`.

The mailbox (tests/support/fake_gmail_box.py): `deliver(raw, received_at=...)` puts a
message in it as Gmail's MX would (labels INBOX and UNREAD by default, `internalDate` the
receipt time given, whatever the Date header says) and adds a `messagesAdded` history
record; `relabel(id, add=..., remove=...)` changes its labels as the practitioner does
("Not spam": add INBOX, remove SPAM), adding labelsAdded/labelsRemoved records; `expire_history()` makes every history id issued so far answer 404, as Google does
for one too old. Paging of history and messages.list is cut at `box.page_size`.

Every accepted message is kept in `sent` (the bytes as sent, the delivered message, its
recipients). Start it with `FakeGmail().start()` and stop it with `.stop()`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid
from typing import Any

import googleapiclient

from tests.support.fake_gmail_box import MAILBOX_METHODS, Mailbox
from tests.support.fake_google_calendar import ApiError, FakeGoogleCalendar, RecordedRequest

_SEND_RE = re.compile(r"^/gmail/v1/users/([^/]+)/messages/send$")
_BASE64URL = re.compile(rb"^[A-Za-z0-9_-]*={0,2}$")


def _gmail_scopes() -> dict[str, list[str]]:
    """The scopes each Gmail method the fake serves accepts, from the client library's own
    discovery document, keyed "gmail.users.messages.send", "gmail.users.getProfile", ..."""
    path = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "gmail.v1.json")
    with open(path, encoding="utf-8") as handle:
        users = json.load(handle)["resources"]["users"]
    scopes = {"gmail.users.getProfile": users["methods"]["getProfile"]["scopes"],
              "gmail.users.messages.send": users["resources"]["messages"]["methods"]["send"]["scopes"]}
    for resource, method in MAILBOX_METHODS:
        scopes[f"gmail.users.{resource}.{method}"] = users["resources"][resource]["methods"][method]["scopes"]
    return scopes


@dataclass
class SentMessage:
    id: str
    thread_id: str
    raw: bytes  # the message exactly as the client sent it, decoded from base64url
    message: EmailMessage  # as delivered: From possibly replaced, Bcc removed
    recipients: list[str]


class FakeGmail(FakeGoogleCalendar):
    """The Calendar fake plus Gmail's users.messages.send, with auth on by default."""

    def __init__(self, *, account: str = "lena@example.com", send_as: tuple[str, ...] = (), require_auth: bool = True, **kwargs: Any):
        super().__init__(require_auth=require_auth, **kwargs)
        self.account = account.lower()
        self.send_as = {self.account, *(address.lower() for address in send_as)}
        self.sent: list[SentMessage] = []
        self._scopes.update(_gmail_scopes())
        self.box = Mailbox(self.account)

    @property
    def gmail_api_endpoint(self) -> str:
        """The root to give as mail.gmail_api_endpoint (method paths add "gmail/v1/...")."""
        return f"{self.base_url}/"

    def deliver(self, raw: bytes, **kwargs: Any) -> str:
        """Deliver `raw` into the mailbox (Mailbox.deliver); returns the message id."""
        with self._lock:
            return self.box.deliver(raw, **kwargs)

    def relabel(self, message_id: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> None:
        """Change a message's labels (Mailbox.relabel): "Not spam" is add INBOX, remove SPAM."""
        with self._lock:
            self.box.relabel(message_id, add, remove)

    def expire_history(self) -> None:
        """Every history id issued so far now answers 404 (too old)."""
        with self._lock:
            self.box.expire_history()

    def gmail_requests(self) -> list[RecordedRequest]:
        """Recorded Gmail API requests (token endpoint left out)."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith("/gmail/")]

    def _api(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> bytes:
        if not path.startswith("/gmail/"):
            return super()._api(method, path, query, headers, body)
        match = _SEND_RE.match(path)
        if not match or method != "POST":
            route = self.box.route(method, path)
            if route is None:
                raise ApiError(404, "notFound", "Not Found")
            name, user, item = route
            self._check_auth(headers, f"gmail.users.{name}")
            self._check_user(user)
            return json.dumps(self.box.call(name, item, query, body)).encode()
        self._check_auth(headers, "gmail.users.messages.send")
        self._check_user(match.group(1))
        return json.dumps(self._send(body)).encode()

    def _check_user(self, user: str) -> None:
        if user != "me" and user.lower() != self.account:
            raise ApiError(403, "forbidden", f"Delegation denied for {self.account}")

    def _send(self, body: bytes) -> dict:
        try:
            raw_text = json.loads(body or b"{}").get("raw")
        except (ValueError, AttributeError):
            raise ApiError(400, "parseError", "Invalid JSON payload received.") from None
        if not isinstance(raw_text, str) or not raw_text:
            raise ApiError(400, "invalidArgument", "'raw' RFC822 payload message string or uploading message via /upload/* URL required")
        encoded = raw_text.encode("ascii", "replace")
        if not _BASE64URL.match(encoded):
            raise ApiError(400, "invalid", "Invalid value at 'message.raw' (TYPE_BYTES), Base64 decoding failed")
        raw = base64.urlsafe_b64decode(encoded + b"=" * (-len(encoded) % 4))
        message = BytesParser(policy=policy.default).parsebytes(raw)
        recipients = []
        for name in ("To", "Cc", "Bcc"):
            if message[name] is None:
                continue
            try:
                addresses = message[name].addresses
            except (AttributeError, IndexError, ValueError):
                raise ApiError(400, "invalidArgument", f"Invalid {name} header") from None
            if message[name].defects or any("@" not in address.addr_spec for address in addresses):
                raise ApiError(400, "invalidArgument", f"Invalid {name} header")
            recipients += [address.addr_spec for address in addresses]
        if not recipients:
            raise ApiError(400, "invalidArgument", "Recipient address required")
        sender = message["From"].addresses[0].addr_spec.lower() if message["From"] is not None and message["From"].addresses else ""
        if sender not in self.send_as:
            del message["From"]
            message["From"] = self.account
        if message["Message-ID"] is None:
            message["Message-ID"] = make_msgid(domain="mail.gmail.com")
        del message["Bcc"]
        message_id = secrets.token_hex(8)
        self.sent.append(SentMessage(message_id, message_id, raw, message, recipients))
        return {"id": message_id, "threadId": message_id, "labelIds": ["SENT"]}
