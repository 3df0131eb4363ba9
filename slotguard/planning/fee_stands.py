"""When a fee may stand: the planner's own rules over the fees every fee policy proposes.

They hold for every fee policy, built in or third-party, and never touch deposits or
prepayments (those are not fees). Pure: given the happening, the appointment, the client's
actions and the settings.

- Marks have a shelf life (`late_mark`): a fee counts only when Slotguard first saw what
  caused it (the happening's `seen_at`: when the tracker first saw the mark, never a time the
  calendar gives) within `calendar.marks.honour_for` after the end of the appointment. A
  later one is kept, not charged, with the notices about it (`LATE_MARK`); the digest shows it
  with the `main.py charge-now` command, for the practitioner who means it.
- Told before charged (`how_told`, `untold`): with `payments.require_policy_notice`, a fee
  stands only when the client was sent the policy before the incident (an email carrying it,
  `POLICY_CARRIERS`, carried out before the incident time), or the practitioner said the client
  knows it (the `knows_policy` mark on the event, or `payments.policy_known_by`). Otherwise the
  fee is let go and a kind warning (`grace_warning`, quoting the whole policy) replaces its
  notices; that warning carries the policy, so the next incident counts. Keyed on the template
  name and the sent state only, so any email of those templates counts (a first sync's
  confirmation for existing bookings too).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.durations import format_duration, to_utc_text
from slotguard.domain.model import Action, ActionKind, ActionState, Appointment, Happening, HappeningKind, Mark, Proposal
from slotguard.domain.money import Money
from slotguard.domain.plan import LATE_MARK, POLICY_TOLD, POLICY_UNTOLD, WAIVED_AMOUNT
from slotguard.policies.account import INCIDENT, REPLACES_NOTICES, derive, money_json

# Emails that state the whole fee policy (templates/_policy.txt.j2, policy_lines): sent to
# the client before an incident, they told the client the policy.
POLICY_CARRIERS = frozenset({"booking_confirmation", "reminder", "deposit_request", "grace_warning"})
POLICY_NOTICE = "policy_notice"  # the policy name of the warning sent instead of a fee
WARNING_TEMPLATE = "grace_warning"
WHOLE_POLICY = "whole_policy"  # context of that warning: quote every fee rule, not only this one's


def incident_time(happening: Happening, appointment: Appointment) -> datetime:
    """When the incident happened: the cancellation, or the start of a missed session."""
    return min(happening.at, appointment.start)


def how_told(client_actions: Iterable[Action], appointment: Appointment, happening: Happening, settings: Settings) -> dict[str, Any] | None:
    """How the client knew the policy before this incident (the `POLICY_TOLD` context), or
    None: the practitioner's word first (a mark on the event, the config), else the latest
    email carrying the policy that was sent before the incident."""
    if Mark.KNOWS_POLICY in appointment.marks:
        return {"how": "mark"}
    if appointment.client.email.lower() in settings.payments.policy_known_by:
        return {"how": "config"}
    before = incident_time(happening, appointment)
    sent = [
        action for action in client_actions
        if action.kind is ActionKind.EMAIL and action.template in POLICY_CARRIERS and action.state is ActionState.DONE
        and action.executed_at is not None and action.executed_at <= before
    ]
    if not sent:
        return None
    latest = max(sent, key=lambda action: action.executed_at or before)
    assert latest.executed_at is not None
    return {"how": "email", "template": latest.template, "action": latest.id, "sent": to_utc_text(latest.executed_at)}


def late_mark(happening: Happening, appointment: Appointment, honour_for: timedelta) -> dict[str, Any] | None:
    """The `LATE_MARK` context ({"seen", "hours_after_end", "honour_for"}) when what caused a
    fee was first seen more than `honour_for` after the end of the appointment; None when it
    counts."""
    after_end = happening.seen_at - appointment.end
    if after_end <= honour_for:
        return None
    hours = int(after_end.total_seconds() // 3600)
    return {"seen": to_utc_text(happening.seen_at), "hours_after_end": hours, "honour_for": format_duration(honour_for)}


def after_end_words(hours: int) -> str:
    """How long after the session, in the ledger's and the digest's words: "10 days", "30 hours"."""
    if hours >= 48:
        return f"{hours // 24} days"
    return f"{hours} hour{'' if hours == 1 else 's'}"


def not_charged(fee: Proposal, late: dict[str, Any], told: dict[str, Any] | None) -> Proposal:
    """The fee kept, not charged, because its mark came too late; not an incident unless the
    practitioner charges it (`main.py charge-now`). How the client had been told the policy
    (`how_told`) is recorded for the evidence pack; the reason says when they had not been."""
    because = (f"not charged: marked {after_end_words(late['hours_after_end'])} after the session (marks count for "
               f"{late['honour_for']} after the end, calendar.marks.honour_for); `main.py charge-now` charges it if you mean it")
    if told is None:
        because += " (the client had not been sent the policy before either)"
    return derive(fee, because=because, context={LATE_MARK: late, INCIDENT: False, **({POLICY_TOLD: told} if told else {})})


def untold(fee: Proposal, happening: Happening) -> list[Proposal]:
    """The fee let go because the client had not been told the policy, and the kind warning
    quoting it that replaces the fee's notices."""
    assert fee.amount is not None
    waived = derive(
        fee.with_amount(Money.zero(fee.amount.currency), "no fee: the client had not been told the policy; a warning quoting it was sent"),
        context={WAIVED_AMOUNT: money_json(fee.amount), POLICY_UNTOLD: True},
    )
    warning = Proposal(
        kind=ActionKind.EMAIL,
        policy=POLICY_NOTICE,
        reason="the client had not been told the policy: a kind warning quoting it, no fee",
        template=WARNING_TEMPLATE,
        slot=f"policy-notice-{fee.slot}",
        reports_on=fee.slot,
        context={
            "policy": "no_show" if happening.kind is HappeningKind.NO_SHOW else "late_cancel",
            "waived_amount": money_json(fee.amount),
            WHOLE_POLICY: True,
            REPLACES_NOTICES: True,
        },
    )
    return [waived, warning]

