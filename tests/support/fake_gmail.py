"""A local HTTP server speaking the Gmail v1 wire format for users.messages.send.

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

from tests.support.fake_google_calendar import ApiError, FakeGoogleCalendar, RecordedRequest

_SEND_RE = re.compile(r"^/gmail/v1/users/([^/]+)/messages/send$")
_BASE64URL = re.compile(rb"^[A-Za-z0-9_-]*={0,2}$")


def _send_scopes() -> list[str]:
    """The scopes users.messages.send accepts, from the client library's discovery document."""
    path = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "gmail.v1.json")
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    return document["resources"]["users"]["resources"]["messages"]["methods"]["send"]["scopes"]


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
        self._scopes["gmail.users.messages.send"] = _send_scopes()

    @property
    def gmail_api_endpoint(self) -> str:
        """The root to give as mail.gmail_api_endpoint (method paths add "gmail/v1/...")."""
        return f"{self.base_url}/"

    def gmail_requests(self) -> list[RecordedRequest]:
        """Recorded Gmail API requests (token endpoint left out)."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith("/gmail/")]

    def _api(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> bytes:
        if not path.startswith("/gmail/"):
            return super()._api(method, path, query, headers, body)
        match = _SEND_RE.match(path)
        if not match or method != "POST":
            raise ApiError(404, "notFound", "Not Found")
        self._check_auth(headers, "gmail.users.messages.send")
        user = match.group(1)
        if user != "me" and user.lower() != self.account:
            raise ApiError(403, "forbidden", f"Delegation denied for {self.account}")
        return json.dumps(self._send(body)).encode()

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
