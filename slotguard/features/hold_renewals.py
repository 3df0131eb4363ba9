"""Card holds placed again before they lapse (slotguard/planning/holds.py) as a plugin: it
owns a renewal (a hold that `renews` another) and checks just before it is placed that it is
still wanted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.domain.model import Action
from slotguard.planning.holds import plan_hold_renewals, renewal_ready
from slotguard.policies.account import RENEWS
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.owners import ActionOwner


class HoldRenewals(ActionOwner):
    name = "hold_renewals"

    def ready(self, action: Action, ledger: Any, provider: Any, settings: Any, now: datetime) -> bool:
        return renewal_ready(ledger, action, now)


OWNER = HoldRenewals()


@hookimpl
def slotguard_action_owner(action):
    return OWNER if action.context.get(RENEWS) else None


@hookimpl(trylast=True)  # after the reminders, as before
def slotguard_time_passes(ledger, settings, now):
    return plan_hold_renewals(ledger, settings, now)  # card holds about to lapse
