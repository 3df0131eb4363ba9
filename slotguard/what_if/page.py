"""`simulate --out FILE`: the policies in use now and a proposed set, simulated over the same
weeks, put side by side for the what-if page (slotguard/reports/what_if_page.py draws it).

`compare(settings, now, proposed)` takes the two SimulationResults (slotguard/what_if/simulate.py)
and returns the page's plain numbers: totals of each set, each client's fees and waivers under
both, and the fees of each week (7 days from `--from`, by the appointment's start).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from slotguard.config.schema import Settings
from slotguard.mail.render import Renderer
from slotguard.reports.what_if_page import ClientLine, Totals, WhatIf, what_if_html
from slotguard.what_if.simulate import ClientTotals, SimulationResult, count_action

WEEK = timedelta(days=7)


def compare(settings: Settings, now: SimulationResult, proposed: SimulationResult) -> WhatIf:
    """The two simulations side by side. Both must cover the same period."""
    if (now.start, now.end) != (proposed.start, proposed.end):
        raise ValueError("compare two simulations of the same period")
    zone = settings.zone
    weeks = _weeks(now.start.astimezone(zone), now.end.astimezone(zone))
    clients = sorted(set(now.clients) | set(proposed.clients))
    empty = ClientTotals()
    return WhatIf(
        practice=settings.practice.name,
        locale=settings.practice.locale,
        timezone=settings.practice.timezone,
        currency=now.currency,
        start=now.start.astimezone(zone),
        end=now.end.astimezone(zone),
        now_policies=tuple(now.policies),
        proposed_policies=tuple(proposed.policies),
        now=_totals(now.total),
        proposed=_totals(proposed.total),
        clients=tuple(
            ClientLine(
                client=email,
                now_fees=now.clients.get(email, empty).fees,
                proposed_fees=proposed.clients.get(email, empty).fees,
                now_waived=now.clients.get(email, empty).waived,
                proposed_waived=proposed.clients.get(email, empty).waived,
            )
            for email in clients
        ),
        weeks=tuple(start.date() for start in weeks),
        now_weekly=_weekly_fees(now, weeks),
        proposed_weekly=_weekly_fees(proposed, weeks),
        appointments=proposed.appointments,
        problems=tuple(dict.fromkeys([*now.problems, *proposed.problems])),
    )


def what_if_page(settings: Settings, renderer: Renderer, now: SimulationResult, proposed: SimulationResult) -> str:
    """The what-if page's HTML. Raises TemplateProblem when its template cannot be rendered."""
    return what_if_html(compare(settings, now, proposed), renderer)


def _totals(item: ClientTotals) -> Totals:
    return Totals(
        fees=item.fees,
        waived=item.waived,
        written_off=item.written_off,
        deposits=item.deposits,
        refunded=item.refunded,
        prepaid_sessions=item.prepaid_sessions,
        emails=sum(item.emails.values()),
    )


def _weeks(start: datetime, end: datetime) -> list[datetime]:
    """The first moment of each 7-day week from `start` until `end` (excluded). `start` is
    in the practice's zone, so a week across a clock change still starts at the same hour."""
    found = []
    moment = start
    while moment < end:
        found.append(moment)
        moment += WEEK  # wall-clock arithmetic in the zone: the same hour a week later
    return found


def _weekly_fees(result: SimulationResult, weeks: list[datetime]) -> tuple[int, ...]:
    totals = [ClientTotals() for _ in weeks]
    for action in result.actions:
        if action.appointment_start is None:
            continue
        index = _week_of(action.appointment_start, weeks)
        if index is not None:
            count_action(totals[index], action)
    return tuple(item.fees for item in totals)


def _week_of(moment: datetime, weeks: list[datetime]) -> int | None:
    found = None
    for index, start in enumerate(weeks):
        if moment >= start:
            found = index
    return found


__all__ = ["compare", "what_if_page"]
