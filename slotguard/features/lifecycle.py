"""Lifecycle mail (the booking confirmation and changes the planner sends, and the reminders of
slotguard/planning/reminders.py) as a plugin: it owns those emails and says when one is no
longer to be sent (the slot moved, was cancelled, given to another client, or has started)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from slotguard.domain.durations import to_utc_text
from slotguard.planning.reminders import POLICY as LIFECYCLE
from slotguard.planning.reminders import plan_due_reminders
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.owners import ActionOwner


class Lifecycle(ActionOwner):
    name = LIFECYCLE

    def stale_reason(self, action: Any, tracked: Any, now: datetime, show: Callable[[datetime], str] = to_utc_text) -> str:
        appointment = tracked.appointment
        if tracked.cancellation or appointment.is_cancelled or (appointment.start, appointment.client.email) != (action.appointment_start, action.client_email):
            return "the appointment was moved, cancelled or given to another client"
        if appointment.start <= now:
            return f"too late, the appointment started {show(appointment.start)}"
        return ""


OWNER = Lifecycle()


@hookimpl
def slotguard_action_owner(action):
    return OWNER if action.policy == LIFECYCLE else None


@hookimpl
def slotguard_time_passes(ledger, settings, now):
    return plan_due_reminders(ledger, settings.reminders.offsets, now)
