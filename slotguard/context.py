"""What a client email template is given (the template contract; see docs/templates.md).

Internal ids and event titles never reach the client: the title may hold the
practitioner's private notes and tags, so emails name the service by its `label`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from slotguard.config import Settings
from slotguard.model import Action, ActionKind, ActionState, Appointment, Client
from slotguard.plugins import Policy


def _practice(settings: Settings) -> dict[str, Any]:
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
    return {
        "service": (service.label if service and service.label else ""),
        "start": appointment.start,
        "end": appointment.end,
        "timezone": appointment.timezone or settings.practice.timezone,
        "location": appointment.location if not appointment.location.startswith("https://") else "",
        "meeting_link": appointment.meeting_link,
        "is_online": bool(appointment.meeting_link),
        "price": appointment.price,
    }


def _fee(fee: Action | None) -> dict[str, Any] | None:
    if fee is None or fee.amount is None:
        return None
    state = fee.state.value
    if fee.kind is ActionKind.WAIVE or fee.state is ActionState.CANCELLED:
        state = "waived"
    return {
        "amount": fee.amount,
        "state": state,
        "payment_status": fee.context.get("payment_status", ""),
        "payment_link": fee.context.get("payment_link", ""),
    }


def terms(policies: list[Policy], appointment: Appointment) -> dict[str, Any]:
    found = {}
    for policy in policies:
        value = policy.call("slotguard_terms", config=policy.config, appointment=appointment)
        if value is not None:
            found[policy.name] = value
    return found


def email_context(
    settings: Settings, policies: list[Policy], action: Action, appointment: Appointment, fee: Action | None
) -> dict[str, Any]:
    """The variables every template gets: practice, client, appointment, fee, terms, details."""
    name = action.client_name or appointment.client.name
    return {
        "practice": _practice(settings),
        "client": {"name": name, "first_name": name.split()[0] if name else "", "email": action.client_email},
        "appointment": _appointment(settings, appointment),
        "fee": _fee(fee),
        "terms": terms(policies, appointment),
        "details": dict(action.context),
        "payments": {"provider": settings.payments.provider},
    }


def sample_context(settings: Settings, policies: list[Policy]) -> dict[str, Any]:
    """Realistic sample data for checking and previewing templates."""
    start = datetime(2026, 3, 4, 9, 0, tzinfo=timezone.utc).astimezone(settings.zone)
    default = settings.services["default"]
    appointment = Appointment(
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
    fee = {"amount": default.price.percent(50), "state": "pending_review", "payment_status": "", "payment_link": ""}
    return {
        "practice": _practice(settings),
        "client": {"name": "Ana Silva", "first_name": "Ana", "email": "ana@example.com"},
        "appointment": _appointment(settings, appointment),
        "fee": fee,
        "terms": terms(policies, appointment),
        "details": {"rescheduled": False, "offset_hours": 48, "notice_minutes": 300},
        "payments": {"provider": settings.payments.provider},
    }
