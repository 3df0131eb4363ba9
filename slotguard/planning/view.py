"""What planning reads, and the plan it is building: `AccountView` and `Draft`.

An `AccountView` holds what the ledger knows about one client and one event: the client's
history (outcomes per slot), the client's actions, the event's actions, and whether a
recurring series was confirmed. Each part is read at most once, and only when planning asks
for it (a first sync plans thousands of bookings that read nothing); tests build one by hand
from plain values, without a ledger.

A `Draft` is the plan being made over a view: what it has decided so far (waived, cancelled,
waiting) shows in what it reads next, so planning sees its own earlier decisions without
reading the ledger again. `Draft.plan()` returns the frozen `Plan` for the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TypeVar

from slotguard.domain.model import (
    OPEN_STATES,
    WAITING_WAIVER,
    Action,
    ActionKind,
    ActionState,
    ActionSubject,
    ClientHistory,
    Proposal,
)
from slotguard.domain.plan import Plan
from slotguard.policies.account import DEPOSIT, PREPAYMENT, ClientAccount, purpose_of

T = TypeVar("T")


def _once(value: T | Callable[[], T]) -> Callable[[], T]:
    """A reader that gives `value` (or what calling it returns, computed the first time)."""
    if not callable(value):
        return lambda: value
    cache: list[T] = []

    def read() -> T:
        if not cache:
            cache.append(value())
        return cache[0]

    return read


class AccountView:
    """One client's history and actions and one event's actions, as planning sees them.

    Each argument is a value or a function returning it, called at most once, when first
    needed. `event_actions` defaults to the client's actions on `event_ref`;
    `series_confirmed(series_id)` to looking for a booking confirmation of that series among
    the client's actions."""

    def __init__(
        self,
        email: str,
        event_ref: str = "",
        *,
        history: ClientHistory | Callable[[], ClientHistory] | None = None,
        client_actions: Iterable[Action] | Callable[[], Iterable[Action]] = (),
        event_actions: Iterable[Action] | Callable[[], Iterable[Action]] | None = None,
        series_confirmed: Callable[[str], bool] | None = None,
    ):
        self.email = email
        self.event_ref = event_ref
        self._history = _once(history if history is not None else ClientHistory(email=email))
        self._client: Callable[[], tuple[Action, ...]] = _once(lambda: tuple(client_actions() if callable(client_actions) else client_actions))
        self._event: Callable[[], tuple[Action, ...]]
        if event_actions is None:
            self._event = _once(lambda: tuple(action for action in self._client() if action.event_ref == event_ref))
        else:
            self._event = _once(lambda: tuple(event_actions() if callable(event_actions) else event_actions))
        self._series_confirmed = series_confirmed

    @classmethod
    def read(cls, ledger, email: str, calendar_id: str, event_id: str) -> AccountView:
        """A view that reads `ledger` (a slotguard.store.ledger.Ledger) lazily; read it
        before anything of the plan is written (the store writes only after planning)."""
        return cls(
            email,
            f"{calendar_id}/{event_id}",
            history=lambda: ledger.history(email),
            client_actions=lambda: ledger.actions(client_email=email),
            event_actions=lambda: ledger.actions(calendar_id=calendar_id, event_id=event_id),
            series_confirmed=lambda series_id: ledger.series_confirmed(email, series_id),
        )

    def history(self) -> ClientHistory:
        return self._history()

    def client_actions(self) -> tuple[Action, ...]:
        return self._client()

    def event_actions(self) -> tuple[Action, ...]:
        return self._event()

    def series_confirmed(self, series_id: str) -> bool:
        if self._series_confirmed is not None:
            return self._series_confirmed(series_id)
        return any(
            action.kind is ActionKind.EMAIL and action.template == "booking_confirmation"
            and action.context.get("series_id") == series_id
            for action in self.client_actions()
        )


class Draft:
    """A plan being made over `view`: what it decided shows in what it reads."""

    def __init__(self, view: AccountView, subject: ActionSubject | None = None):
        self.view = view
        self.subject = subject
        self.new: list[Proposal] = []
        self._wait: dict[str, str] = {}
        self._waive: dict[str, str] = {}
        self._cancel: dict[str, str] = {}
        self._changed: dict[str, Action] = {}  # action id -> the action as this plan leaves it
        self._account: ClientAccount | None = None

    # -- reading, with this plan's decisions applied ------------------------------------
    def _current(self, actions: Iterable[Action]) -> list[Action]:
        return [self._changed.get(action.id, action) for action in actions]

    def event_actions(self) -> list[Action]:
        return self._current(self.view.event_actions())

    def client_actions(self) -> list[Action]:
        return self._current(self.view.client_actions())

    def action(self, action_id: str) -> Action | None:
        """The client's or the event's action with this id, as this plan leaves it."""
        if action_id in self._changed:
            return self._changed[action_id]
        for action in (*self.view.event_actions(), *self.view.client_actions()):
            if action.id == action_id:
                return action
        return None

    def account(self) -> ClientAccount:
        """The client's account (`ClientAccount`) with this plan's waivers and cancellations."""
        if self._account is None:
            self._account = ClientAccount.from_actions(self.view.email, self.client_actions())
        return self._account

    # -- deciding -----------------------------------------------------------------------
    def _change(self, action: Action, **fields) -> None:
        self._changed[action.id] = replace(self._changed.get(action.id, action), **fields)
        self._account = None

    def waive(self, action: Action, why: str) -> None:
        """Waive an open (or refused) fee or fund; a request for a deposit or prepayment no
        longer needed is not sent at all (its emails are cancelled)."""
        current = self._changed.get(action.id, action)
        self._waive[action.id] = why
        self._change(action, state=ActionState.WAIVED, reason=f"{current.reason}; waived: {why}")
        if purpose_of(action.kind, action.context) in (DEPOSIT, PREPAYMENT):
            self.cancel_reports(action, "the money it asks for is no longer needed")

    def wait(self, action: Action, why: str) -> None:
        """Keep the waiver on a money action whose outcome is not known yet."""
        current = self._changed.get(action.id, action)
        self._wait[action.id] = why
        self._change(action, context={**current.context, WAITING_WAIVER: why})

    def cancel(self, action: Action, note: str) -> None:
        self._cancel[action.id] = note
        self._change(action, state=ActionState.CANCELLED)

    def cancel_reports(self, action: Action, note: str) -> None:
        """Cancel the open emails that report on `action`."""
        for email in self.event_actions():
            if email.kind is ActionKind.EMAIL and email.state in OPEN_STATES and email.reports_on == action.id:
                self.cancel(email, note)

    def plan(self, *, by_hand: bool = False) -> Plan:
        return Plan(
            subject=self.subject, new=tuple(self.new), wait=dict(self._wait), waive=dict(self._waive),
            cancel=dict(self._cancel), by_hand=by_hand,
        )
