"""emergency_waiver: real emergencies and mistaken bookings cost nothing, and the ledger says why.

The engine already has the mechanism: a waive mark on the event (calendar.marks.waive: by
default the tags #waive, #emergency and #mistake) cancels a fee pending review, and refunds a
fee already charged (or cancels the receivable); `main.py waive ID --reason ...` does the same
from the command line. This policy names the claims:

- each claim is a tag and a reason ("#mistake": the client says the booking was a mistake or
  a technical error: credit the fee and move on). Each tag must also be a waive mark, so that
  adding it to the event later waives the fee (checked at start-up);
- when the practitioner adds a claim tag, the waived fee's reason and the refund say which
  claim it was ("waived: #mistake: booked by mistake or a technical error; credited");
- when a claim tag is already on the event when a fee is proposed, the fee is waived at once
  ("emergency_waiver waived it: #emergency: ...") instead of waiting in review.

Emails: none of its own; a refund after a waiver sends `refund_notice`, whose `details.why`
is the claim's reason.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from slotguard.kit import Money, PolicyConfig, PolicyInfo, hookimpl

NAME = "emergency_waiver"


class Claim(PolicyConfig):
    tag: str = Field(description="The tag the practitioner writes in the event title; it must also be a waive mark.", examples=["#mistake"])
    reason: str = Field(description="Why such a fee is waived, in the practitioner's words (kept in the ledger and shown in the refund notice).", examples=["the client booked by mistake or a technical error: credited"])

    @field_validator("tag")
    @classmethod
    def _tag(cls, tag: str) -> str:
        tag = tag.strip()
        if not tag or " " in tag:
            raise ValueError('write one word, like "#mistake"')
        return tag


class EmergencyWaiverConfig(PolicyConfig):
    claims: list[Claim] = Field(
        default_factory=lambda: [
            Claim(tag="#emergency", reason="a real emergency (illness, family crisis)"),
            Claim(tag="#mistake", reason="the client booked by mistake or a technical error: credited"),
        ],
        description="The claims that waive a fee: a tag and the reason recorded for it.",
        examples=[[{"tag": "#emergency", "reason": "a real emergency"}, {"tag": "#mistake", "reason": "booked by mistake: credited"}]],
    )


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="modifier",
        config_model=EmergencyWaiverConfig,
        summary="Emergencies and mistaken bookings are waived (or refunded) by a tag on the event, with the claim named in the ledger.",
    )


@hookimpl
def slotguard_check_config(config, settings):
    marks = [tag.lower() for tag in settings.calendar.marks.waive.tags]
    return [
        f"claims.{index}.tag: {claim.tag!r} is not a waive mark; add it to calendar.marks.waive.tags "
        f"(now {settings.calendar.marks.waive.tags}) so that adding it to an event later waives the fee"
        for index, claim in enumerate(config.claims)
        if claim.tag.lower() not in marks
    ]


@hookimpl
def slotguard_title_words(config):
    return [claim.tag for claim in config.claims]


def claim_on(appointment, config) -> str | None:
    """"#tag: reason" of the first claim whose tag is in the event title, or None."""
    title = appointment.title.lower()
    for claim in config.claims:
        if re.search(r"(?<![\w#])" + re.escape(claim.tag.lower()) + r"(?!\w)", title):
            return f"{claim.tag}: {claim.reason}"
    return None


@hookimpl
def slotguard_waiver_reason(appointment, config):
    return claim_on(appointment, config)


@hookimpl
def slotguard_modify(proposal, appointment, config):
    claim = claim_on(appointment, config)
    if claim is None:
        return None
    return proposal.with_amount(Money.zero(proposal.amount.currency), f"{NAME} waived it: {claim}")
