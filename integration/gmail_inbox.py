"""The `gmail` inbox (InboxSource): the Gmail API's history of the connected account, with
the Google token that `python main.py auth google` stored (it asks for gmail.modify when
`inbox.source = "gmail"`; docs/inbox.md, "Gmail").

- The cursor is "HISTORYID:EPOCH": a Gmail history id and the time of the read. The first
  read takes the mailbox's current history id from users.getProfile, then lists the unread
  messages in the inbox addressed to `inbox.address` received in the last 30 days
  (messages.list, paged). When Google no longer honours the history id (history.list
  answers 404 for one too old), the listing takes every message in the inbox to the address,
  read or not, since an hour before the cursor's time (at most 30 days): a client's reply
  the practitioner opened meanwhile is not lost; the ledger knows the ones handled before
  by their Message-ID. A cursor without the time (written by an older version) lists the
  unread only. Later reads list
  the history after the cursor (history.list, historyTypes messageAdded and labelAdded,
  labelId INBOX, paged): mail delivered to the inbox, and mail given the INBOX label later
  ("Not spam", "Move to Inbox"). One read takes at most 200 messages and stops after the
  last history record taken whole: that record's id is the new cursor, so a backlog moves on
  in parts even when rate limits cut reads short. A read that takes everything moves the
  cursor to the history id of its first page.
- Only mail addressed to `inbox.address` is downloaded: the topmost Delivered-To or
  X-Original-To (Gmail's own, above anything a sender wrote) when there is one, else To or
  Cc, must name it (a stranger's mail to the main address cannot choose to be fetched): each new message's headers are read first (format "metadata", those four
  headers only), so when the inbox is the practitioner's own Gmail with a +slotguard
  sub-address, their other mail is never fetched whole. The rest is skipped, untouched.
  A message to the address whose sizeEstimate (in that same answer) is over
  `inbox.max_message_size` is not downloaded either: it is returned as too_large (its size,
  raw b"") and left unread in the inbox; the read goes on past it.
- `received_at` is the message's internalDate (when Gmail received it), never its Date
  header. Messages come oldest first, each once per read; a message deleted meanwhile is
  skipped.
- `file(mail, True)` gives the message the label `inbox.gmail.processed_label` (created when
  missing), marks it read and takes it out of the inbox; `file(mail, False)` does nothing, so
  it stays unread for the practitioner.
- `wait` returns False at once: Gmail tells of new mail only through Cloud Pub/Sub push,
  which is not built; the engine reads once per calendar.poll_interval.
- Errors as in integration/gmail_mailer.py: 429, 403 rate limits and 5xx are retried within
  a short budget, then raised retryable (after Retry-After at the earliest); a token missing,
  revoked, or without gmail.modify raises ReauthorizationNeeded naming the auth command.

Nothing here logs or raises a token, an address read from a message, or message content.
Not thread-safe (the engine reads in turn).
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses
from typing import Any

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from integration.gmail_mailer import RATE_LIMIT_REASONS, _reason_and_message, _seconds, gmail_endpoint, gmail_service
from integration.google_auth import SCOPE_GMAIL_MODIFY, StoredCredentials, reauthorize_message
from slotguard.domain.interfaces import AdapterError, InboxPage, ReauthorizationNeeded, ReceivedMail

# The scopes that may read, label and mark read (users.messages.modify): a token granted
# one of them is not sent back to the consent page.
MODIFY_SCOPES = frozenset({SCOPE_GMAIL_MODIFY, "https://mail.google.com/"})
ADDRESS_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To")
FIRST_READ_DAYS = 30
RESET_MARGIN = timedelta(hours=1)  # after an expired history: read again from this long before the last read
PAGE_SIZE = 100
READ_LIMIT = 200  # messages one read takes from the history, as the IMAP inbox: a backlog moves on in parts
WHERE = "Gmail inbox"
NO_SCOPE = "the Google authorization does not include reading and labelling the inbox (the gmail.modify permission)"

log = logging.getLogger("slotguard.gmail_inbox")


class _NotFound(Exception):
    """A 404 from Gmail: an expired history id, a message deleted meanwhile."""


class _Conflict(Exception):
    """A 409 from Gmail: a label of that name exists already."""


def _reauthorize(what: str) -> ReauthorizationNeeded:
    return ReauthorizationNeeded(reauthorize_message(f"{WHERE}: {what}", "Gmail"))


class GmailInbox:
    """Reads and files the mail sent to `inbox.address` through the Gmail API (InboxSource)."""

    name = "gmail"

    def __init__(self, settings: Any, *, credentials: Any = None, http: Any = None, timeout: float = 30.0,
                 retry_budget: float = 10.0, sleep: Callable[[float], None] = time.sleep, token_uri: str | None = None,
                 base_delay: float = 0.5, max_delay: float = 4.0, read_limit: int = READ_LIMIT):
        """`settings` is the whole Settings (token in storage.data_dir, inbox.address,
        inbox.gmail, calendar.token_uri). Tests may inject google-auth `credentials` or a
        ready `http`. `retry_budget` bounds the seconds one request spends retrying rate
        limits and server errors; `timeout` bounds one HTTP request; `read_limit` the messages
        one read takes from the history (the rest come at the next read). Raises nothing: a
        missing token shows up on the first read, as ReauthorizationNeeded."""
        self.settings, self.timeout, self.retry_budget, self.sleep = settings, timeout, retry_budget, sleep
        self.base_delay, self.max_delay, self.read_limit = base_delay, max_delay, read_limit
        self.token_uri = token_uri or getattr(settings.calendar, "token_uri", "") or None
        self.address = settings.inbox.address.strip().lower()
        self.label_name = settings.inbox.gmail.processed_label
        self.max_size = settings.inbox.max_message_size
        self.api_endpoint = gmail_endpoint(settings.inbox.gmail.api_endpoint)
        self._credentials, self._http = credentials, http
        self._keeper: StoredCredentials | None = None
        self._service: Any = None
        self._label_id: str | None = None

    def __repr__(self) -> str:
        return f"GmailInbox(api_endpoint={self.api_endpoint or 'https://gmail.googleapis.com/'!r})"

    # --- the client -------------------------------------------------------------------

    def _client(self) -> Any:
        """The googleapiclient Resource for Gmail v1; raises ReauthorizationNeeded without a
        token that may read and label."""
        if self._service is None:
            self._service, self._keeper = gmail_service(
                self.settings, credentials=self._credentials, http=self._http, timeout=self.timeout, token_uri=self.token_uri,
                api_endpoint=self.api_endpoint, scopes=MODIFY_SCOPES, missing=NO_SCOPE, reauthorize=_reauthorize,
            )
        return self._service

    def _forget(self) -> None:
        """Drop the client so the next call reads the token file again (after `auth google`)."""
        if self._credentials is None and self._http is None:
            self._service, self._keeper = None, None

    def _call(self, make: Callable[[Any], Any], what: str) -> dict:
        """Execute the request `make(users resource)`, retrying rate limits and server errors
        within the budget. Raises _NotFound for a 404, _Conflict for a 409, else AdapterError."""
        deadline = time.monotonic() + self.retry_budget
        attempt = 0
        while True:
            try:
                result = make(self._client().users()).execute(num_retries=0)
            except HttpError as error:
                retry_after, problem = self._classify(error, what)
            except (RefreshError, TransportError) as error:
                raise self._auth_failure(error) from None
            except (OSError, httplib2.HttpLib2Error) as error:  # timeouts, refused or reset connections
                raise AdapterError(f"{WHERE}: the connection failed ({type(error).__name__}) while {what}; will try again") from None
            else:
                if self._keeper is not None:
                    self._keeper.save_if_refreshed()
                return result if isinstance(result, dict) else {}
            attempt += 1
            delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
            delay = max(delay / 2 + random.random() * delay / 2, retry_after or 0.0)
            if time.monotonic() + delay > deadline:
                raise AdapterError(f"{WHERE}: {what} failed {attempt} time(s), last with {problem}; will try again later",
                                   retry_after=retry_after)
            log.warning("gmail_inbox_retry what=%r problem=%r attempt=%d delay=%.2f", what, problem, attempt, delay)
            self.sleep(delay)

    def _classify(self, error: HttpError, what: str) -> tuple[float | None, str]:
        """Raise for an error that retrying now will not fix; return (Retry-After seconds,
        description) for one worth retrying within the budget."""
        status, (reason, _text) = error.resp.status, _reason_and_message(error)
        if status == 401:
            self._forget()
            raise _reauthorize("Google rejected Slotguard's authorization")
        if status == 403 and reason == "insufficientPermissions":
            self._forget()
            raise _reauthorize(NO_SCOPE)
        if status == 404:
            raise _NotFound()
        if status == 409:
            raise _Conflict()
        if status == 429 or status >= 500 or (status == 403 and reason in RATE_LIMIT_REASONS):
            return _seconds(error.resp.get("retry-after")), f"HTTP {status} {reason}".strip()
        if status == 403 and reason in ("dailyLimitExceeded", "quotaExceeded"):
            raise AdapterError(f"{WHERE}: the Google project's daily request quota is used up; will try again later")
        if status == 403 and reason in ("accessNotConfigured", "SERVICE_DISABLED"):
            raise AdapterError(f"{WHERE}: the Gmail API is not enabled for the Google Cloud project of your OAuth client; "
                               "enable it in the Google Cloud console (APIs & Services), then run `python main.py auth google` again",
                               retryable=False)
        raise AdapterError(f"{WHERE}: Gmail refused {what} (HTTP {status} {reason or 'error'})", retryable=False)

    def _auth_failure(self, error: Exception) -> AdapterError:
        if isinstance(error, TransportError):
            return AdapterError(f"{WHERE}: could not reach Google's sign-in service; will try again")
        if getattr(error, "retryable", False):
            return AdapterError(f"{WHERE}: refreshing the Google token failed for now; will try again")
        self._forget()
        return _reauthorize("Google no longer accepts Slotguard's authorization")

    # --- reading ----------------------------------------------------------------------

    def read(self, cursor: str | None, now: datetime) -> InboxPage:
        """The messages addressed to the inbox that arrived after the cursor (None: the unread
        ones of the last 30 days), oldest first, and the next cursor "HISTORYID:EPOCH" (the
        time of this read; a cursor of the history id alone is still understood)."""
        found: tuple[list[str], int] | None = None
        start, read_at = _parse_cursor(cursor)
        if start is not None:
            try:
                found = self._history_since(start)
            except _NotFound:
                log.info("gmail_inbox_history_expired reading=%s", "since_last_read" if read_at is not None else "unread")
        if found is None:
            found = self._listed(now, read_at)
        ids, newest = found
        mails = []
        for message_id in ids:
            mail = self._fetch_if_addressed(message_id)
            if mail is not None:
                mails.append(mail)
        mails.sort(key=lambda mail: mail.received_at)  # stable: the history's order among equals
        log.info("gmail_inbox_read first=%s new=%d addressed=%d", cursor is None, len(ids), len(mails))
        return InboxPage(mails, f"{newest}:{int(now.timestamp())}")

    def _history_since(self, start: int) -> tuple[list[str], int]:
        """The ids of the messages that came into the inbox after `start`, at most
        `read_limit`, and the next cursor: the id of the last history record taken whole when
        the read was cut; else the first page's historyId (the history as that page saw it:
        what came later has higher ids) or the last record's, whichever is higher."""
        ids: list[str] = []
        taken, snapshot, token = start, None, None
        while True:
            answer = self._call(lambda users, token=token: users.history().list(
                userId="me", startHistoryId=str(start), historyTypes=["messageAdded", "labelAdded"], labelId="INBOX",
                maxResults=PAGE_SIZE, pageToken=token), "reading the mailbox's history")
            if snapshot is None:
                snapshot = _int(answer.get("historyId"))
            for record in answer.get("history") or []:
                new = [message_id for message_id in dict.fromkeys(_arrivals(record)) if message_id not in ids]
                if ids and len(ids) + len(new) > self.read_limit:
                    return ids, taken  # the rest at the next read
                ids += new
                taken = max(taken, _int(record.get("id")))
            token = answer.get("nextPageToken")
            if not token:
                return ids, max(taken, snapshot)

    def _listed(self, now: datetime, read_at: datetime | None) -> tuple[list[str], int]:
        """The first read (`read_at` None): the unread messages to the address in the inbox of
        the last 30 days. After the history expired: every message to the address in the
        inbox (read or not: the practitioner may have opened a client's reply) since a little
        before the last read, at most 30 days; the ledger knows the ones handled before."""
        profile = self._call(lambda users: users.getProfile(userId="me"), "reading the mailbox's state")
        newest = _int(profile.get("historyId"))  # taken first: mail arriving meanwhile is in the next read's history
        oldest = now - timedelta(days=FIRST_READ_DAYS)
        since = int((oldest if read_at is None else max(oldest, read_at - RESET_MARGIN)).timestamp())
        unread = "is:unread " if read_at is None else ""
        query = f"{unread}in:inbox after:{since} {{to:{self.address} deliveredto:{self.address}}}"
        ids: list[str] = []
        token = None
        while True:
            answer = self._call(lambda users, token=token: users.messages().list(
                userId="me", q=query, maxResults=PAGE_SIZE, pageToken=token), "listing unread mail")
            for item in answer.get("messages") or []:
                message_id = str(item.get("id") or "")
                if message_id and message_id not in ids:
                    ids.append(message_id)
            token = answer.get("nextPageToken")
            if not token:
                return ids, newest

    def _fetch_if_addressed(self, message_id: str) -> ReceivedMail | None:
        """The message whole when its headers address it to the inbox; None when they do not,
        or when it is gone (deleted between the listing and now). Raises a retryable
        AdapterError when Gmail's answer has no readable raw or internalDate."""
        try:
            head = self._call(lambda users: users.messages().get(
                userId="me", id=message_id, format="metadata", metadataHeaders=list(ADDRESS_HEADERS)), "reading a message's headers")
            if not self._addressed(head):
                return None
            size = _int(head.get("sizeEstimate"))
            if size > self.max_size:  # not downloaded: left unread in the inbox, made known by its size
                log.info("gmail_inbox_too_large message=%s size=%d", message_id, size)
                return ReceivedMail(message_id, b"", _received_at(head, message_id), too_large=size)
            whole = self._call(lambda users: users.messages().get(userId="me", id=message_id, format="raw"), "reading a message")
        except _NotFound:
            return None
        try:
            raw = base64.urlsafe_b64decode(str(whole.get("raw") or "") + "=" * (-len(str(whole.get("raw") or "")) % 4))
        except (ValueError, TypeError, binascii.Error):
            raise _unreadable(message_id) from None
        return ReceivedMail(message_id, raw, _received_at(whole, message_id))

    def _addressed(self, head: dict) -> bool:
        """Whether the headers (in the message's order) address it to the inbox: the topmost
        Delivered-To or X-Original-To (written by the receiving server, above anything the
        sender wrote) when there is one, else To or Cc."""
        headers = [(str(header.get("name") or ""), str(header.get("value") or ""))
                   for header in (head.get("payload") or {}).get("headers") or []]
        delivery = [value for name, value in headers if name.lower() in ("delivered-to", "x-original-to")]
        values = delivery[:1] or [value for name, value in headers if name.lower() in ("to", "cc")]
        return any(address.strip().lower() == self.address for _, address in getaddresses(values))

    # --- filing -----------------------------------------------------------------------

    def file(self, mail: ReceivedMail, handled: bool) -> None:
        """Handled: the processed label on, UNREAD and INBOX off. Not handled: nothing (the
        message stays unread in the inbox). Filing again, or a message deleted meanwhile,
        is harmless."""
        if not handled:
            return
        label = self._processed_label()
        body = {"addLabelIds": [label], "removeLabelIds": ["UNREAD", "INBOX"]}
        try:
            self._call(lambda users: users.messages().modify(userId="me", id=mail.ref, body=body), "filing a message")
        except _NotFound:
            log.info("gmail_inbox_file_gone message=%s", mail.ref)

    def _processed_label(self) -> str:
        """The id of the processed label, created when missing, remembered."""
        if self._label_id is None:
            self._label_id = self._find_label()
        if self._label_id is None:
            body = {"name": self.label_name, "labelListVisibility": "labelShow", "messageListVisibility": "show"}
            try:
                created = self._call(lambda users: users.labels().create(userId="me", body=body), "creating the processed label")
                self._label_id = str(created["id"])
            except _Conflict:
                self._label_id = self._find_label()  # made meanwhile, by another run or the practitioner
            except (_NotFound, KeyError):
                pass
            if self._label_id is None:
                raise AdapterError(f"{WHERE}: Gmail did not create the label {self.label_name!r}; will try again")
        return self._label_id

    def _find_label(self) -> str | None:
        try:
            labels = self._call(lambda users: users.labels().list(userId="me"), "listing labels").get("labels") or []
        except _NotFound:
            raise AdapterError(f"{WHERE}: Gmail did not list the labels") from None
        wanted = self.label_name.strip().lower()
        return next((str(label["id"]) for label in labels if str(label.get("name", "")).strip().lower() == wanted and label.get("id")), None)

    # --- the rest of InboxSource --------------------------------------------------------

    def wait(self, seconds: float) -> bool:
        """False at once: Gmail's push needs Cloud Pub/Sub, not built; the engine polls."""
        return False

    def close(self) -> None:
        if self._service is not None and self._http is None:
            self._service.close()
        self._service = None


def _arrivals(record: dict) -> list[str]:
    """The ids of the messages a history record brings into the inbox: delivered there
    (messagesAdded; the request's labelId INBOX chose them), or given the INBOX label later
    ("Not spam", "Move to Inbox": labelsAdded with INBOX among the labels added)."""
    found = [str((added.get("message") or {}).get("id") or "") for added in record.get("messagesAdded") or []]
    found += [str((added.get("message") or {}).get("id") or "") for added in record.get("labelsAdded") or []
              if "INBOX" in (added.get("labelIds") or [])]
    return [message_id for message_id in found if message_id]


def _received_at(answer: dict, message_id: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(answer["internalDate"]) / 1000, UTC)
    except (KeyError, ValueError, TypeError, OverflowError, OSError):
        raise _unreadable(message_id) from None


def _unreadable(message_id: str) -> AdapterError:
    """Not what the API promises: the read stops (the cursor stays) and the tick shows the
    problem, rather than the message being passed over unseen."""
    log.warning("gmail_inbox_unreadable message=%s", message_id)
    return AdapterError(f"{WHERE}: Gmail answered message {message_id} without readable content or receipt time; "
                        "will try again (if this stays, open that message in Gmail: deleting it lets the reading go on)")


def _parse_cursor(cursor: str | None) -> tuple[int | None, datetime | None]:
    """(history id, time of that read) of "HISTORYID:EPOCH" or "HISTORYID"; Nones for none
    or nonsense (read as the first time)."""
    history, _, epoch = (cursor or "").partition(":")
    try:
        start = int(history)
    except ValueError:
        return None, None
    try:
        return start, datetime.fromtimestamp(int(epoch), UTC) if epoch else None
    except (ValueError, OverflowError, OSError):
        return start, None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def open_inbox(settings: Any) -> GmailInbox:
    """The Gmail inbox for `settings` (inbox.source = "gmail")."""
    return GmailInbox(settings)
