"""What an email template is given (the template contract; see docs/templates.md): the
practice, the client, the appointment, the fee an email reports on, the policies' terms.
Plain data from settings and ledger records; nothing here reads the ledger or calls out.

Internal ids and event titles never reach the client: the title may hold the
practitioner's private notes and tags, so emails name the service by its `label`. The
practitioner's own digest is the one message that shows action ids (for `main.py waive`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.config.localized import localized_text
from slotguard.config.schema import Settings
from slotguard.domain.model import Action, ActionKind, ActionState, Appointment
from slotguard.domain.money import Money
from slotguard.domain.untrusted import https_link, one_line
from slotguard.intake.normalize import LOCATION_LIMIT, NAME_LIMIT
from slotguard.mail.decided import decided
from slotguard.mail.messages import Attachment, appointment_ics, appointment_uid
from slotguard.policies.info import Policy


def practice_context(settings: Settings, locale: str = "") -> dict[str, Any]:
    """The practice as a template reads it, its payment instructions in `locale` (the
    language the email is written in; default the practice's)."""
    practice = settings.practice
    return {
        "name": practice.name,
        "email": practice.email,
        "phone": practice.phone,
        "address": practice.address,
        "booking_link": practice.booking_link,
        "payment_instructions": localized_text(practice.payment_instructions, locale or practice.locale, practice.locale),
        "timezone": practice.timezone,
    }


def service_label(settings: Settings, name: str, locale: str = "") -> str:
    """The label of service `name` in `locale` (default the practice's), or "" when it has none."""
    service = settings.services.get(name)
    if service is None:
        return ""
    return localized_text(service.label, locale or settings.practice.locale, settings.practice.locale)


def appointment_details(settings: Settings, appointment: Appointment, locale: str = "") -> dict[str, Any]:
    """The appointment as a client template reads it; the service's label in `locale`."""
    zone = appointment.timezone or settings.practice.timezone
    # normalize.py folds calendar text and keeps only https:// links; this holds for
    # snapshots a ledger kept from before it did, too (what reaches a client is checked here).
    location = one_line(appointment.location, LOCATION_LIMIT)
    link = https_link(appointment.meeting_link)
    return {
        "service": service_label(settings, appointment.service, locale),
        "start": appointment.start,
        "end": appointment.end,
        "timezone": zone,
        "practice_timezone": settings.practice.timezone,
        "other_timezone": settings.practice.timezone if zone != settings.practice.timezone else "",
        "minutes": int((appointment.end - appointment.start).total_seconds() // 60),
        "location": location if not location.startswith("https://") else "",
        "meeting_link": link,
        "is_online": bool(link),
        "price": appointment.price,
    }


def fee_details(fee: Action | None) -> dict[str, Any] | None:
    if fee is None or fee.amount is None:
        return None
    state = fee.state.value
    if fee.kind in (ActionKind.WAIVE, ActionKind.WRITEOFF) or fee.state is ActionState.CANCELLED:
        # A written-off fee is not chased: the client reads that there is no fee.
        state = "waived"
    # A refund that gave back only what was left after a refund made in the dashboard.
    before = int(fee.context.get("refunded_before_minor") or 0) if fee.kind is ActionKind.REFUND else 0
    return {
        "amount": fee.amount,
        "state": state,
        "kind": fee.kind.value,
        "policy": fee.policy,
        "executed_at": fee.executed_at,
        "payment_status": fee.context.get("payment_status", ""),
        "payment_link": fee.context.get("payment_link", ""),
        "refunded_before": Money(before, fee.amount.currency) if before else None,
        "refunded_total": Money(before + fee.amount.minor, fee.amount.currency) if before else None,
    }


def terms(policies: list[Policy], appointment: Appointment) -> dict[str, Any]:
    """What each policy says of its terms for this appointment, by policy name; none for an
    event the client organised (calendar.client_organised): no fee can arise from it."""
    if appointment.client_organised:
        return {}
    found = {}
    for policy in policies:
        value = policy.call("slotguard_terms", config=policy.config, appointment=appointment)
        if value is not None:
            found[policy.name] = value
    return found


def recipient_locale(settings: Settings, action: Action, appointment: Appointment | None) -> str:
    """The language of one message: the event's `lang:` line (only for that event's own
    client: a waitlist offer about someone else's slot is not in their language), else
    `mail.client_locales`, else the practice's locale."""
    if appointment is not None and appointment.locale and action.client_email.lower() == appointment.client.email.lower():
        return appointment.locale
    return settings.mail.client_locales.get(action.client_email.lower()) or settings.practice.locale


def client_name(action: Action, appointment: Appointment) -> str:
    """The name an email to `action.client_email` greets: the action's, else the appointment's
    client when the email is to them. Someone else's appointment (a freed slot offered to the
    waitlist) never lends its name."""
    own_client = action.client_email.lower() == appointment.client.email.lower()
    return one_line(action.client_name or (appointment.client.name if own_client else ""), NAME_LIMIT)


def email_context(
    settings: Settings, policies: list[Policy], action: Action, appointment: Appointment, fee: Action | None, locale: str = ""
) -> dict[str, Any]:
    """The variables every client template gets: practice, client, appointment, fee, terms,
    details (the action's context), decided (what the policies decided, as declared in
    slotguard/mail/decided.py), payments. The practitioner's own words (service label,
    payment instructions) are in `locale`, the language the email is rendered in."""
    name = client_name(action, appointment)
    return {
        "practice": practice_context(settings, locale),
        "client": {"name": name, "first_name": name.split()[0] if name else "", "email": action.client_email},
        "appointment": appointment_details(settings, appointment, locale),
        "fee": fee_details(fee),
        "terms": terms(policies, appointment),
        "details": dict(action.context),
        "decided": decided(action.context),
        "payments": payments_context(settings),
    }


def payments_context(settings: Settings) -> dict[str, Any]:
    """What a client template knows of payments: the provider and how long a fee waits for
    the practitioner's review before it is charged (whole hours)."""
    return {"provider": settings.payments.provider,
            "review_hours": int(settings.payments.review_window.total_seconds() // 3600)}


def appointment_attachment(settings: Settings, appointment: Appointment, context: dict[str, Any], now: datetime) -> Attachment:
    """The .ics file for an appointment, named by its service label, never by its title."""
    details = context["appointment"]
    label = details["service"] or settings.practice.name
    summary = label if label == settings.practice.name else f"{label} – {settings.practice.name}"
    practice = settings.practice
    link = details["meeting_link"]
    place = link or details["location"] or practice.address
    description = "\n".join(part for part in (link, practice.name, practice.phone, practice.email) if part)
    return appointment_ics(
        uid=appointment_uid(appointment.calendar_id, appointment.event_id, settings.sender),
        summary=summary,
        start=appointment.start,
        end=appointment.end,
        stamp=now,
        location=place,
        description=description,
        url=link,
    )


def practitioner_context(settings: Settings, details: dict[str, Any], locale: str = "") -> dict[str, Any]:
    """The variables a template to the practice itself gets (the daily digest): practice,
    client (the practitioner), details, payments."""
    name = settings.practice.name
    return {
        "practice": practice_context(settings, locale),
        "client": {"name": name, "first_name": name.split()[0] if name else "", "email": settings.practice.email},
        "details": details,
        "payments": {"provider": settings.payments.provider},
    }
