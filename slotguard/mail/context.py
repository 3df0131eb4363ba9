"""What a client email template is given (the template contract; see docs/templates.md),
and the composition of one outgoing message for an email action.

Internal ids and event titles never reach the client: the title may hold the
practitioner's private notes and tags, so emails name the service by its `label`. The
practitioner's own digest is the one message that shows action ids (for `main.py waive`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any

from slotguard.config.schema import Settings
from slotguard.store.ledger import Ledger
from slotguard.mail.messages import (
    DIGEST_TEMPLATE,
    ICS_TEMPLATES,
    Attachment,
    Renderer,
    appointment_ics,
    appointment_uid,
    build_email,
    message_id_for,
)
from slotguard.domain.model import Action, ActionKind, ActionState, Appointment, Client
from slotguard.domain.money import Money
from slotguard.intake.normalize import LOCATION_LIMIT, NAME_LIMIT
from slotguard.policies.loading import Policy
from slotguard.intake.untrusted import https_link, one_line


def practice_context(settings: Settings) -> dict[str, Any]:
    practice = settings.practice
    return {
        "name": practice.name,
        "email": practice.email,
        "phone": practice.phone,
        "address": practice.address,
        "booking_link": practice.booking_link,
        "payment_instructions": practice.payment_instructions,
        "timezone": practice.timezone,
    }


def _appointment(settings: Settings, appointment: Appointment) -> dict[str, Any]:
    service = settings.services.get(appointment.service)
    zone = appointment.timezone or settings.practice.timezone
    # normalize.py folds calendar text and keeps only https:// links; this holds for
    # snapshots a ledger kept from before it did, too (what reaches a client is checked here).
    location = one_line(appointment.location, LOCATION_LIMIT)
    link = https_link(appointment.meeting_link)
    return {
        "service": (service.label if service and service.label else ""),
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


def _fee(fee: Action | None) -> dict[str, Any] | None:
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


def email_context(
    settings: Settings, policies: list[Policy], action: Action, appointment: Appointment, fee: Action | None
) -> dict[str, Any]:
    """The variables every client template gets: practice, client, appointment, fee, terms,
    details (the action's context), payments."""
    own_client = action.client_email.lower() == appointment.client.email.lower()
    # Someone else's appointment (a freed slot offered to the waitlist) never lends its name.
    name = one_line(action.client_name or (appointment.client.name if own_client else ""), NAME_LIMIT)
    return {
        "practice": practice_context(settings),
        "client": {"name": name, "first_name": name.split()[0] if name else "", "email": action.client_email},
        "appointment": _appointment(settings, appointment),
        "fee": _fee(fee),
        "terms": terms(policies, appointment),
        "details": dict(action.context),
        "payments": {"provider": settings.payments.provider},
    }


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


def compose_email(
    settings: Settings,
    policies: list[Policy],
    renderer: Renderer,
    ledger: Ledger,
    action: Action,
    now: datetime,
    provider: Any = None,
) -> EmailMessage:
    """The message an email action sends, in its recipient's language.

    With a card provider (Stripe), a booking confirmation to a client with no card on file
    carries a link to save one (a Checkout Session in setup mode), in the slot the template
    has for `details.payment_link`, unless the action already has its own payment link.

    Raises TemplateProblem (a template fails), ValueError (an unusable address, or the
    appointment is no longer in the ledger).
    """
    assert action.template
    attachments: list[Attachment] = []
    appointment: Appointment | None = None
    if action.template == DIGEST_TEMPLATE:
        from slotguard.practitioner.digest import digest_context

        context = digest_context(settings, ledger, now)
        to_name = settings.practice.name
    else:
        tracked = ledger.tracked(action.calendar_id, action.event_id)
        if tracked is None:
            raise ValueError(f"the appointment {action.event_ref} is no longer in the ledger")
        appointment = tracked.appointment
        fee = ledger.action(action.reports_on) if action.reports_on else None
        context = email_context(settings, policies, action, appointment, fee)
        to_name = context["client"]["name"]
        if provider is not None and action.template in ("booking_confirmation", "reminder") and not context["details"].get("payment_link"):
            # A card-setup link lasts 24 hours, so each reminder carries a fresh one while the
            # client still has no card on file (the confirmation's may have run out).
            from slotguard.payments.poll import card_setup_link_for

            link = card_setup_link_for(provider, settings, policies, action.client_email, to_name)
            if link:
                context["details"]["payment_link" if action.template == "booking_confirmation" else "card_link"] = link
        if action.template in ICS_TEMPLATES:
            attachments.append(appointment_attachment(settings, appointment, context, now))
        elif action.template == "payment_referral":  # the collections ladder's evidence pack
            from slotguard.practitioner.evidence import evidence_attachment

            attachments.append(evidence_attachment(settings, policies, renderer, ledger, action, now))
    rendered = renderer.render(action.template, context, recipient_locale(settings, action, appointment))
    return build_email(
        rendered,
        sender_name=settings.practice.name,
        sender_email=settings.sender,
        reply_to=settings.practice.email,
        to_name=to_name,
        to_email=action.client_email,
        message_id=message_id_for(action.id, settings.sender),
        date=now,
        attachments=attachments,
    )


# -- sample data ------------------------------------------------------------------------


def sample_appointment(settings: Settings) -> Appointment:
    start = datetime(2026, 3, 4, 9, 0, tzinfo=timezone.utc).astimezone(settings.zone)
    default = settings.services["default"]
    return Appointment(
        calendar_id="sample",
        event_id="sample",
        client=Client("ana@example.com", "Ana Silva"),
        start=start,
        end=start + default.duration,
        timezone=settings.practice.timezone,
        status="confirmed",
        price=default.price,
        service="default",
        title="sample",
        updated=start - timedelta(days=3),
        meeting_link="https://meet.example.com/abc-defg-hij",
    )


def sample_details(settings: Settings, template: str | None) -> dict[str, Any]:
    """What the planner or a policy puts in an action's context, per template (see
    docs/templates.md); with no template, everything at once."""
    price = settings.services["default"].price
    per_template: dict[str, dict[str, Any]] = {
        "booking_confirmation": {"rescheduled": False, "series_id": ""},
        "reminder": {"offset_hours": 48, "card_link": "https://pay.example.com/c/sample"},
        "late_cancel_notice": {"notice_minutes": 300},
        "grace_warning": {"policy": "late_cancel", "waived_amount": price.percent(50).as_json()},
        "deposit_request": {"amount": price.percent(50).as_json(), "payment_link": "https://pay.example.com/d/sample"},
        "payment_failed": {"payment_link": "https://pay.example.com/p/sample"},
        **sample_collection_details(settings),
    }
    if template == "practitioner_digest" or template is None:
        from slotguard.practitioner.digest import sample_digest_details

        per_template["practitioner_digest"] = sample_digest_details(settings)
    if template is not None:
        return dict(per_template.get(template, {}))
    merged: dict[str, Any] = {}
    for details in per_template.values():
        merged.update(details)
    return merged


def sample_collection_details(settings: Settings) -> dict[str, dict[str, Any]]:
    """What the collections ladder (slotguard/collections/ladder.py) puts in its emails."""
    price = settings.services["default"].price
    half, tenth = price.percent(50), price.percent(10)
    start = datetime(2026, 3, 4, 9, 0, tzinfo=timezone.utc)
    step = {"collects": "act_3d4e5f60718293041526", "fee_policy": "late_cancel", "balance": half.as_json(),
            "original": half.as_json(), "days_overdue": 14, "payment_link": "https://pay.example.com/p/sample"}
    plan = {"kind": "plan", "every_days": 30, "request": "act_4e5f6071829304152637", "payment_link": "https://pay.example.com/p/plan",
            "installments": [{"number": n, "amount": tenth.as_json(), "due": (start + timedelta(days=30 * n)).isoformat()} for n in (1, 2, 3)]}
    settlement = {"kind": "settlement", "amount": half.percent(80).as_json(), "forgiven": half.percent(20).as_json(), "discount": "20%",
                  "valid_until": (start + timedelta(days=44)).isoformat(), "request": "act_5f607182930415263748",
                  "payment_link": "https://pay.example.com/p/settle"}
    return {
        "payment_reminder_1": {**step, "days_overdue": 3},
        "payment_reminder_2": {**step, "retried": True, "offer": settlement},
        "payment_final_notice": {**step, "days_overdue": 30, "balance": price.percent(30).as_json(), "offer": plan},
        "payment_plan_installment": {"collects": step["collects"], "fee_policy": "late_cancel", "plan": 2, "installment": 2, "of": 3,
                                     "due_on": (start + timedelta(days=60)).isoformat()},
        "payment_receipt": {"collects": step["collects"], "fee_policy": "no_show", "paid_total": half.percent(80).as_json(),
                            "original": half.as_json(), "written_off": half.percent(20).as_json(),
                            "payments": [{"amount": half.percent(40).as_json(), "at": (start + timedelta(days=40)).isoformat()},
                                         {"amount": half.percent(40).as_json(), "at": (start + timedelta(days=70)).isoformat()}]},
        "payment_referral": {**step, "days_overdue": 45, "cost": half.percent(30).as_json(), "recovery": half.percent(70).as_json(),
                             "collection_cost": "30%", "debtor": {"email": "eva@example.com", "name": "Eva Lund"}},
    }


def sample_context(settings: Settings, policies: list[Policy], template: str | None = None) -> dict[str, Any]:
    """Realistic sample data for checking and previewing templates: the context `template`
    gets (with no template, one context every template can render from)."""
    appointment = sample_appointment(settings)
    default = settings.services["default"]
    fee = {
        "amount": default.price.percent(50),
        "state": "pending_review",
        "kind": "charge",
        "policy": "late_cancel",
        "executed_at": appointment.start + timedelta(hours=14),
        "payment_status": "",
        "payment_link": "",
        "refunded_before": None,
        "refunded_total": None,
    }
    if template == "refund_notice":
        fee = {**fee, "kind": "refund", "state": "done", "payment_status": "paid"}
    elif template == "deposit_request":
        fee = {**fee, "policy": "deposit"}
    client = {"name": "Ana Silva", "first_name": "Ana", "email": "ana@example.com"}
    if template == "slot_freed":
        client = {"name": "", "first_name": "", "email": "bo@example.com"}
    return {
        "practice": practice_context(settings),
        "client": client,
        "appointment": _appointment(settings, appointment),
        "fee": fee if template not in ("booking_confirmation", "reminder", "slot_freed") else None,
        "terms": terms(policies, appointment),
        "details": sample_details(settings, template),
        "payments": {"provider": settings.payments.provider},
    }
