"""repeat_offender_prepay: after `incidents` late cancellations or no-shows within `period`,
the client's bookings need full prepayment.

An incident is an appointment for which a fee policy proposed a fee (charged, forgiven by a
modifier, paid from a deposit or a package credit, or written off); one the practitioner
waived does not count (see slotguard.policies.loading.fee_incidents).

- The fee for the incident that reaches the threshold says so in its reason ("...;
  repeat_offender_prepay: 3rd incident in 180 days: from now on bookings need full
  prepayment"), so the practitioner reads it in the ledger, the digest and the calendar note;
  the action also carries `practitioner_note`, with `incidents` and `window_days` (the counts, for
  the digest to word in each language).
- A booking by such a client: a prepayment charge (`prepay` of the price) with a
  `deposit_request` email (details.purpose = "prepayment") that carries the payment link,
  both at once. The prepayment is asked, never taken: it carries `CLIENT_PAYS`, so the
  provider only makes a payment link (no saved card is charged), and it needs no review
  window; a booking made at 08:00 for 14:00 gets its request at 08:00, not after the session.
  The practitioner can still waive it (the link is withdrawn). A booking that starts within
  `SHORT_NOTICE` gets `details.starts_soon`: the email says the client may pay at the start
  of the session if there is no time before. If the session comes near and it is still not
  paid, the practitioner is told (slotguard/features/money_ahead.py). The booking
  confirmation gets `details.prepayment_required` = true and `details.prepayment`. A deposit
  the same booking would have needed is dropped (the prepayment covers it).
- At and above `end_relationship_after` incidents, the reason and `practitioner_note` suggest
  ending the relationship, kindly.
- The prepayment is settled like a charged deposit: applied to the price when attended, paying
  the fee of a no-show or late cancellation (the rest refunded), refunded in full after a
  cancellation in time or by the practitioner. A waiver gives back what was kept of it for the
  fee (or all of it, unused), never what was applied to an attended session (planner).

Emails: `deposit_request`, `refund_notice`.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, PositiveInt, field_validator

from slotguard.kit import (
    CLIENT_PAYS,
    DEPOSIT,
    PREPAYMENT,
    ActionKind,
    Fee,
    FeeRule,
    Fund,
    HappeningKind,
    PolicyConfig,
    PolicyInfo,
    PositiveDuration,
    Proposal,
    derive,
    fee_incidents,
    hookimpl,
    money_json,
    ordinal,
    settle_funds,
)

NAME = "repeat_offender_prepay"
# A booking this close to its start: the request says the client may pay at the session.
SHORT_NOTICE = timedelta(hours=3)


class RepeatOffenderConfig(PolicyConfig):
    incidents: PositiveInt = Field(3, description="Incidents (late cancellations and no-shows with a fee) within `period` after which bookings need prepayment.", examples=[3])
    period: PositiveDuration = Field(timedelta(days=180), description="How far back incidents count.", examples=["180d"])
    prepay: FeeRule = Field(Fee.parse("100%"), description="How much of the price is asked before the session.", examples=["100%"])
    end_relationship_after: PositiveInt | None = Field(None, description="From this many incidents on, suggest to the practitioner to end the relationship (kindly); must be more than `incidents`.", examples=[5])

    @field_validator("end_relationship_after")
    @classmethod
    def _above_threshold(cls, value, info):
        incidents = info.data.get("incidents")
        if value is not None and incidents is not None and value <= incidents:
            raise ValueError(f"must be more than incidents ({incidents})")
        return value


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="fee",
        config_model=RepeatOffenderConfig,
        summary="After a number of incidents in a period, bookings need full prepayment; the practitioner is told.",
        emails=("deposit_request", "refund_notice"),
    )


def _count(history, account, config, now, exclude_ref=None) -> int:
    return len(fee_incidents(history, account, since=now - config.period, exclude_ref=exclude_ref))


def _note(count: int, email: str, config) -> tuple[str, bool]:
    days = config.period.days
    ending = config.end_relationship_after is not None and count >= config.end_relationship_after
    note = f"{email}: {count} late cancellations or no-shows in {days} days; bookings need full prepayment"
    if ending:
        note += "; consider ending the relationship, kindly"
    return note, ending


@hookimpl
def slotguard_modify(proposal, happening, appointment, history, account, config, now):
    """Mark the fee of the incident that reaches the threshold (or the ending count)."""
    if happening.kind not in (HappeningKind.NO_SHOW, HappeningKind.CANCELLED_BY_CLIENT):
        return None
    count = _count(history, account, config, now, exclude_ref=appointment.ref) + 1
    crossing = count == config.incidents
    ending = config.end_relationship_after is not None and count >= config.end_relationship_after
    if not (crossing or ending):
        return None
    note, _ = _note(count, appointment.client.email, config)
    text = f"{NAME}: {ordinal(count)} incident in {config.period.days} days: from now on bookings need full prepayment"
    if ending:
        text += "; consider ending the relationship, kindly"
    numbers = {"incidents": count, "window_days": config.period.days}  # for the digest, which words them per language
    return derive(proposal, because=text, context={"practitioner_note": note, "suggest_ending": ending, **numbers})


@hookimpl
def slotguard_propose(happening, appointment, history, account, config, now):
    if happening.kind is not HappeningKind.BOOKED or appointment.start <= now or appointment.is_cancelled:
        return []
    count = _count(history, account, config, now)
    if count < config.incidents:
        return []
    amount = config.prepay.of(appointment.price)
    note, ending = _note(count, appointment.client.email, config)
    reason = (f"{NAME}: {count} incidents in {config.period.days} days: prepayment of {amount} ({config.prepay} of {appointment.price}) "
              "asked before the session, through a payment link (no card is charged)")
    if ending:
        reason += "; consider ending the relationship, kindly"
    return [
        Proposal(
            kind=ActionKind.CHARGE,
            policy=NAME,
            reason=reason,
            amount=amount,
            slot="prepayment",
            context={"purpose": PREPAYMENT, CLIENT_PAYS: True, "practitioner_note": note, "suggest_ending": ending,
                     "incidents": count, "window_days": config.period.days},
        ),
        Proposal(
            kind=ActionKind.EMAIL,
            policy=NAME,
            reason="ask the client to pay the session in advance",
            template="deposit_request",
            slot="prepayment-request",
            reports_on="prepayment",
            context={"purpose": PREPAYMENT, "amount": money_json(amount),
                     "starts_soon": appointment.start - now <= SHORT_NOTICE},
        ),
    ]


@hookimpl
def slotguard_settle(proposals, happening, appointment, account):
    if happening.kind is HappeningKind.BOOKED:
        if not any(p.policy == NAME and p.context.get("purpose") == PREPAYMENT for p in proposals):
            return None
        # The prepayment covers the deposit this booking would otherwise need.
        deposits = {p.slot for p in proposals if p.context.get("purpose") == DEPOSIT and p.kind in (ActionKind.CHARGE, ActionKind.HOLD)}
        return [p for p in proposals if p.slot not in deposits and p.reports_on not in deposits]
    if happening.kind not in (
        HappeningKind.ATTENDED,
        HappeningKind.NO_SHOW,
        HappeningKind.CANCELLED_BY_CLIENT,
        HappeningKind.CANCELLED_BY_PRACTITIONER,
    ):
        return None
    used = account.used_up()
    funds = [
        Fund(entry, "prepayment")
        for entry in account.for_event(appointment.ref)
        if entry.policy == NAME and entry.purpose == PREPAYMENT and entry.live and entry.amount and entry.id not in used
    ]
    if not funds:
        return None
    return settle_funds(proposals, happening, funds, NAME)


@hookimpl
def slotguard_email_details(proposal, happening, appointment, history, account, config, now):
    if proposal.template != "booking_confirmation" or happening.kind is not HappeningKind.BOOKED:
        return None
    count = _count(history, account, config, now)
    if count < config.incidents:
        return None
    return {"prepayment_required": True, "prepayment": money_json(config.prepay.of(appointment.price)), "incidents": count}


@hookimpl
def slotguard_terms(config, appointment):
    return {"incidents": config.incidents, "period_days": config.period.days}
