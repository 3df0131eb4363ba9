"""The practitioner's daily digest: what needs a look today, in one email.

Once per local day, at `mail.digest_hour`, `plan_digest` stores one email action with an id
derived from the date (so a restart, a second tick or a replay never plans it twice). Its
content is read from the ledger when it is sent, so it is current:

- fees and deposits pending review: fees and prepayments with the time they will be charged,
  deposits kept for a fee with the time they are kept for good (all unless waived), and
  deposits kept as a rescheduling credit with the time they are kept if not used;
- failed payments (the client has to pay through a link) and actions that failed (money
  actions that could not reach Stripe for their whole retry budget, `payments.retry_for`,
  with the `main.py retry` command);
- receivables not yet paid;
- no fee planned, since the previous digest: the client had not been told the policy (a kind
  warning went instead), or a mark came later than `calendar.marks.honour_for` after the end
  (with the `main.py charge-now` command that charges it, if the practitioner means it);
- clients to call: no-shows and client cancellations at short notice (within
  `mail.slot_freed_within` of the start, as for waitlist offers) seen in the last day;
- clients to talk to: the `practitioner_note` a policy left (repeated late cancellations or
  no-shows), once per client, while it is news: planned since the previous digest, or on an
  action still open;
- freed slots: cancellations in the last day of appointments still ahead;
- tomorrow: only the appointments that need something from the practitioner (a deposit or
  prepayment not paid, unpaid fees, repeated late cancellations or no-shows, a first session);
- with an inbox (slotguard/practitioner/digest_inbox.py): tomorrow's appointments whose client
  had the "I'll be there" link and did not answer ("call them?"), mail the inbox did not act on
  since the previous digest, and one line counting refused command emails (never news alone);
  the rows that need a decision carry one-tap command links (command_links.py);
- problems: calendar events that cannot be read, calendars that fail to sync;
- one line when fee marks are tags only and clients are invited to their appointments, so
  they can read the tags (slotguard/practitioner/mark_privacy.py); it never makes a digest worth sending.

A day with nothing to report is recorded as a cancelled digest action ("nothing to report")
and sends nothing. The digest is the one message that shows action ids, for `main.py waive`.

This module plans the digest and, through `slotguard_email_extras`, gives its email the
sections when it is composed; slotguard/practitioner/digest_sections.py gathers them, and
slotguard/mail/samples.py has a sample digest for previewing the template.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.model import Action, ActionKind, ActionState, ActionSubject, Appointment, action_id_for, new_action
from slotguard.mail.compose import EmailExtras, EmailView
from slotguard.mail.context import practitioner_context
from slotguard.mail.messages import DIGEST_TEMPLATE
from slotguard.policies.hookspecs import hookimpl
from slotguard.practitioner.command_links import add_digest_links
from slotguard.practitioner.digest_sections import POLICY, SECTIONS, digest_details
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.digest")

CALENDAR_ID = "practice"


def digest_action_id(day: str) -> str:
    return action_id_for(f"digest/{day}", POLICY, ActionKind.EMAIL.value, day)


def plan_digest(settings: Settings, ledger: Ledger, now: datetime) -> Action | None:
    """Store today's digest action once the local hour `mail.digest_hour` has come; return
    it when newly stored (None: disabled, too early, or already planned today)."""
    hour = settings.mail.digest_hour
    if hour < 0:
        return None
    local = now.astimezone(settings.zone)
    due = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if local < due:
        return None
    day = local.date().isoformat()
    action_id = digest_action_id(day)
    if ledger.action(action_id) is not None:
        return None
    details = digest_details(settings, ledger, now)
    empty = not any(details[section] for section in SECTIONS)
    return plan_practitioner_email(
        settings, ledger, now, action_id=action_id, policy=POLICY, what=f"daily digest for {day}", key=f"digest/{day}",
        template=DIGEST_TEMPLATE, context={"day": day}, empty=empty, logger=log, log_field=f"digest={day}",
    )


def plan_practitioner_email(
    settings: Settings, ledger: Ledger, now: datetime, *, action_id: str, policy: str, what: str, key: str,
    template: str, context: dict[str, Any], empty: bool, logger: logging.Logger, log_field: str,
) -> Action | None:
    """Store one email to the practitioner under `action_id` (the digest of a day, the report of
    a month); one with nothing to report is stored cancelled, so it is decided once and never
    sent. Returns the action when newly stored, None when it was already there."""
    action = new_action(
        ActionSubject(CALENDAR_ID, "", settings.practice.email, settings.practice.name),
        ActionKind.EMAIL, policy, what + ("; nothing to report" if empty else ""),
        key=key, action_id=action_id, now=now,
        state=ActionState.CANCELLED if empty else ActionState.PLANNED, template=template, context=context,
    )
    with ledger.transaction():
        added = ledger.add_action(action)
    if added:
        logger.info("planned action=%s kind=email %s state=%s", action.id, log_field, action.state.value)
    return action if added else None


def digest_context(settings: Settings, ledger: Ledger, now: datetime) -> dict[str, Any]:
    """What the `practitioner_digest` template gets: practice, client (the practitioner),
    details (the sections), payments."""
    return practitioner_context(settings, add_digest_links(settings, digest_details(settings, ledger, now), now))


@hookimpl
def slotguard_email_extras(action: Action, appointment: Appointment | None, view: EmailView, now: datetime) -> EmailExtras | None:
    """The digest's sections, read from the ledger as the email is composed (so they are
    current when it is sent), with the one-tap commands when there is an inbox
    (slotguard/practitioner/command_links.py); None for any other email."""
    if action.template != DIGEST_TEMPLATE or action.policy != POLICY:
        return None
    return EmailExtras(details=add_digest_links(view.settings, digest_details(view.settings, view.ledger, now), now))


__all__ = ["plan_digest", "digest_action_id", "digest_details", "digest_context", "slotguard_email_extras"]
