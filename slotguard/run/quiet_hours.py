"""Quiet hours at the moment of carrying an action out: an email to a client, or a charge,
due while the client's night lasts waits for its end (the rule: slotguard/planning/quiet.py).
A fee's notice waits for its fee (Engine._email_ready), so the two still go together."""

from __future__ import annotations

import logging
from datetime import datetime

from slotguard.config.schema import Settings
from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.planning.quiet import TAKES_MONEY, allowed_at, client_zone, held
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.engine")


def wait_for_quiet_hours(ledger: Ledger, settings: Settings, action: Action, now: datetime) -> bool:
    """True when `action` must wait: its due time is moved to the end of quiet hours and
    recorded (nothing else changes). False when it may be carried out now."""
    if settings.mail.quiet is None or not held(settings, action):
        return False  # most actions: nothing to read
    tracked = ledger.tracked(action.calendar_id, action.event_id) if action.event_id else None
    appointment = tracked.appointment if tracked is not None else None
    allowed = allowed_at(settings, action, appointment, now, _charged_at(ledger, action))
    if allowed <= now:
        return False
    action.due_at = allowed
    ledger.update_action(action, now, f"quiet hours ({settings.mail.quiet_hours} {client_zone(settings, appointment)}): "
                                      f"waits until {to_utc_text(allowed)}")
    log.info("quiet_hours action=%s kind=%s event=%s until=%s", action.id, action.kind.value, action.event_ref, to_utc_text(allowed))
    return True


def _charged_at(ledger: Ledger, email: Action) -> datetime | None:
    """When the money `email` reports on was taken (None: not taken, or nothing to take)."""
    if email.kind is not ActionKind.EMAIL or not email.reports_on:
        return None
    money = ledger.action(email.reports_on)
    if money is None or money.kind not in TAKES_MONEY or money.state is not ActionState.DONE:
        return None
    return money.executed_at
