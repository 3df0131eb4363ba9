"""The monthly report (slotguard/reports/) as a plugin: each tick notes since when each policy
is enabled (the marks on the report's chart), and plans the report's email on the first
working morning of a month; it owns that email, which is about the practice, not one
appointment, so nothing makes it stale before it goes."""

from __future__ import annotations

from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.owners import ActionOwner, TickStep
from slotguard.reports.mailing import POLICY, plan_monthly_report
from slotguard.reports.people import record_enabled


class MonthlyReport(ActionOwner):
    name = POLICY


OWNER = MonthlyReport()


@hookimpl
def slotguard_action_owner(action):
    return OWNER if action.policy == POLICY else None


def _policies_on(settings, ledger, provider, now, report):
    record_enabled(ledger, list(settings.policies.enabled), now)


def _plan(settings, ledger, provider, now, report):
    if plan_monthly_report(settings, ledger, now):
        report.planned["email:monthly_report"] += 1


@hookimpl
def slotguard_tick_steps():
    return [TickStep(name="policies_on", order=5, run=_policies_on), TickStep(name="monthly_report", order=12, run=_plan)]
