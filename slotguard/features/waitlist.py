"""Slot offers to clients who want an earlier time (slotguard/planning/waitlist.py) as a
plugin: it owns the offers and says one is too late once the freed slot has started."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from slotguard.domain.durations import to_utc_text
from slotguard.planning.waitlist import POLICY as WAITLIST
from slotguard.planning.waitlist import plan_slot_freed
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.owners import ActionOwner


class Waitlist(ActionOwner):
    name = WAITLIST

    def stale_reason(self, action: Any, tracked: Any, now: datetime, show: Callable[[datetime], str] = to_utc_text) -> str:
        if action.appointment_start and action.appointment_start <= now:
            return f"too late, the freed slot started {show(action.appointment_start)}"
        return ""


OWNER = Waitlist()


@hookimpl
def slotguard_action_owner(action):
    return OWNER if action.policy == WAITLIST else None


@hookimpl
def slotguard_after_happening(happening, appointment, ledger, settings, now):
    return plan_slot_freed(settings, ledger, happening, appointment, now)
