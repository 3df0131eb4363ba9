"""Money asked ahead and not paid as the session comes near (slotguard/practitioner/money_ahead.py)
as a plugin: it plans the practitioner's email at the time check, gives the email its details
when it is composed, and cancels it just before it goes when the money was paid or let go, or
the appointment moved, was cancelled or has started."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.domain.model import Action, ActionState, Appointment
from slotguard.mail.compose import EmailExtras, EmailView
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.owners import ActionOwner
from slotguard.practitioner.money_ahead import POLICY, TEMPLATE, alert_details, alert_stale, plan_money_ahead_alerts


class MoneyAhead(ActionOwner):
    name = POLICY

    def ready(self, action: Action, ledger: Any, provider: Any, settings: Any, now: datetime) -> bool:
        why = alert_stale(ledger, action, now)
        if not why:
            return True
        was = action.state
        action.state = ActionState.CANCELLED
        ledger.update_action(action, now, why, expect=[was])
        return False


OWNER = MoneyAhead()


@hookimpl
def slotguard_action_owner(action):
    return OWNER if action.policy == POLICY else None


@hookimpl(trylast=True)
def slotguard_time_passes(ledger, settings, now):
    return plan_money_ahead_alerts(settings, ledger, now)


@hookimpl
def slotguard_email_extras(action: Action, appointment: Appointment | None, view: EmailView, now: datetime) -> EmailExtras | None:
    if action.template != TEMPLATE or action.policy != POLICY:
        return None
    return EmailExtras(details=alert_details(view.settings, view.ledger, action))
