"""The practitioner's daily digest (slotguard/practitioner/digest.py) as a plugin: it owns
the digest emails, which are about the practice, not one appointment, so nothing makes one
stale and nothing needs checking before it goes."""

from __future__ import annotations

from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.owners import ActionOwner, TickStep
from slotguard.practitioner.digest import POLICY as DIGEST
from slotguard.practitioner.digest import plan_digest


class Digest(ActionOwner):
    name = DIGEST


OWNER = Digest()


@hookimpl
def slotguard_action_owner(action):
    return OWNER if action.policy == DIGEST else None


def _plan(settings, ledger, provider, now, report):
    if plan_digest(settings, ledger, now):
        report.planned["email:digest"] += 1


@hookimpl
def slotguard_tick_steps():
    return [TickStep(name="digest", order=10, run=_plan)]
