"""Plain data that flows through the loop: appointments, happenings, client history,
proposals made by policies, and actions kept in the ledger.

Nothing here does I/O. Every datetime is timezone-aware.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from slotguard.domain.money import Money
from slotguard.domain.payment_status import OWED as OWED  # re-exported: where the ledger's readers find it
from slotguard.domain.payment_status import PaymentStatus


class Mark(StrEnum):
    """What the practitioner said about an appointment by colour or tag."""

    NO_SHOW = "no_show"
    LATE_CANCEL = "late_cancel"
    WAIVE = "waive"
    ATTENDED = "attended"
    WANTS_EARLIER = "wants_earlier"
    KNOWS_POLICY = "knows_policy"  # the client knows the fee policy (no confirmation needed first)


class HappeningKind(StrEnum):
    BOOKED = "booked"
    RESCHEDULED = "rescheduled"
    CANCELLED_BY_CLIENT = "cancelled_by_client"
    CANCELLED_BY_PRACTITIONER = "cancelled_by_practitioner"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    WAIVED = "waived"


class ActionKind(StrEnum):
    EMAIL = "email"
    CHARGE = "charge"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"
    CREDIT = "credit"
    WAIVE = "waive"
    WRITEOFF = "writeoff"


MONEY_KINDS = frozenset(
    {ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE, ActionKind.RELEASE, ActionKind.REFUND}
)


class ActionState(StrEnum):
    PLANNED = "planned"
    PENDING_REVIEW = "pending_review"
    EXECUTING = "executing"
    DONE = "done"
    FAILED = "failed"
    WAIVED = "waived"
    CANCELLED = "cancelled"


OPEN_STATES = frozenset({ActionState.PLANNED, ActionState.PENDING_REVIEW})
# payment_status values (slotguard/domain/payment_status.py; OWED is there too), by the names
# their readers know.
NOTHING_TAKEN = PaymentStatus.NOTHING_TAKEN  # payment_status of a refund of a fee never paid: the request withdrawn
WAIVED_UNPAID = PaymentStatus.WAIVED  # payment_status of a fee waived before the client paid it
# payment_status of a refund that found nothing left to give back: the whole payment had
# been refunded outside Slotguard already (in the Stripe dashboard); no Stripe refund is ours.
REFUNDED_ELSEWHERE = PaymentStatus.REFUNDED_ELSEWHERE
# Context of a money action whose outcome is unknown (left `executing` by a crash, Stripe
# not reachable to ask) that was waived meanwhile: why. The waiver is applied once the
# outcome is known (slotguard/payments/recovery.py): nothing taken, the fee is waived; money
# taken, it is refunded (released); a payment link out, it is withdrawn.
WAITING_WAIVER = "waiver_waits"
# Context of a money action whose last attempt failed in a way that may have moved money (a
# lost answer) while the provider could not be asked afterwards either: until a lookup or a
# later attempt tells, it counts as an outcome unknown (a waiver waits, as for `executing`).
OUTCOME_UNKNOWN = "outcome_unknown"
# Context of a charge the client is asked to pay themselves (a prepayment): the provider never
# takes it from a saved card, it only makes a payment link (or, record-only, a receivable). No
# money moves without the client acting, so it needs no review window and is asked at once.
CLIENT_PAYS = "client_pays"


@dataclass(frozen=True, slots=True)
class Client:
    email: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Appointment:
    """One calendar event that is an appointment with a client, normalized.

    `status` is "confirmed" or "cancelled". `marks` holds Mark values the practitioner set.
    `cancelled_at` is an explicit cancellation time written on the event, if any.
    """

    calendar_id: str
    event_id: str
    client: Client
    start: datetime
    end: datetime
    timezone: str
    status: str
    price: Money
    service: str
    title: str
    updated: datetime
    marks: frozenset[str] = frozenset()
    client_declined: bool = False
    cancelled_at: datetime | None = None
    location: str = ""
    meeting_link: str = ""
    locale: str | None = None
    original_start: datetime | None = None
    series_id: str | None = None
    client_invited: bool = False  # the client is an attendee: Google shows them the title and description
    # The client organised the event and invited the practitioner (calendar.client_organised =
    # "remind"): nothing on it is the practitioner's, so it gets reminders and nothing else.
    client_organised: bool = False
    # Set by the tracker, never by normalize (slotguard/intake/tracker.py, `hand_over`): which booking of
    # the event this is ("" for the first; after a change of client, the new client and when the
    # change was seen), and the marks the event carried when this booking began, which were
    # about the previous client and count for this one only once taken off and put on again.
    booking: str = ""
    inherited_marks: frozenset[str] = frozenset()

    @property
    def ref(self) -> str:
        return f"{self.calendar_id}/{self.event_id}"

    @property
    def is_cancelled(self) -> bool:
        return self.status == "cancelled"

    def fingerprint(self) -> str:
        """A short digest of the fields the tracker reacts to; equal digests mean no change."""
        parts = (
            self.status,
            self.start.isoformat(),
            self.end.isoformat(),
            ",".join(sorted(self.marks)),
            str(self.client_declined),
            self.client.email,
            str(self.price),
            self.cancelled_at.isoformat() if self.cancelled_at else "",
        ) + (("client_organised",) if self.client_organised else ())  # kept out when False: stored digests stay valid
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Happening:
    """Something that happened to an appointment, derived from two successive snapshots.

    `key` is stable: the same happening seen twice has the same key, so the ledger stores it
    once. `at` is the best evidence of when it happened in the world; `seen_at` when we saw it.
    """

    key: str
    kind: HappeningKind
    calendar_id: str
    event_id: str
    client_email: str
    start: datetime
    at: datetime
    seen_at: datetime
    previous_start: datetime | None = None
    detail: str = ""

    @property
    def ref(self) -> str:
        return f"{self.calendar_id}/{self.event_id}"


@dataclass(frozen=True, slots=True)
class Incident:
    """One past outcome for a client: a no-show or a late cancellation, or an attendance."""

    kind: HappeningKind
    start: datetime
    at: datetime
    event_ref: str


@dataclass(frozen=True, slots=True)
class ClientHistory:
    """What the ledger knows about a client, as of the tick being planned.

    `outcomes` has one entry per appointment slot (the latest outcome wins: a no-show mark
    after an inferred attendance replaces it).
    """

    email: str
    outcomes: tuple[Incident, ...] = ()
    first_seen: datetime | None = None

    def count(self, kind: HappeningKind, since: datetime | None = None) -> int:
        return sum(
            1 for item in self.outcomes if item.kind == kind and (since is None or item.start >= since)
        )

    def incidents(self, since: datetime | None = None, exclude_ref: str | None = None) -> list[Incident]:
        """No-shows and client cancellations since `since`, excluding one event if asked."""
        return [
            item
            for item in self.outcomes
            if item.kind in (HappeningKind.NO_SHOW, HappeningKind.CANCELLED_BY_CLIENT)
            and (since is None or item.start >= since)
            and item.event_ref != exclude_ref
        ]

    @property
    def attended(self) -> int:
        return self.count(HappeningKind.ATTENDED)


@dataclass(frozen=True, slots=True)
class Proposal:
    """What a policy wants done. Pure data; the engine turns it into a ledger action.

    - `slot` tells apart several proposals of one kind by one policy for one happening.
    - `due` None means: now for emails, after the review window for money.
    - `reports_on` names the slot of another proposal of the same happening whose outcome
      this email reports (a fee notice reports on its fee), so the message can tell whether
      the fee was waived.
    """

    kind: ActionKind
    policy: str
    reason: str
    amount: Money | None = None
    template: str | None = None
    slot: str = ""
    due: datetime | None = None
    reports_on: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    def with_amount(self, amount: Money | None, reason: str) -> Proposal:
        """A copy with a new amount and a reason appended to the chain."""
        return Proposal(
            kind=self.kind,
            policy=self.policy,
            reason=f"{self.reason}; {reason}" if reason else self.reason,
            amount=amount,
            template=self.template,
            slot=self.slot,
            due=self.due,
            reports_on=self.reports_on,
            context=self.context,
        )


def action_id_for(happening_key: str, policy: str, kind: str, slot: str) -> str:
    """The stable id of the action a policy plans for a happening; same inputs, same id."""
    digest = hashlib.sha256(f"{happening_key}|{policy}|{kind}|{slot}".encode()).hexdigest()
    return f"act_{digest[:20]}"


@dataclass(slots=True)
class Action:
    """A row of the ledger's outbox: something to do (or done), with its whole story."""

    id: str
    kind: ActionKind
    state: ActionState
    policy: str
    reason: str
    calendar_id: str
    event_id: str
    client_email: str
    client_name: str
    happening_key: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    amount: Money | None = None
    template: str | None = None
    reports_on: str | None = None
    appointment_start: datetime | None = None
    attempts: int = 0
    last_error: str = ""
    external_id: str = ""
    executed_at: datetime | None = None
    context: dict[str, Any] = field(default_factory=dict)
    # The state the ledger held when this object was read from it (or last written to it):
    # Ledger.update_action writes only while the stored state is still that one, so a stale
    # copy never undoes what another process (`main.py waive`) or step did meanwhile.
    stored_state: ActionState | None = field(default=None, compare=False, repr=False)

    @property
    def idempotency_key(self) -> str:
        """Derived from the ledger id, so a retry after a crash is recognised as the same call."""
        return f"slotguard-{self.id}"

    @property
    def event_ref(self) -> str:
        return f"{self.calendar_id}/{self.event_id}"


@dataclass(frozen=True, slots=True)
class ActionSubject:
    """Which event and which client a new action is about (every new action names both)."""

    calendar_id: str
    event_id: str
    client_email: str
    client_name: str = ""
    appointment_start: datetime | None = None
    timezone: str = ""  # the appointment's time zone, the client's as far as Slotguard knows ("": the practice's)

    @classmethod
    def of_appointment(cls, appointment: Appointment) -> ActionSubject:
        return cls(appointment.calendar_id, appointment.event_id, appointment.client.email, appointment.client.name, appointment.start,
                   appointment.timezone)

    @classmethod
    def of_action(cls, action: Action) -> ActionSubject:
        """The same event, client and appointment as `action` (its give-backs, its renewal)."""
        return cls(action.calendar_id, action.event_id, action.client_email, action.client_name, action.appointment_start)


def new_action(
    subject: ActionSubject,
    kind: ActionKind,
    policy: str,
    reason: str,
    *,
    key: str,
    now: datetime,
    slot: str = "",
    action_id: str | None = None,
    state: ActionState = ActionState.PLANNED,
    due: datetime | None = None,
    amount: Money | None = None,
    template: str | None = None,
    reports_on: str | None = None,
    executed_at: datetime | None = None,
    context: Mapping[str, Any] | None = None,
) -> Action:
    """A new action, not stored yet: the one way every part of Slotguard builds one.

    Its id is `action_id_for(key, policy, kind, slot)` (stable: planning it again gives the
    same id, which the ledger stores once and Stripe takes as the idempotency key) unless
    `action_id` is given; `key` is also its happening key. Due `now` unless `due` is given;
    created and updated `now`. The context is copied."""
    return Action(
        id=action_id or action_id_for(key, policy, kind.value, slot),
        kind=kind,
        state=state,
        policy=policy,
        reason=reason,
        calendar_id=subject.calendar_id,
        event_id=subject.event_id,
        client_email=subject.client_email,
        client_name=subject.client_name,
        happening_key=key,
        due_at=due or now,
        created_at=now,
        updated_at=now,
        amount=amount,
        template=template,
        reports_on=reports_on,
        appointment_start=subject.appointment_start,
        executed_at=executed_at,
        context=dict(context or {}),
    )


@dataclass(frozen=True, slots=True)
class Undo:
    """How a waiver undoes an account entry, as the policy that created it says
    (`slotguard_undo`). `entry` is the entry undone (for a rescheduling credit: the credit,
    also when asked about the action ending it); `give_back` the id of the entry whose money
    goes back under the usual rules (refunded, released, or waived if not taken; "" for
    none); `cancel` maps open entries that end with it to why they are cancelled (their
    emails are cancelled too); `problem`, when set, says in the practitioner's words why
    nothing is undone (the money belongs to something else now)."""

    entry: str
    give_back: str = ""
    cancel: Mapping[str, str] = field(default_factory=dict)
    problem: str = ""
