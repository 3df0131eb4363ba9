"""The collections ladder (slotguard/collections/ladder.py) as a plugin: it owns every
action it planned, and checks a chasing email or charge just before it goes (the debt may
have been paid, waived or written off meanwhile)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.collections.debts import COLLECTIONS
from slotguard.collections.ladder import collection_ready, run_collections
from slotguard.domain.model import Action
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.owners import ActionOwner, TickStep


class Collections(ActionOwner):
    name = COLLECTIONS

    def ready(self, action: Action, ledger: Any, provider: Any, settings: Any, now: datetime) -> bool:
        return collection_ready(ledger, provider, settings, action, now)


OWNER = Collections()


@hookimpl
def slotguard_action_owner(action):
    return OWNER if action.policy == COLLECTIONS else None


@hookimpl
def slotguard_tick_steps():
    return [TickStep(name="collections", order=20, run=lambda settings, ledger, provider, now, report: run_collections(settings, ledger, provider, now, report))]
