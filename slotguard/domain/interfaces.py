"""The small interfaces between the engine and the outside world.

Adapters in `integration/` implement these. The engine only ever talks to these shapes, so a
new calendar, payment provider or mail transport plugs in without reshaping the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol, runtime_checkable

from slotguard.domain.model import Action, ActionKind, Appointment
from slotguard.domain.money import Money


class AdapterError(Exception):
    """A failure talking to the outside world.

    `retryable` says whether trying again later may succeed (network, 5xx, rate limit) or
    not (bad credentials, a declined card); `retry_after`, when the service said how long to
    wait (seconds), is the earliest a retry may come. The message is for the practitioner
    and must not contain secrets.
    """

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class SyncTokenExpired(AdapterError):
    """The stored incremental-sync token is no longer valid; a full sync is needed."""


class ReauthorizationNeeded(AdapterError):
    """Stored credentials were revoked or expired; the user must run the auth command again."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


# --- rate limits -------------------------------------------------------------------------


@runtime_checkable
class RateGate(Protocol):
    """A limit on how often requests to one service may start. Adapters take a gate (or a
    list of them) and call `acquire()` before each HTTP request, retries included.

    Implemented in process by integration/rate_limiter.py (RateLimiter) and, for the workers
    of a deployment, in PostgreSQL by slotguard/store/shared_limits.py (SharedGate).
    """

    def acquire(self) -> float:
        """Take a start time for one request and sleep until it; return the seconds waited."""
        ...


@dataclass(frozen=True)
class Gates:
    """The gates one practice's adapters take, given to slotguard/run/wiring.py by a
    deployment's worker (None there: the single-practice defaults).

    - `google`: taken before every Google Calendar request (the project's quota and the
      practice's account's); empty: Google's answers (429, rateLimitExceeded) pace us alone.
    - `stripe`: given the Stripe secret key and mode ("test" | "live"), the gate of that
      Stripe account; the key must not be kept or shown (use a digest of it). None: an
      in-process limiter at Stripe's rate for the mode.
    """

    google: tuple[RateGate, ...] = ()
    stripe: Callable[[str, str], RateGate] | None = None


# --- calendar -------------------------------------------------------------------------


# On an event of a page: the prefix of the ids an older Slotguard may have stored the event
# under (the .ics source named a single event UID_START, now its UID): before the page is read,
# the appointment stored so is renamed, so the event stays the same one (slotguard/store/former_ids.py).
FORMER_ID_PREFIX = "_former_id_prefix"


@dataclass(slots=True)
class SyncPage:
    """One page of events from a calendar, as Google Calendar v3 Event resources (dicts).

    - `full`: the pages of this fetch together list every event in the window, so a known
      event missing from them has been deleted.
    - `next_sync_token`: set on the last page only; the engine stores it after the page is
      committed to the ledger.
    - `last`: this is the last page of the fetch.
    """

    events: list[dict]
    full: bool
    last: bool
    next_sync_token: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None


class CalendarSource(Protocol):
    """Reads one calendar. `calendar_id` is the id stored in the ledger."""

    calendar_id: str

    def pages(self, sync_token: str | None, now: datetime) -> Iterator[SyncPage]:
        """Yield pages of events changed since `sync_token` (all events when None).

        Raises SyncTokenExpired when the token is rejected (the engine retries with None),
        ReauthorizationNeeded or AdapterError for other failures.
        """
        ...


class CalendarWriteBack(Protocol):
    """Writes Slotguard's status onto the event the practitioner sees."""

    def write_status(self, appointment: Appointment, state: dict[str, str], note: str) -> None:
        """Store machine `state` (short keys and values) and a one-line human `note`.

        Must change nothing else on the event and must not notify attendees.
        """
        ...


class NullWriteBack:
    """Write-back for read-only calendars (an .ics feed): does nothing."""

    def write_status(self, appointment: Appointment, state: dict[str, str], note: str) -> None:
        return None


# --- payments -------------------------------------------------------------------------


@dataclass(slots=True)
class PaymentResult:
    """What a provider did with a money action.

    status: "done" (money moved or was recorded), "needs_client_action" (the client has to
    pay or authenticate through `payment_link`), "not_attempted" (e.g. below the currency's
    minimum charge; `detail` says why).
    """

    status: str
    external_id: str = ""
    detail: str = ""
    payment_link: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class PaymentProvider(Protocol):
    name: str

    def execute(self, action: Action) -> PaymentResult:
        """Carry out a money action (charge, hold, capture, release, refund).

        A charge whose context has `client_pays` (model.CLIENT_PAYS) is asked of the client:
        never taken from a saved card, only a payment link ("needs_client_action") or a
        receivable. Must be safe to call again for the same action after a crash: use
        `action.idempotency_key` and look up objects tagged with `action.id` before creating
        new ones. Raises AdapterError (retryable or not) on failure.
        """
        ...

    def resolve(self, action: Action) -> PaymentResult | None:
        """What the provider already did for `action` (left `executing` by a crash), by
        lookup only: never creates, changes or retries anything.

        Returns the result `execute` would have returned (money taken, held or refunded; a
        declined payment with its open payment link), or None when nothing was found and
        carrying the action out again is safe. Raises AdapterError when the provider cannot
        be asked: the engine then concludes nothing and asks again next tick.
        """
        ...


# What a provider may do besides `execute`: each capability a runtime-checkable Protocol, so
# the core asks `isinstance(provider, StatusLookup)` instead of looking for a method by name.


@runtime_checkable
class ResolvesInterrupted(Protocol):
    """Can say what it already did for an action a crash left `executing` (see
    PaymentProvider.resolve). A provider without it promises that `execute` itself looks up
    what it did before doing anything, so carrying the action out again is safe."""

    def resolve(self, action: Action) -> PaymentResult | None: ...


@runtime_checkable
class StatusLookup(Protocol):
    """Can tell whether a client paid an unpaid fee or hold through its link since (polling).
    Returns the result `execute` would give now, or None when nothing changed; raises
    AdapterError when it cannot be asked."""

    def status_of(self, action: Action) -> PaymentResult | None: ...


@runtime_checkable
class CardSetupLinks(Protocol):
    """Can give a client a link to save a card (Stripe Checkout in setup mode) and tell
    whether one is on file. Both raise AdapterError when the provider cannot be reached.
    `card_terms`: what the card may be charged for and when, in the client's language, shown
    on the page before the card is saved (given back when the provider reports the card saved)."""

    def card_setup_link(self, client_email: str, client_name: str = "", card_terms: str = "") -> str: ...

    def has_card_on_file(self, client_email: str) -> bool: ...


@dataclass(frozen=True)
class CardPage:
    """A card-setup page a client completed: its id at the provider, when the card was saved
    (the provider's clock), and the text the page showed beside its button ("" for none)."""

    reference: str
    completed_at: datetime
    card_terms: str = ""


@runtime_checkable
class CardPageLookup(Protocol):
    """Can list the card-setup pages a client completed (for a record when no webhook told).
    Raises AdapterError when the provider cannot be reached."""

    def completed_card_pages(self, client_email: str) -> list[CardPage]: ...


@runtime_checkable
class PaymentLinks(Protocol):
    """Can make a link through which a client pays what an action asks for (collections).
    Raises AdapterError when the provider cannot be reached."""

    def payment_link(self, action: Action) -> str: ...


@runtime_checkable
class DryRun(Protocol):
    """Has a dry-run mode (`dry_run` true: nothing is sent to the provider)."""

    dry_run: bool


@runtime_checkable
class Named(Protocol):
    """Has a short name ("stripe", "record-only") for messages."""

    name: str


def provider_name(provider: object, default: str = "the provider") -> str:
    """The provider's `name`, or `default` for one that has none."""
    return provider.name if isinstance(provider, Named) else default


def in_dry_run(provider: object) -> bool:
    """True when the provider is in its dry-run mode."""
    return isinstance(provider, DryRun) and bool(provider.dry_run)


# --- what a provider tells of payments ------------------------------------------------


@dataclass(frozen=True)
class PaymentUpdate:
    """What the provider told of a payment (a Stripe webhook event), for the core to record.

    change: "paid" (a fee or deposit was paid or authorised), "payment_failed", "card_saved",
    "refunded", "disputed" or "ignored". `action_id` comes from our metadata tag; refunds
    and disputes are matched by `payment_intent` instead. `event_id` is the provider's, so an
    event delivered twice is recorded once.
    """

    event_id: str
    event_type: str
    change: str
    action_id: str = ""
    payment_intent: str = ""
    amount: Money | None = None
    client_email: str = ""
    detail: str = ""
    # "card_saved" through a Checkout page: what the page said the card may be charged for
    # (its custom text, as the provider gives it back), the session id, and when the client
    # completed it (the provider's clock).
    card_terms: str = ""
    reference: str = ""
    at: datetime | None = None


class ActionReader(Protocol):
    """Reads actions: what an adapter comparing the provider with Slotguard's records (`main.py
    reconcile`) is given, instead of the ledger."""

    def actions(self, *, kinds: Iterable[ActionKind] | None = None) -> list[Action]:
        """The actions of these kinds (all without kinds), in the order they were stored."""
        ...


# --- mail -----------------------------------------------------------------------------


class Mailer(Protocol):
    name: str

    def send(self, message: EmailMessage, action_id: str) -> None:
        """Deliver `message`. Its Message-ID is stable per action; delivering the same action
        twice must be avoided where the transport allows (the outbox directory checks the
        file). Raises AdapterError on failure."""
        ...


# --- inbox (docs/inbox.md) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One message as the inbox received it.

    - `ref`: the transport's own name for it, enough to file it later (IMAP: "UIDVALIDITY:UID";
      Gmail: the message id); never shown to anyone.
    - `raw`: the message's RFC 5322 bytes, untrusted.
    - `received_at`: when the receiving server got it (IMAP INTERNALDATE, Gmail internalDate),
      timezone-aware; never the sender's Date header, which the sender writes.
    - `too_large`: 0, or the message's size in bytes when it is over inbox.max_message_size:
      then it was not downloaded (`raw` is b""), and is to be filed not handled (left unread).
    """

    ref: str
    raw: bytes
    received_at: datetime
    too_large: int = 0


@dataclass(slots=True)
class InboxPage:
    """What a read of the inbox found: the messages after `cursor`, oldest first, and the
    cursor to read from next time (stored by the engine once they are handled)."""

    mails: list[ReceivedMail]
    cursor: str


class InboxSource(Protocol):
    """The mailbox Slotguard reads (integration/imap_inbox.py, integration/gmail_inbox.py;
    integration/memory.py for replay and tests)."""

    name: str

    def read(self, cursor: str | None, now: datetime) -> InboxPage:
        """The messages that arrived after `cursor` (IMAP: UIDVALIDITY and the last UID;
        Gmail: a history id). None: the first read, which returns the messages in the folder
        not yet handled (unread, at most a few weeks old) and a cursor for the next. A cursor
        the server no longer honours (a new UIDVALIDITY, an expired history id) is read like
        None. Raises AdapterError (ReauthorizationNeeded for refused credentials)."""
        ...

    def file(self, mail: ReceivedMail, handled: bool) -> None:
        """`handled` True: move the message out of the way (IMAP: into the processed folder;
        Gmail: the processed label, out of the inbox, read). False: leave it unread where it
        is, for the practitioner. Raises AdapterError; filing again later must be harmless."""
        ...

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for new mail (IMAP IDLE); True as soon as some arrived, False
        at the end of the time. A source that cannot wait returns False at once."""
        ...

    def close(self) -> None:
        """Log out and close connections."""
        ...
