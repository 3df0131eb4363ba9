"""The `gmail` mail transport: users.messages.send of the Gmail API, with the Google token
that `python main.py auth google` stored (it asks for the gmail.send scope when
`mail.transport = "gmail"`).

- The message goes whole, as built (headers, text and HTML parts, the .ics): the request
  body is `{"raw": base64url(message bytes)}` for `userId = "me"`, the connected account.
  Gmail keeps `From` only when it is that account or one of its verified "Send mail as"
  addresses; otherwise it puts the account's address there.
- Errors: 429, 403 rateLimitExceeded/userRateLimitExceeded and 5xx are retried a few times
  within a short time budget, then raised as AdapterError(retryable=True) so the engine
  retries later with its own backoff; a network error or timeout is raised retryable at
  once (Google may have sent the message, see below). 400 (a message Gmail will not send),
  403 for other reasons, 404 and 413 are not retryable. A token that is missing, revoked,
  or lacks the gmail.send scope (a 401 after one refresh, 403 insufficientPermissions)
  raises ReauthorizationNeeded, which tells the practitioner to run the auth command; the
  next send then reads the token file again, so a running daemon needs no restart.
- Exactly once: Gmail has no idempotency key, and finding out whether a message already
  went would need a scope that reads the mailbox, which Slotguard does not ask for. The
  engine writes the action `executing` (committed) before `send` and `done` after, so a
  crash between Gmail's answer and that commit, or a timeout after Gmail took the message,
  makes the retry send it again: at most one duplicate per such failure, carrying the same
  `Message-ID: <ACTION_ID@sender domain>` header as the first.

Nothing here logs a token or the message body. Not thread-safe (the engine sends in turn).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from integration.google_auth import SCOPE_GMAIL_SEND, StoredCredentials, reauthorize_message, token_path
from slotguard.domain.interfaces import AdapterError, ReauthorizationNeeded

# Every scope Google accepts for users.messages.send (its discovery document), less the
# add-on one: a token granted any of these may send, so it is not sent back to consent.
SEND_SCOPES = frozenset({
    SCOPE_GMAIL_SEND,
    "https://www.googleapis.com/auth/gmail.compose",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://mail.google.com/",
})
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
API_PATH = "gmail/v1/"  # the discovery document's method paths start with it; the endpoint is the root before it
WHERE = "Gmail"

log = logging.getLogger("slotguard.gmail")


def _reauthorize(what: str) -> ReauthorizationNeeded:
    return ReauthorizationNeeded(reauthorize_message(f"{WHERE}: {what}", WHERE))


def gmail_endpoint(endpoint: str) -> str:
    """An API root override as the client library takes it ("" for Google's). The Calendar
    override names the API path (".../calendar/v3/"); Gmail's method paths carry theirs, so an
    endpoint given the same way must not repeat it."""
    if not endpoint:
        return ""
    endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
    return endpoint.removesuffix(API_PATH)


def gmail_service(
    settings: Any, *, credentials: Any, http: Any, timeout: float, token_uri: str | None, api_endpoint: str,
    scopes: frozenset[str], missing: str, reauthorize: Callable[[str], ReauthorizationNeeded],
) -> tuple[Any, StoredCredentials | None]:
    """The googleapiclient Resource for Gmail v1 and the stored credentials it uses (None when
    `credentials` or `http` were given, in tests). Raises `reauthorize(...)` when Google is not
    connected yet, or when the token has none of `scopes` (`missing` says which permission)."""
    keeper = None
    if http is None:
        if credentials is None:
            path = token_path(settings)
            if not path.exists():
                raise reauthorize(f"Google is not connected yet (no {path})")
            keeper = StoredCredentials.load(settings, token_uri)
            credentials = keeper.credentials
        granted = set(credentials.granted_scopes or credentials.scopes or [])
        if granted and not granted & scopes:
            raise reauthorize(missing)
        # One refresh on a 401, then we give up and ask for the auth command.
        http = AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout), max_refresh_attempts=1)
    options = {"api_endpoint": api_endpoint} if api_endpoint else None
    return build("gmail", "v1", http=http, static_discovery=True, cache_discovery=False, client_options=options), keeper


class GmailMailer:
    """Sends messages through the Gmail API (Mailer)."""

    name = "gmail"

    def __init__(self, settings: Any, *, credentials: Any = None, http: Any = None, timeout: float = 30.0,
                 retry_budget: float = 10.0, sleep: Callable[[float], None] = time.sleep, token_uri: str | None = None,
                 base_delay: float = 0.5, max_delay: float = 4.0):
        """`settings` is the whole Settings (token in storage.data_dir, mail.gmail_api_endpoint,
        calendar.token_uri). Tests may inject google-auth `credentials` or a ready `http`.
        `retry_budget` bounds the seconds one send spends retrying rate limits and server
        errors; `timeout` bounds one HTTP request. Raises nothing: a missing token shows up
        on the first send, as ReauthorizationNeeded."""
        self.settings, self.timeout, self.retry_budget, self.sleep = settings, timeout, retry_budget, sleep
        self.base_delay, self.max_delay = base_delay, max_delay
        self.token_uri = token_uri or getattr(settings.calendar, "token_uri", "") or None
        self.api_endpoint = gmail_endpoint(settings.mail.gmail_api_endpoint)
        self._credentials, self._http = credentials, http
        self._keeper: StoredCredentials | None = None
        self._service: Any = None

    def __repr__(self) -> str:
        return f"GmailMailer(api_endpoint={self.api_endpoint or 'https://gmail.googleapis.com/'!r})"

    # --- the client -------------------------------------------------------------------

    def _client(self) -> Any:
        """The googleapiclient Resource for Gmail v1; raises ReauthorizationNeeded without a
        token that may send."""
        if self._service is None:
            self._service, self._keeper = gmail_service(
                self.settings, credentials=self._credentials, http=self._http, timeout=self.timeout, token_uri=self.token_uri,
                api_endpoint=self.api_endpoint, scopes=SEND_SCOPES,
                missing="the Google authorization does not include sending email (the gmail.send permission)", reauthorize=_reauthorize,
            )
        return self._service

    def _forget(self) -> None:
        """Drop the client so the next send reads the token file again (after `auth google`)."""
        if self._credentials is None and self._http is None:
            self._service, self._keeper = None, None

    # --- sending ----------------------------------------------------------------------

    def send(self, message: EmailMessage, action_id: str) -> None:
        """Send `message` to its To, Cc and Bcc addresses as the connected account.

        Returns when Gmail has accepted it. Raises ReauthorizationNeeded or AdapterError with
        `retryable` set (see the module doc); messages name Gmail and what to do, never a token.
        """
        raw = base64.urlsafe_b64encode(message.as_bytes(policy=SMTP)).decode("ascii")
        deadline = time.monotonic() + self.retry_budget
        attempt = 0
        while True:
            try:
                request = self._client().users().messages().send(userId="me", body={"raw": raw})
                result = request.execute(num_retries=0)
            except HttpError as error:
                retry_after, problem = self._classify(error)
            except (RefreshError, TransportError) as error:
                raise self._auth_failure(error) from None
            except (OSError, httplib2.HttpLib2Error) as error:  # timeouts, refused or reset connections
                raise AdapterError(f"{WHERE}: the connection failed ({type(error).__name__}) before Gmail confirmed the message; will try again") from None
            else:
                if self._keeper is not None:
                    self._keeper.save_if_refreshed()
                log.info("sent action=%s via=gmail gmail_id=%s recipients=%d", action_id, result.get("id", ""), _recipient_count(message))
                return
            attempt += 1
            delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
            delay = max(delay / 2 + random.random() * delay / 2, retry_after or 0.0)
            if time.monotonic() + delay > deadline:
                raise AdapterError(f"{WHERE}: sending failed {attempt} time(s), last with {problem}; will try again later")
            log.warning("gmail_retry action=%s problem=%r attempt=%d delay=%.2f", action_id, problem, attempt, delay)
            self.sleep(delay)

    def _classify(self, error: HttpError) -> tuple[float | None, str]:
        """Raise for an error that retrying now will not fix; return (Retry-After seconds,
        description) for one worth retrying within the budget."""
        status, reason, text = error.resp.status, *_reason_and_message(error)
        if status == 401:
            self._forget()
            raise _reauthorize("Google rejected Slotguard's authorization")
        if status == 403 and reason == "insufficientPermissions":
            self._forget()
            raise _reauthorize("the Google authorization does not include sending email (the gmail.send permission)")
        if status == 429 or status >= 500 or (status == 403 and reason in RATE_LIMIT_REASONS):
            retry_after = _seconds(error.resp.get("retry-after"))
            return retry_after, f"HTTP {status} {reason}".strip()
        if status == 403 and reason in ("dailyLimitExceeded", "quotaExceeded"):
            raise AdapterError(f"{WHERE}: the Google project's daily request quota is used up; will try again later")
        if status == 403 and reason in ("accessNotConfigured", "SERVICE_DISABLED"):
            raise AdapterError(f"{WHERE}: the Gmail API is not enabled for the Google Cloud project of your OAuth client; "
                               "enable it in the Google Cloud console (APIs & Services)", retryable=False)
        if status == 403:
            raise AdapterError(f"{WHERE} refused to send the message ({reason or 'forbidden'}: {text}); "
                               "check that the connected account may send mail", retryable=False)
        if status == 400:
            raise AdapterError(f"{WHERE} rejected the message: {text or reason}", retryable=False)
        if status == 413:
            raise AdapterError(f"{WHERE} rejected the message as too large", retryable=False)
        raise AdapterError(f"{WHERE} rejected the message (HTTP {status} {reason})", retryable=False)

    def _auth_failure(self, error: Exception) -> AdapterError:
        """A refresh that failed: network trouble is retryable, a refusal (revoked, expired,
        deleted OAuth client) needs the auth command."""
        if isinstance(error, TransportError):
            return AdapterError(f"{WHERE}: could not reach Google's sign-in service; will try again")
        if getattr(error, "retryable", False):
            return AdapterError(f"{WHERE}: refreshing the Google token failed for now; will try again")
        self._forget()
        return _reauthorize("Google no longer accepts Slotguard's authorization")


def _reason_and_message(error: HttpError) -> tuple[str, str]:
    """Google's machine-readable reason ("invalidArgument") and its short message, from an
    error body; Gmail's messages ("Invalid To header") name the problem, never a secret."""
    try:
        body = json.loads(error.content.decode("utf-8"))["error"]
        reason = str((body.get("errors") or [{}])[0].get("reason") or body.get("status") or "")
        return reason, str(body.get("message") or "")[:200]
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return "", ""


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: ignored, the backoff applies


def _recipient_count(message: EmailMessage) -> int:
    return sum(len(message[name].addresses) for name in ("To", "Cc", "Bcc") if message[name] is not None)


def open_mailer(settings: Any) -> GmailMailer:
    """The Gmail mailer for `settings` (mail.transport = "gmail")."""
    return GmailMailer(settings)
