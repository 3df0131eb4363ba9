"""When an email about an appointment is no longer to be sent.

The engine checks this just before it sends (Engine._email_ready) and cancels a stale email
with the reason; `main.py retry` says so beforehand. Pure: the appointment as the ledger
tracks it and `now` are given.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import Action
from slotguard.intake.tracker import FOREIGN, Tracked
from slotguard.policies.owners import action_owner


def stale_email_reason(action: Action, tracked: Tracked | None, now: datetime, show: Callable[[datetime], str] = to_utc_text) -> str:
    """Why an email about an appointment is no longer to be sent ("" while it still is): the
    appointment left the calendar, or is someone else's now; then whatever the feature that
    owns the email says (slotguard/features/: lifecycle mail for a slot that moved, was
    cancelled, was given to another client or has started; a slot offer for a slot that has
    started). The engine cancels such an email with this reason; `retry` says so beforehand.
    `show` writes times."""
    if tracked is None:
        return "the appointment is no longer in the calendar"
    if tracked.outcome == FOREIGN and not action.reports_on:
        return "someone else now organises the event; Slotguard sends nothing about it"
    if action.reports_on:
        return ""  # a fee notice is never too late; it waits for its fee instead
    owner = action_owner(action)  # the feature that planned it knows when its email is too late
    return owner.stale_reason(action, tracked, now, show) if owner is not None else ""
