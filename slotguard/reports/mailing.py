"""The monthly report by email: planned once per month, composed when it is sent.

On the first working morning of a month (the first Monday to Friday, from `mail.digest_hour`,
7 when the digest is off), `plan_monthly_report` stores one email action about the month
before, to practice.email, with an id derived from that month: a second tick, a restart or a
crash between planning and sending never plans a second one, and the executor sends the
action once (as it does the digest, slotguard/practitioner/digest.py). A tick later in the
month, when none was planned yet (Slotguard was not running that morning, or was just
installed), plans it then. `mail.monthly_report = false` plans none. A ledger with no
appointment at all records the month's report as cancelled ("nothing to report").

Its content is read from the ledger when it is composed (`slotguard_email_extras`): the
figures (slotguard/reports/monthly.py), in the practitioner's language, with the charts as
PNG parts of the HTML, each named by a Content-ID its <img> shows (slotguard/reports/page.py).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from slotguard.config.schema import Settings
from slotguard.domain.model import Action, ActionKind, Appointment, action_id_for
from slotguard.mail.compose import EmailExtras, EmailView
from slotguard.mail.context import recipient_locale
from slotguard.policies.hookspecs import hookimpl
from slotguard.practitioner.digest import plan_practitioner_email
from slotguard.reports.monthly import build_report
from slotguard.reports.months import parse_month, previous_first
from slotguard.reports.page import TEMPLATE, email_parts
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.report")

POLICY = "monthly_report"  # the policy name of the report's email actions
MORNING = 7  # the hour it goes when the digest is off


def report_action_id(month: str) -> str:
    return action_id_for(f"monthly-report/{month}", POLICY, ActionKind.EMAIL.value, month)


def first_working_day(first: date) -> date:
    day = first
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def plan_monthly_report(settings: Settings, ledger: Ledger, now: datetime) -> Action | None:
    """Store the report of last month once its morning has come; return it when newly
    stored (None: off, too early, or planned already)."""
    if not settings.mail.monthly_report:
        return None
    local = now.astimezone(settings.zone)
    hour = settings.mail.digest_hour if settings.mail.digest_hour >= 0 else MORNING
    due = datetime.combine(first_working_day(local.date().replace(day=1)), time(hour), tzinfo=settings.zone)
    if local < due:
        return None
    month = previous_first(local.date().replace(day=1)).strftime("%Y-%m")
    action_id = report_action_id(month)
    if ledger.action(action_id) is not None:
        return None
    empty = ledger.db.execute("SELECT 1 FROM appointments LIMIT 1").fetchone() is None
    return plan_practitioner_email(
        settings, ledger, now, action_id=action_id, policy=POLICY, what=f"monthly report for {month}",
        key=f"monthly-report/{month}", template=TEMPLATE, context={"month": month}, empty=empty,
        logger=log, log_field=f"monthly_report={month}",
    )


@hookimpl
def slotguard_email_extras(action: Action, appointment: Appointment | None, view: EmailView, now: datetime) -> EmailExtras | None:
    """The report's figures and charts, read from the ledger as the email is composed; None
    for any other email."""
    if action.template != TEMPLATE or action.policy != POLICY:
        return None
    settings = view.settings
    locale = view.renderer.pick_locale(TEMPLATE, recipient_locale(settings, action, None))
    report = build_report(settings, view.ledger, parse_month(str(action.context["month"])), now)
    details, parts = email_parts(view.renderer, report, locale, action.id)
    return EmailExtras(details=details, attachments=tuple(parts))
