"""The practitioner's one-tap commands in the emails to the practice (docs/inbox.md, "The
links in the emails"): "Waive", "Charge now", "Keep as is", "Mark paid" beside each item
that needs a decision about one fee.

With an inbox (`inbox.source` not "none"), each such row gets `commands`: a list of
{"command", "token"}, the token signed for that command on that action (`action_target`),
valid for `inbox.link_valid_for`; the details get `inbox_address`. The templates word the
subject ("Waive NOK 450.00 for Ana, 9 Dec") in the practitioner's language and build the
`mailto:` links (the `command_link` filter). Without an inbox nothing is added and the emails
are as they were. Which commands a row offers:

- fees and prepayments pending review: waive, charge now, keep as is; a deposit kept for a fee
  or as a credit: waive, keep as is (nothing to charge: it is paid);
- failed payments, receivables and fees being followed up: waive, mark paid;
- no fee planned because the mark came late: charge now;
- tomorrow's deposit or prepayment not paid: mark paid, waive;
- the `money_ahead_unpaid` email (one deposit or prepayment not paid) and the collections
  referral (`payment_referral`, every reminder sent): mark paid, waive.

The secret is read once per email.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.model import Action, Appointment
from slotguard.mail.client_links import inbox_on
from slotguard.mail.compose import EmailExtras, EmailView
from slotguard.mail.links import action_target, load_secret, secret_path, sign
from slotguard.policies.hookspecs import hookimpl

REVIEW = ("waive", "charge_now", "keep")
KEPT_DEPOSIT = ("waive", "keep")
OWED = ("waive", "mark_paid")
AHEAD = ("mark_paid", "waive")
LATE_MARK = ("charge_now",)
# Emails about one fee, other than the digest, and the details key naming the fee's action.
SINGLE_FEE_EMAILS = {"money_ahead_unpaid": "id", "payment_referral": "collects"}


def command_tokens(settings: Settings, secret: bytes, action_id: str, commands: Iterable[str], now: datetime) -> list[dict[str, str]]:
    """One {"command", "token"} per command on the action, valid for `inbox.link_valid_for`."""
    expires = now + settings.inbox.link_valid_for
    return [{"command": command, "token": sign(secret, command, action_target(action_id), expires)} for command in commands]


def _pending_commands(row: dict[str, Any]) -> tuple[str, ...]:
    return KEPT_DEPOSIT if row.get("kind") == "credit" else REVIEW


def add_digest_links(settings: Settings, details: dict[str, Any], now: datetime, secret: bytes | None = None) -> dict[str, Any]:
    """`details` (the digest's sections, slotguard/practitioner/digest_sections.py) with the
    commands added to each row that needs a decision; unchanged without an inbox."""
    if not inbox_on(settings):
        return details
    secret = secret if secret is not None else load_secret(secret_path(settings))

    def tokens(action_id: Any, commands: Iterable[str]) -> list[dict[str, str]]:
        return command_tokens(settings, secret, str(action_id), commands, now) if action_id else []

    details = dict(details)
    details["inbox_address"] = settings.inbox.address
    details["pending"] = [{**row, "commands": tokens(row.get("id"), _pending_commands(row))} for row in details.get("pending", [])]
    for section in ("payment_failed", "receivables", "collections"):
        details[section] = [{**row, "commands": tokens(row.get("id"), OWED)} for row in details.get(section, [])]
    details["not_charged"] = [
        {**row, "commands": tokens(row.get("id"), LATE_MARK if row.get("why") == "late_mark" else ())}
        for row in details.get("not_charged", [])
    ]
    details["tomorrow"] = [
        {**row, "deposit": {**row["deposit"], "commands": tokens(row["deposit"].get("id"), AHEAD)}} if row.get("deposit") else row
        for row in details.get("tomorrow", [])
    ]
    return details


@hookimpl
def slotguard_email_extras(action: Action, appointment: Appointment | None, view: EmailView, now: datetime) -> EmailExtras | None:
    """`commands` and `inbox_address` for an email to the practice about one fee (not the
    digest: slotguard/practitioner/digest.py adds its rows' own)."""
    key = SINGLE_FEE_EMAILS.get(str(action.template))
    if key is None or not inbox_on(view.settings):
        return None
    action_id = str(action.context.get(key) or "")
    if not action_id:
        return None
    secret = load_secret(secret_path(view.settings))
    return EmailExtras(details={
        "inbox_address": view.settings.inbox.address,
        "commands": command_tokens(view.settings, secret, action_id, AHEAD, now),
    })
