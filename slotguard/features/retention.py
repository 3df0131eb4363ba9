"""Retention (slotguard/privacy/retention.py) as a feature: a step of every tick that prunes
the ledger once a day by privacy.retention and privacy.bookkeeping_years (docs/privacy.md).
It plans nothing and owns no action."""

from __future__ import annotations

from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.owners import TickStep
from slotguard.privacy.retention import prune_daily


def _prune(settings, ledger, provider, now, report):
    prune_daily(ledger, settings, now)


@hookimpl
def slotguard_tick_steps():
    return [TickStep(name="retention", order=90, run=_prune)]
