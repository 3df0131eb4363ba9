"""no_show: a fee when the practitioner marks the client as not having come.

The mark is a colour or a tag on the event (calendar.marks.no_show). Optionally `wait` sets
how long after the start the practitioner waits before a missing client counts as a no-show;
a mark set earlier is acted on only once that time has passed (and the review window
after it).

Emails: `no_show_followup` (sent with the fee, after the review window; it always offers a new
time through the booking link, and says whether the fee stood or was waived).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from slotguard.kit import ActionKind, Duration, Fee, FeeRule, HappeningKind, PolicyConfig, PolicyInfo, Proposal, hookimpl, reporting_email

NAME = "no_show"


class NoShowConfig(PolicyConfig):
    fee: FeeRule = Field(Fee.parse("100%"), description='Percent of the price ("100%") or a fixed amount ("600 NOK").', examples=["100%"])
    wait: Duration = Field(timedelta(0), description="How long after the start a client may still arrive; a no-show mark counts only after it.", examples=["15m"])


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="fee",
        config_model=NoShowConfig,
        summary="A fee when the client does not come.",
        emails=("no_show_followup",),
    )


@hookimpl
def slotguard_propose(happening, appointment, config, now):
    if happening.kind is not HappeningKind.NO_SHOW:
        return []
    # A mark set before the wait is over is acted on only once the wait is over.
    earliest = appointment.start + config.wait
    fee = config.fee.of(appointment.price)
    reason = f"no_show proposed {fee}: marked as not attended ({config.fee} of {appointment.price})"
    charge = Proposal(kind=ActionKind.CHARGE, policy=NAME, reason=reason, amount=fee, slot="fee", due=earliest if earliest > now else None)
    return [charge, reporting_email(charge, "no_show_followup", "follow up after the missed appointment and offer a new time", slot="followup")]


@hookimpl
def slotguard_terms(config, appointment):
    return {"fee": config.fee.of(appointment.price), "percent": config.fee.percent}
