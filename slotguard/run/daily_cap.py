"""`payments.daily_cap`: the most Slotguard charges in one local day of the practice; a
charge past it waits for the next day (and, there, for the end of quiet hours: the charge
goes with the email that explains it, slotguard/run/quiet_hours.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from slotguard.config.schema import Settings
from slotguard.domain.interfaces import AdapterError
from slotguard.domain.model import CLIENT_PAYS, Action
from slotguard.domain.quiet_hours import next_allowed
from slotguard.store.ledger import Ledger

Failed = Callable[[AdapterError], None]


def within_daily_cap(ledger: Ledger, settings: Settings, action: Action, now: datetime, failed: Failed) -> bool:
    """True when charging `action` now keeps today's total within the cap. Otherwise it is
    put off to the next local day (recorded), or, in another currency than the cap, failed
    through `failed` with what to do; False."""
    cap = settings.payments.daily_cap
    if cap is None or action.amount is None or action.context.get(CLIENT_PAYS):
        return True  # (a request the client pays through a link takes nothing from a card)
    if action.amount.currency != cap.currency:
        # Minor units of two currencies are never compared (the config keeps the cap in
        # the practice currency; a fee planned before the currency changed can differ).
        failed(AdapterError(
            f"this {action.amount} fee cannot be checked against payments.daily_cap ({cap}), which is in "
            f"another currency, so it was not charged; remove daily_cap for a moment or waive the fee, "
            f"then run `main.py retry {action.id}`",
            retryable=False,
        ))
        return False
    local = now.astimezone(settings.zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    spent = ledger.charged_total_since(midnight, action.amount.currency)
    if spent + action.amount.minor <= cap.minor:
        return True
    # Tomorrow, once the night is over: the charge goes with the email that explains it.
    action.due_at = next_allowed(midnight + timedelta(days=1), settings.mail.quiet, settings.zone)
    ledger.update_action(action, now, f"daily cap {cap} reached; waits until tomorrow")
    return False
