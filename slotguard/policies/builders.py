"""Proposals and texts that several policies build the same way.

`refund_notice`: the email that tells the client about a refund or a released hold;
`reporting_email`: an email that reports on a money proposal (sent once the money moved,
never if it is dropped); `local_text` and `ordinal` for the words of reasons and notes.
Pure. Policy authors import these from `slotguard.kit`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slotguard.domain.model import ActionKind, Proposal
from slotguard.policies.account import REFUND, money_json


def reporting_email(money: Proposal, template: str, reason: str, slot: str, context: Mapping[str, Any] | None = None) -> Proposal:
    """The email `template` that reports on the money proposal `money`: it is sent once that
    money is carried out, and not at all if it is dropped or waived. Same policy as `money`."""
    return Proposal(
        kind=ActionKind.EMAIL,
        policy=money.policy,
        reason=reason,
        template=template,
        slot=slot,
        reports_on=money.slot,
        context=dict(context or {}),
    )


def refund_notice(money: Proposal, why: str, **details: Any) -> Proposal:
    """The `refund_notice` email telling the client about a refund or a released hold; it
    reports on `money` (sent once that is carried out, and not at all if it is dropped)."""
    details = {"kind": money.kind.value, "purpose": money.context.get("purpose", REFUND), "amount": money_json(money.amount), "why": why, **details}
    return reporting_email(money, "refund_notice", f"tell the client: {why}", f"notice-{money.slot}", details)


def local_text(moment: datetime, appointment: Any, with_time: bool = True) -> str:
    """`moment` as the practitioner reads it, in the appointment's time zone: "2026-03-05 10:00"."""
    zone = ZoneInfo(appointment.timezone) if getattr(appointment, "timezone", "") else moment.tzinfo
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def ordinal(number: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th": for reasons and practitioner notes (English)."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"
