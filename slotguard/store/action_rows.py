"""The ledger's rows about actions: the outbox (each action once, by its stable id) and
`action_log`, every change of every action. Part of `Ledger`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.model import OWED, Action, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.store.backend import Connection, LedgerRow
from slotguard.store.rows import optional_utc_text, optional_utc_time


class ActionRows:
    """Ledger methods for the actions and action_log tables."""

    db: Connection

    def existing_action_ids(self, ids: list[str]) -> set[str]:
        """Which of these action ids the ledger holds already."""
        found: set[str] = set()
        for index in range(0, len(ids), 500):
            chunk = ids[index:index + 500]
            rows = self.db.execute(f"SELECT id FROM actions WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            found.update(row["id"] for row in rows)
        return found

    # -- actions --------------------------------------------------------------------------
    def add_action(self, action: Action, note: str = "") -> bool:
        """Store a planned action; False when its id exists already (planned before)."""
        amount = action.amount
        cursor = self.db.execute(
            "INSERT INTO actions (id, kind, state, policy, reason, calendar_id, event_id, client_email, client_name, "
            "happening_key, due_at, created_at, updated_at, amount_minor, currency, template, reports_on, "
            "appointment_start, attempts, last_error, external_id, executed_at, context) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                action.id,
                action.kind.value,
                action.state.value,
                action.policy,
                action.reason,
                action.calendar_id,
                action.event_id,
                action.client_email,
                action.client_name,
                action.happening_key,
                to_utc_text(action.due_at),
                to_utc_text(action.created_at),
                to_utc_text(action.updated_at),
                amount.minor if amount else None,
                amount.currency if amount else None,
                action.template,
                action.reports_on,
                optional_utc_text(action.appointment_start),
                action.attempts,
                action.last_error,
                action.external_id,
                optional_utc_text(action.executed_at),
                json.dumps(action.context, default=str, separators=(",", ":")),
            ),
        )
        # The creation itself is the row (created_at, state, reason): action_log records
        # only the changes after it, which keeps a first sync of a large calendar cheap.
        if cursor.rowcount == 1:
            action.stored_state = action.state
            if note:
                self._log(action.id, action.created_at, action.state, note)
        return cursor.rowcount == 1

    def _log(self, action_id: str, at: datetime, state: ActionState, note: str) -> None:
        self.db.execute(
            "INSERT INTO action_log (action_id, at, state, note) VALUES (?, ?, ?, ?)",
            (action_id, to_utc_text(at), state.value, note),
        )

    @staticmethod
    def _action(row: LedgerRow) -> Action:
        amount = Money(row["amount_minor"], row["currency"]) if row["currency"] else None
        return Action(
            id=row["id"],
            kind=ActionKind(row["kind"]),
            state=ActionState(row["state"]),
            policy=row["policy"],
            reason=row["reason"],
            calendar_id=row["calendar_id"],
            event_id=row["event_id"],
            client_email=row["client_email"],
            client_name=row["client_name"],
            happening_key=row["happening_key"],
            due_at=from_utc_text(row["due_at"]),
            created_at=from_utc_text(row["created_at"]),
            updated_at=from_utc_text(row["updated_at"]),
            amount=amount,
            template=row["template"],
            reports_on=row["reports_on"],
            appointment_start=optional_utc_time(row["appointment_start"]),
            attempts=row["attempts"],
            last_error=row["last_error"],
            external_id=row["external_id"],
            executed_at=optional_utc_time(row["executed_at"]),
            context=json.loads(row["context"]),
            stored_state=ActionState(row["state"]),
        )

    def action(self, action_id: str) -> Action | None:
        row = self.db.execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
        return self._action(row) if row else None

    def actions(
        self,
        *,
        states: Iterable[ActionState] | None = None,
        kinds: Iterable[ActionKind] | None = None,
        calendar_id: str | None = None,
        event_id: str | None = None,
        client_email: str | None = None,
        due_before: datetime | None = None,
        policy: str | None = None,
        executed_since: datetime | None = None,
    ) -> list[Action]:
        """Actions matching every filter given, in the order they were planned
        (`executed_since`: carried out at or after that moment)."""
        clauses, params = [], []
        if states is not None:
            states = list(states)
            clauses.append(f"state IN ({','.join('?' * len(states))})")
            params += [state.value for state in states]
        if kinds is not None:
            kinds = list(kinds)
            clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
            params += [kind.value for kind in kinds]
        for column, value in (("calendar_id", calendar_id), ("event_id", event_id), ("client_email", client_email), ("policy", policy)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if due_before is not None:
            clauses.append("due_at <= ?")
            params.append(to_utc_text(due_before))
        if executed_since is not None:
            clauses.append("executed_at >= ?")
            params.append(to_utc_text(executed_since))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ORDER BY due_at, seq" if due_before is not None else "ORDER BY seq"
        return [self._action(row) for row in self.db.execute(f"SELECT * FROM actions {where} {order}", params)]

    def due_actions(self, states: Iterable[ActionState], now: datetime, batch: int = 500) -> Iterator[Action]:
        """Actions in one of `states` due by `now`, earliest first, read `batch` at a time.

        The ids are taken once, up front (what is planned while these run waits for the next
        tick, as before); each batch is read just before it is used, so a first sync's tens of
        thousands of due emails never sit in memory together, and an action that left those
        states meanwhile (waived, cancelled) is skipped."""
        values = [state.value for state in states]
        marks = ",".join("?" * len(values))
        ids = [
            row[0]
            for row in self.db.execute(
                f"SELECT id FROM actions WHERE state IN ({marks}) AND due_at <= ? ORDER BY due_at, seq",
                [*values, to_utc_text(now)],
            )
        ]
        for index in range(0, len(ids), batch):
            chunk = ids[index:index + batch]
            rows = {
                row["id"]: row
                for row in self.db.execute(
                    f"SELECT * FROM actions WHERE id IN ({','.join('?' * len(chunk))}) AND state IN ({marks})",
                    [*chunk, *values],
                )
            }
            for action_id in chunk:
                if action_id in rows:
                    yield self._action(rows.pop(action_id))

    def update_action(self, action: Action, at: datetime, note: str = "", *, expect: Iterable[ActionState] | None = None) -> bool:
        """Write an action's mutable fields back, logging the state; returns whether it was written.

        Only while the stored state is still the one `action` was read with (or last written
        with: `action.stored_state`), or, with `expect`, one of those states. So a copy read
        before a slow step (a Stripe call, a batch of other actions) never undoes what was
        done meanwhile: a `main.py waive` in another process, a cancellation. Changes that
        keep the state (a payment status, a waiting waiver) are not seen by this guard: a
        writer that can meet them reads the action again inside its transaction first.
        Raises ValueError for an action never read from or stored in the ledger."""
        if expect is None:
            if action.stored_state is None:
                raise ValueError(f"action {action.id} was not read from the ledger; read it (or pass expect) before writing it")
            expect = [action.stored_state]
        params: list[Any] = [
            action.state.value,
            action.reason,
            to_utc_text(action.due_at),
            to_utc_text(at),
            action.amount.minor if action.amount else None,
            action.amount.currency if action.amount else None,
            action.attempts,
            action.last_error,
            action.external_id,
            optional_utc_text(action.executed_at),
            json.dumps(action.context, default=str, separators=(",", ":")),
            action.id,
        ]
        expect = list(expect)
        guard = f" AND state IN ({','.join('?' * len(expect))})"
        params += [state.value for state in expect]
        cursor = self.db.execute(
            "UPDATE actions SET state = ?, reason = ?, due_at = ?, updated_at = ?, amount_minor = ?, currency = ?, "
            "attempts = ?, last_error = ?, external_id = ?, executed_at = ?, context = ? WHERE id = ?" + guard,
            params,
        )
        if cursor.rowcount == 1:
            action.updated_at = at
            action.stored_state = action.state
            self._log(action.id, at, action.state, note)
            return True
        return False

    def action_log(self, action_id: str) -> list[dict[str, Any]]:
        """The action's story: its planning (from the action row), then every logged change."""
        created = self.db.execute("SELECT created_at, reason FROM actions WHERE id = ?", (action_id,)).fetchone()
        story = [{"at": created["created_at"], "state": "planned", "note": created["reason"]}] if created else []
        return story + [
            dict(row)
            for row in self.db.execute("SELECT at, state, note FROM action_log WHERE action_id = ? ORDER BY seq", (action_id,))
        ]

    def owed_charges(self) -> list[Action]:
        """Charges carried out that the client has not paid yet: payment_status "unpaid" (a
        payment link) or "receivable" (record-only), oldest first."""
        rows = self.db.execute(
            "SELECT * FROM actions WHERE kind = 'charge' AND state = 'done' AND (context LIKE ? OR context LIKE ?) ORDER BY seq",
            ('%"payment_status":"unpaid"%', '%"payment_status":"receivable"%'),
        )
        found = [self._action(row) for row in rows]
        return [action for action in found if action.context.get("payment_status") in OWED]

    def mark_paid(self, action_id: str, at: datetime, note: str) -> Action | None:
        """Record that the client paid a charge still owed (done, payment_status "unpaid" or
        "receivable"): it becomes "paid". Returns the action, or None when there is no such
        charge or nothing is owed on it."""
        action = self.action(action_id)
        if action is None or action.kind is not ActionKind.CHARGE or action.state is not ActionState.DONE:
            return None
        if action.context.get("payment_status") not in OWED:
            return None
        action.context["payment_status"] = "paid"
        action.context.pop("provider_detail", None)
        return action if self.update_action(action, at, note, expect=[ActionState.DONE]) else None

    def holds_placed_since(self, since: datetime) -> list[Action]:
        """Card holds carried out since `since` (whatever became of them), oldest first."""
        rows = self.db.execute(
            "SELECT * FROM actions WHERE kind = 'hold' AND executed_at >= ? AND state = 'done' ORDER BY executed_at, seq",
            (optional_utc_text(since),),
        )
        return [self._action(row) for row in rows]

    def charged_total_since(self, since: datetime, currency: str) -> int:
        """Money actually taken from cards since `since` (receivables and unpaid fees excluded)."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(amount_minor), 0) AS total FROM actions WHERE kind = 'charge' AND state = 'done' "
            "AND currency = ? AND executed_at >= ? AND context LIKE '%\"payment_status\":\"paid\"%'",
            (currency, to_utc_text(since)),
        ).fetchone()
        return int(row["total"])
