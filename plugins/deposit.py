"""deposit: part of the price taken (or held on the card) at booking, to hold the slot.

- At booking (an appointment still ahead): a `charge` or a `hold` of `amount` (percent of the
  price or a fixed amount) with a `deposit_request` email reporting on it (it carries the
  payment link when the card could not be used). A hold is placed no earlier than
  `hold_before` the start: card holds lapse (Visa's, placed by the merchant, after 4 days
  18 hours), and a `hold_before` that leaves no room for the capture (after the end,
  `settle_after_end`, the review window and quiet hours) is a config error. A hold that would still lapse
  first (the appointment moved later) is placed again in time (slotguard/planning/holds.py).
- Attended: the deposit pays part of the session price (a hold is captured; a charged deposit
  is recorded as applied).
- No-show or late cancellation with a fee: the fee is paid from the deposit first (the hold is
  captured for it, or the charged deposit kept for it), only the rest is charged, and what the
  fee does not need is given back. The kept deposit waits in the review window like any fee.
- Cancelled in time (no fee, or the fee was waived), or cancelled by the practitioner: the
  deposit is given back (refund or release) with a `refund_notice`.
- A moved appointment keeps its deposit. A waiver gives it back, kept for a fee or not, and
  `main.py waive` on the kept deposit does too (slotguard/planning/waivers.py: `waive_slot`,
  `waive_by_hand`); taking a no-show or late-cancel mark off leaves a deposit the fee only kept
  in review with the appointment, to be applied when the client came.

Emails: `deposit_request`, `refund_notice`; the booking confirmation gets
`details.deposit` ({"minor", "currency"}) and `details.deposit_kind`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from slotguard.kit import (
    DEPOSIT,
    HOLD_BEFORE,
    HOLD_VALIDITY,
    RENEW_MARGIN,
    ActionKind,
    Fee,
    FeeRule,
    Fund,
    HappeningKind,
    PolicyConfig,
    PolicyInfo,
    PositiveDuration,
    Proposal,
    format_duration,
    hookimpl,
    money_json,
    settle_funds,
)

NAME = "deposit"
TAKERS = ("deposit", "reschedule_credit")  # policies whose deposits this one settles


class DepositConfig(PolicyConfig):
    amount: FeeRule = Field(Fee.parse("50%"), description='The deposit: percent of the price ("50%") or a fixed amount ("300 NOK"); never more than the price.', examples=["30%"])
    kind: Literal["charge", "hold"] = Field("charge", description='"charge" takes the money at booking; "hold" reserves it on the card (Stripe) and captures it only if it is kept.', examples=["hold"])
    hold_before: PositiveDuration = Field(
        timedelta(days=3),
        description="hold: place the hold no earlier than this before the start. A hold lapses after 4d18h (Visa, placed by the merchant), and must last until it is captured: this, the longest service, calendar.marks.settle_after_end, payments.review_window, the length of mail.quiet_hours plus 1h, and 6h to spare must fit in 4d18h.",
        examples=["2d"],
    )
    services: list[str] = Field(default_factory=list, description="Only bookings of these services (names under [services]); empty means every booking.", examples=[["default"]])
    new_clients_only: bool = Field(False, description="Only clients who have not attended a session yet.", examples=[True])


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="fee",
        config_model=DepositConfig,
        summary="A deposit charged or held at booking: applied to the price when attended, kept for a no-show or late-cancellation fee, given back otherwise.",
        emails=("deposit_request", "refund_notice"),
        conflicts=("rolling_half_deposit",),
    )


@hookimpl
def slotguard_check_config(config, settings):
    problems = [
        f"services.{index}: no service named {name!r}; services: {', '.join(sorted(settings.services))}"
        for index, name in enumerate(config.services)
        if name not in settings.services
    ]
    if config.kind == "hold":
        problems += _hold_window_problems(config, settings)
    return problems


def _hold_window_problems(config, settings) -> list[str]:
    """A hold placed `hold_before` the start must still be valid when it is captured."""
    longest = max(service.duration for service in settings.services.values())
    settle, review = settings.calendar.marks.settle_after_end, settings.payments.review_window
    night = settings.mail.quiet.longest if settings.mail.quiet is not None else timedelta(0)  # a capture waits for the morning
    total = config.hold_before + longest + settle + review + night + RENEW_MARGIN
    if total <= HOLD_VALIDITY:
        return []
    room = HOLD_VALIDITY - (total - config.hold_before)
    advice = (f'use hold_before = "{format_duration(room)}" or less' if room > timedelta(0)
              else 'shorten payments.review_window, or take the deposit with kind = "charge"')
    return [
        f"hold_before: {format_duration(config.hold_before)} + the longest service ({format_duration(longest)}) + "
        f"calendar.marks.settle_after_end ({format_duration(settle)}) + payments.review_window ({format_duration(review)}) + "
        f"the longest wait of mail.quiet_hours ({format_duration(night)}) + "
        f"{format_duration(RENEW_MARGIN)} to spare is {format_duration(total)}, longer than a card hold lasts "
        f"({format_duration(HOLD_VALIDITY)}: Visa, placed by the merchant), so the hold could lapse before it is captured; {advice}"
    ]


def wanted(appointment, history, config, now) -> bool:
    """True when this booking needs a deposit."""
    if appointment.start <= now or appointment.is_cancelled:
        return False
    if config.services and appointment.service not in config.services:
        return False
    if config.new_clients_only and history is not None and history.attended > 0:
        return False
    return True


@hookimpl
def slotguard_propose(happening, appointment, history, account, config, now):
    if happening.kind is HappeningKind.BOOKED:
        if not wanted(appointment, history, config, now) or account.open_deposits(appointment.ref):
            return []
        amount = config.amount.of(appointment.price)
        due = max(now, appointment.start - config.hold_before) if config.kind == "hold" else None
        verb = "held on the card" if config.kind == "hold" else "asked"
        placed = {HOLD_BEFORE: int(config.hold_before.total_seconds())} if config.kind == "hold" else {}
        return [
            Proposal(
                kind=ActionKind.HOLD if config.kind == "hold" else ActionKind.CHARGE,
                policy=NAME,
                reason=f"deposit {verb}: {amount} ({config.amount} of {appointment.price}) to hold the slot",
                amount=amount,
                slot="deposit",
                due=due if due and due > now else None,
                context={"purpose": DEPOSIT, "deposit_kind": config.kind, **placed},
            ),
            Proposal(
                kind=ActionKind.EMAIL,
                policy=NAME,
                reason="ask the client for the deposit",
                template="deposit_request",
                slot="request",
                reports_on="deposit",
                context={"purpose": DEPOSIT, "deposit_kind": config.kind, "amount": money_json(amount)},
            ),
        ]
    if happening.kind is HappeningKind.RESCHEDULED and config.kind == "hold":
        # A hold not placed yet follows the appointment to its new time.
        proposals = []
        for entry in account.open_deposits(appointment.ref):
            if entry.kind is ActionKind.HOLD and entry.is_open and appointment.start > now:
                due = max(now, appointment.start - config.hold_before)
                proposals.append(
                    Proposal(
                        kind=ActionKind.HOLD,
                        policy=NAME,
                        reason=f"deposit: the {entry.amount} hold moves with the appointment",
                        amount=entry.amount,
                        slot="deposit",
                        due=due if due > now else None,
                        context={"purpose": DEPOSIT, "deposit_kind": "hold", "supersedes": [entry.id],
                                 HOLD_BEFORE: int(config.hold_before.total_seconds())},
                    )
                )
        return proposals
    return []


@hookimpl
def slotguard_settle(proposals, happening, appointment, account):
    if happening.kind not in (
        HappeningKind.ATTENDED,
        HappeningKind.NO_SHOW,
        HappeningKind.CANCELLED_BY_CLIENT,
        HappeningKind.CANCELLED_BY_PRACTITIONER,
    ):
        return None
    funds = [Fund(entry, "deposit") for entry in account.open_deposits(appointment.ref) if entry.policy in TAKERS and entry.amount]
    if not funds:
        return None
    return settle_funds(proposals, happening, funds, NAME)


@hookimpl
def slotguard_email_details(proposal, happening, appointment, history, config, now):
    if proposal.template != "booking_confirmation" or not wanted(appointment, history, config, now):
        return None
    return {"deposit": money_json(config.amount.of(appointment.price)), "deposit_kind": config.kind}


@hookimpl
def slotguard_terms(config, appointment):
    return {"amount": config.amount.of(appointment.price), "percent": config.amount.percent, "kind": config.kind}

