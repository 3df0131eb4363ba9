"""The client's account as policies see it, and the words proposals are written in.

What the ledger holds for one client (fees, deposits, credits, refunds), as plain data:
`ClientAccount` and its `AccountEntry`s; what a proposal is for (`purpose_of`, the purposes
below) and the planner's bookkeeping keys in `Proposal.context`; `is_fee`, `derive` and
`money_json` to read and rewrite proposals; `fee_incidents` to count a client's late
cancellations and no-shows. No I/O. Policy authors import these from `slotguard.kit`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slotguard.domain.model import Action, ActionKind, ActionState, ClientHistory, HappeningKind, Proposal
from slotguard.domain.money import Money
from slotguard.domain.payment_status import PaymentStatus

# What a money or record proposal is for (Proposal.context["purpose"]); "fee" when absent.
FEE = "fee"  # a late-cancellation or no-show fee, however it is paid
DEPOSIT = "deposit"  # taken at booking (charge, hold, or a credit carried over) to hold the slot
DEPOSIT_APPLIED = "deposit_applied"  # the deposit paid part of an attended session
DEPOSIT_RETURN = "deposit_return"  # the deposit given back (refund or release)
PREPAYMENT = "prepayment"  # the full price asked before the session (repeat offenders)
CREDIT = "credit"  # a credit kept for the client (reschedule credit, goodwill)
PACKAGE_CREDIT = "package_credit"  # a prepaid package session forfeited instead of a fee
REFUND = "refund"  # money given back for a fee or prepayment

# The planner's own bookkeeping keys in Proposal.context (docs/plugins.md, "Proposal context").
SUPERSEDES = "supersedes"  # ids of open actions this proposal replaces (waived or cancelled)
SETTLES = "settles"  # id of the deposit or credit this proposal uses up
TARGET = "target_action_id"  # the charge or hold a capture, release or refund acts on
INCIDENT = "incident"  # set by the planner on fees: this slot counts as an incident
REPLACES_NOTICES = "replaces_notices"  # an email that replaces the notices about the same fee
RENEWS = "renews"  # a card hold placed again before the one it names lapses (slotguard/planning/holds.py)
HOLD_RENEWED = "hold_renewed"  # purpose of the release of a hold a fresh one replaced

LIVE_STATES = frozenset(
    {ActionState.PLANNED, ActionState.PENDING_REVIEW, ActionState.EXECUTING, ActionState.DONE}
)


def money_json(amount: Money | None) -> dict[str, Any] | None:
    """{"minor": 90000, "currency": "NOK"}: how amounts travel in contexts and JSON."""
    return amount.as_json() if amount is not None else None


def purpose_of(kind: ActionKind, context: Mapping[str, Any]) -> str:
    """What a proposal or action is for; a charge or capture with no purpose is a fee."""
    purpose = context.get("purpose")
    if purpose:
        return str(purpose)
    return FEE if kind in (ActionKind.CHARGE, ActionKind.CAPTURE, ActionKind.WAIVE, ActionKind.WRITEOFF) else ""


def is_fee(proposal: Proposal) -> bool:
    """True for a late-cancellation or no-show fee still to be charged (what modifiers adjust)."""
    return (
        proposal.kind in (ActionKind.CHARGE, ActionKind.CAPTURE)
        and proposal.amount is not None
        and purpose_of(proposal.kind, proposal.context) == FEE
    )


def derive(proposal: Proposal, *, because: str | None = None, context: Mapping[str, Any] | None = None, **changes: Any) -> Proposal:
    """A copy of `proposal` with fields changed, `because` appended to the reason chain and
    `context` merged into its context (the original's keys are kept)."""
    if because:
        changes["reason"] = f"{changes.get('reason', proposal.reason)}; {because}"
    if context:
        changes["context"] = {**proposal.context, **context}
    return dataclasses.replace(proposal, **changes)


@dataclass(frozen=True, slots=True)
class AccountEntry:
    """One ledger action of the client, as policies see it."""

    id: str
    kind: ActionKind
    state: ActionState
    policy: str
    event_ref: str
    appointment_start: datetime | None
    amount: Money | None
    created_at: datetime
    due_at: datetime
    context: Mapping[str, Any]

    @property
    def purpose(self) -> str:
        return purpose_of(self.kind, self.context)

    @property
    def live(self) -> bool:
        """Done, or still to be done: not failed, waived or cancelled."""
        return self.state in LIVE_STATES

    @property
    def is_open(self) -> bool:
        return self.state in (ActionState.PLANNED, ActionState.PENDING_REVIEW)

    @classmethod
    def of(cls, action: Action) -> AccountEntry:
        return cls(
            id=action.id,
            kind=action.kind,
            state=action.state,
            policy=action.policy,
            event_ref=action.event_ref,
            appointment_start=action.appointment_start,
            amount=action.amount,
            created_at=action.created_at,
            due_at=action.due_at,
            context=dict(action.context),
        )


@dataclass(frozen=True)
class ClientAccount:
    """What the ledger holds for one client: every action but emails, oldest first.

    Entries point at each other through their context: a deposit return or a kept deposit
    names the deposit it uses up (`settles`), a refund the charge it gives back (`target_action_id`).
    """

    email: str
    entries: tuple[AccountEntry, ...] = ()

    @classmethod
    def from_actions(cls, email: str, actions: Iterable[Action]) -> ClientAccount:
        entries = tuple(AccountEntry.of(action) for action in actions if action.kind is not ActionKind.EMAIL)
        return cls(email=email, entries=entries)

    def entry(self, entry_id: str) -> AccountEntry | None:
        return next((entry for entry in self.entries if entry.id == entry_id), None)

    def for_event(self, event_ref: str) -> list[AccountEntry]:
        return [entry for entry in self.entries if entry.event_ref == event_ref]

    def used_up(self) -> set[str]:
        """Ids of deposits and credits that a live entry settles (uses up or gives back)."""
        used = set()
        for entry in self.entries:
            if entry.live and entry.context.get(SETTLES):
                used.add(str(entry.context[SETTLES]))
        return used

    def open_deposits(self, event_ref: str) -> list[AccountEntry]:
        """Deposits for this event (any start: a moved appointment keeps its deposit) that are
        taken or still to be taken, and not yet applied, kept or returned. A card hold placed
        again (`renews`) counts once it is in place; the hold it replaces is then released
        (a release that `settles` it), so a deposit is never counted twice."""
        used = self.used_up()
        return [
            entry
            for entry in self.for_event(event_ref)
            if entry.purpose == DEPOSIT and entry.live and entry.id not in used
            and not (entry.context.get(RENEWS) and not (entry.state is ActionState.DONE and entry.context.get("payment_status") == PaymentStatus.PAID))
        ]

    def money_taken(self, event_ref: str) -> list[AccountEntry]:
        """Charges and captures for this event carried out (done), with what is left of each
        after the refunds already made or planned."""
        return [entry for entry in self.for_event(event_ref) if entry.kind in (ActionKind.CHARGE, ActionKind.CAPTURE) and entry.state is ActionState.DONE]

    def refunded(self, target_id: str) -> int:
        """Minor units already refunded (or planned to be) for the charge `target_id`."""
        return sum(
            entry.amount.minor
            for entry in self.entries
            if entry.kind is ActionKind.REFUND and entry.live and entry.amount is not None and entry.context.get(TARGET) == target_id
        )


def fee_incidents(
    history: ClientHistory | None,
    account: ClientAccount | None,
    since: datetime | None = None,
    exclude_ref: str | None = None,
) -> list[tuple[datetime, str]]:
    """The client's incidents, oldest first, as (start, event ref): appointments for which a
    fee policy proposed a fee (charged, waived by a modifier, paid from a deposit or a package
    credit, or written off). A fee the practitioner waived (waive mark, removed mark,
    `main.py waive`) is not an incident: the practitioner said it should not count."""
    if account is None:
        return []
    forgiven_slots = set()
    if history is not None:
        forgiven_slots = {(item.event_ref, item.start) for item in history.outcomes if item.kind is HappeningKind.WAIVED}
    slots: dict[tuple[str, datetime], bool] = {}
    for entry in account.entries:
        if not entry.context.get(INCIDENT) or entry.appointment_start is None:
            continue
        slot = (entry.event_ref, entry.appointment_start)
        waived_by_practitioner = entry.state is ActionState.WAIVED
        slots[slot] = slots.get(slot, True) and not waived_by_practitioner
    found = [
        (start, ref)
        for (ref, start), counts in slots.items()
        if counts
        and (ref, start) not in forgiven_slots
        and (since is None or start >= since)
        and ref != exclude_ref
    ]
    return sorted(found)
