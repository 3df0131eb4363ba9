"""From a happening to planned actions in the ledger.

Fee policies propose; modifiers adjust money proposals in the configured order; the engine's
own safety rules apply last (never more than the price or `max_single_charge`, nothing for
appointments before `charge_from`). Every step is written into the action's reason, so the
ledger, the digest and the calendar note tell the same story.

The client-lifecycle emails that are not policies (booking confirmation, reminders) are
planned here too, as are the consequences of a waiver (open fees waived, charged ones
refunded) and of a reschedule or cancellation (reminders for the old slot cancelled).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from slotguard.config import Settings
from slotguard.durations import to_utc_text
from slotguard.ledger import Ledger
from slotguard.model import (
    MONEY_KINDS,
    OPEN_STATES,
    Action,
    ActionKind,
    ActionState,
    Appointment,
    Happening,
    HappeningKind,
    Proposal,
    action_id_for,
)
from slotguard.money import Money
from slotguard.plugins import Policy
from slotguard.tracker import MOVED_BEFORE_SEEN

log = logging.getLogger("slotguard.planner")

LIFECYCLE = "lifecycle"
SAFETY = "safety"


@dataclass
class Planner:
    settings: Settings
    policies: list[Policy]
    ledger: Ledger
    charge_from: datetime

    def plan(self, happening: Happening, appointment: Appointment, now: datetime) -> list[Action]:
        """Plan and store the actions for one new happening; return those newly stored."""
        kind = happening.kind
        planned: list[Action] = []
        if kind is HappeningKind.BOOKED:
            planned += self._booking_mail(happening, appointment, now, rescheduled=False)
        elif kind is HappeningKind.RESCHEDULED and happening.detail != MOVED_BEFORE_SEEN:
            self._cancel_slot_mail(appointment, happening.previous_start, now, "the appointment was moved")
            planned += self._booking_mail(happening, appointment, now, rescheduled=True)
        elif kind in (HappeningKind.CANCELLED_BY_CLIENT, HappeningKind.CANCELLED_BY_PRACTITIONER):
            self._cancel_slot_mail(appointment, appointment.start, now, "the appointment was cancelled")
        elif kind is HappeningKind.WAIVED:
            planned += self._waive_event(happening, appointment, now)
        planned += self._policy_actions(happening, appointment, now)
        return planned

    # -- lifecycle mail -------------------------------------------------------------------
    def _booking_mail(self, happening: Happening, appointment: Appointment, now: datetime, rescheduled: bool) -> list[Action]:
        if appointment.start <= now or appointment.is_cancelled:
            return []
        proposals = []
        if rescheduled or not self._series_confirmed(appointment):
            proposals.append(
                Proposal(
                    kind=ActionKind.EMAIL,
                    policy=LIFECYCLE,
                    reason="the appointment was moved" if rescheduled else "confirm the booking and state the policy",
                    template="booking_confirmation",
                    slot="confirmation",
                    context={"rescheduled": rescheduled, "series_id": appointment.series_id or ""},
                )
            )
        # Reminders are planned when they fall due: see slotguard/reminders.py.
        return self._store(happening, appointment, proposals, now)

    def _series_confirmed(self, appointment: Appointment) -> bool:
        """True when another instance of the same recurring series was already confirmed:
        a weekly client gets one confirmation for the series, and reminders for each."""
        if not appointment.series_id:
            return False
        return self.ledger.series_confirmed(appointment.client.email, appointment.series_id)

    def _cancel_slot_mail(self, appointment: Appointment, start: datetime | None, now: datetime, why: str) -> None:
        for action in self.ledger.actions(
            states=OPEN_STATES,
            kinds=[ActionKind.EMAIL],
            calendar_id=appointment.calendar_id,
            event_id=appointment.event_id,
        ):
            if action.policy == LIFECYCLE and (start is None or action.appointment_start == start):
                action.state = ActionState.CANCELLED
                self.ledger.update_action(action, now, why)

    # -- waivers --------------------------------------------------------------------------
    def _waive_event(self, happening: Happening, appointment: Appointment, now: datetime) -> list[Action]:
        """Waive open fees of this slot; plan a refund for fees already charged."""
        why = happening.detail or "waived by the practitioner's mark on the event"
        refunds: list[Proposal] = []
        for action in self.ledger.actions(
            kinds=[ActionKind.CHARGE, ActionKind.HOLD],
            calendar_id=appointment.calendar_id,
            event_id=appointment.event_id,
        ):
            if action.appointment_start != appointment.start:
                continue
            if action.state in OPEN_STATES:
                waive_action(self.ledger, action, why, now)
            elif action.state is ActionState.DONE and action.kind is ActionKind.CHARGE and action.amount:
                refunds.append(refund_proposal(action, why))
        return self._store(happening, appointment, refunds, now)

    # -- policies -------------------------------------------------------------------------
    def _policy_actions(self, happening: Happening, appointment: Appointment, now: datetime) -> list[Action]:
        fee_policies = [policy for policy in self.policies if policy.info.role == "fee"]
        modifiers = [policy for policy in self.policies if policy.info.role == "modifier"]
        if not fee_policies:
            return []
        history = None
        proposals: list[Proposal] = []
        for policy in fee_policies:
            if history is None and policy.wants("slotguard_propose", "history"):
                history = self.ledger.history(appointment.client.email)
            found = policy.call(
                "slotguard_propose",
                happening=happening,
                appointment=appointment,
                history=history,
                config=policy.config,
                now=now,
            )
            proposals.extend(found or [])
        if not proposals:
            return []
        adjusted = []
        for proposal in proposals:
            if proposal.kind in MONEY_KINDS and proposal.amount is not None:
                for modifier in modifiers:
                    if history is None and modifier.wants("slotguard_modify", "history"):
                        history = self.ledger.history(appointment.client.email)
                    changed = modifier.call(
                        "slotguard_modify",
                        proposal=proposal,
                        happening=happening,
                        appointment=appointment,
                        history=history,
                        config=modifier.config,
                        now=now,
                    )
                    if changed is not None:
                        proposal = changed
                proposal = self._safety(proposal, appointment)
            adjusted.append(proposal)
        return self._store(happening, appointment, adjusted, now)

    def _safety(self, proposal: Proposal, appointment: Appointment) -> Proposal:
        amount = proposal.amount
        assert amount is not None
        if amount.minor < 0:
            return proposal.with_amount(Money.zero(amount.currency), "safety: a negative fee became zero")
        if proposal.kind is ActionKind.CHARGE and amount > appointment.price:
            proposal = proposal.with_amount(appointment.price, f"safety: capped at the price {appointment.price}")
            amount = appointment.price
        cap = self.settings.payments.max_single_charge
        if cap is not None and proposal.kind in (ActionKind.CHARGE, ActionKind.HOLD) and amount > cap:
            proposal = proposal.with_amount(cap, f"safety: capped at max_single_charge {cap}")
        return proposal

    # -- storing --------------------------------------------------------------------------
    def _store(self, happening: Happening, appointment: Appointment, proposals: list[Proposal], now: datetime) -> list[Action]:
        review = self.settings.payments.review_window
        stored: list[Action] = []
        due_by_slot: dict[str, datetime] = {}
        ids_by_slot: dict[str, str] = {}
        before_watch = appointment.start < self.charge_from
        for proposal in proposals:
            action_id = action_id_for(happening.key, proposal.policy, proposal.kind.value, proposal.slot)
            ids_by_slot[proposal.slot] = action_id
            state = ActionState.PLANNED
            reason = proposal.reason
            kind = proposal.kind
            if kind in MONEY_KINDS and proposal.amount is not None:
                earliest = max(proposal.due or now, now)
                due = earliest + review if kind in (ActionKind.CHARGE, ActionKind.CAPTURE) else earliest
                if kind in (ActionKind.CHARGE, ActionKind.CAPTURE):
                    state = ActionState.PENDING_REVIEW
                if proposal.amount.is_zero and kind is ActionKind.CHARGE:
                    kind, state, due = ActionKind.WAIVE, ActionState.DONE, now
                elif before_watch:
                    state = ActionState.CANCELLED
                    reason += f"; not charged: the appointment is before charge_from ({to_utc_text(self.charge_from)}), when Slotguard started watching"
            else:
                due = proposal.due or now
                if proposal.reports_on in due_by_slot:
                    due = due_by_slot[proposal.reports_on]
                if before_watch and proposal.reports_on:
                    state = ActionState.CANCELLED
                    reason += "; not sent: the fee it reports on is before charge_from"
            due_by_slot[proposal.slot] = due
            context = dict(proposal.context)
            action = Action(
                id=action_id,
                kind=kind,
                state=state,
                policy=proposal.policy,
                reason=reason,
                calendar_id=appointment.calendar_id,
                event_id=appointment.event_id,
                client_email=appointment.client.email,
                client_name=appointment.client.name,
                happening_key=happening.key,
                due_at=due,
                created_at=now,
                updated_at=now,
                amount=proposal.amount,
                template=proposal.template,
                reports_on=ids_by_slot.get(proposal.reports_on) if proposal.reports_on else None,
                appointment_start=appointment.start,
                context=context,
            )
            if self.ledger.add_action(action):
                stored.append(action)
                log.info(
                    "planned action=%s kind=%s state=%s policy=%s event=%s due=%s",
                    action.id, action.kind.value, action.state.value, action.policy, action.event_ref, to_utc_text(due),
                )
        return stored


def waive_action(ledger: Ledger, action: Action, why: str, now: datetime) -> bool:
    """Waive an open fee; emails reporting on it will say there is no fee. True if waived."""
    action.state = ActionState.WAIVED
    action.reason = f"{action.reason}; waived: {why}"
    return ledger.update_action(action, now, f"waived: {why}", expect=OPEN_STATES)


def refund_proposal(charge: Action, why: str) -> Proposal:
    assert charge.amount is not None
    return Proposal(
        kind=ActionKind.REFUND,
        policy=charge.policy,
        reason=f"refund of {charge.amount} charged by {charge.policy}: {why}",
        amount=charge.amount,
        slot=f"refund-{charge.id}",
        context={"target_action_id": charge.id, "target_external_id": charge.external_id},
    )

