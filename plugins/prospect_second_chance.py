"""prospect_second_chance: a new client who missed a first meeting gets no fee and an
invitation to book again.

A first meeting is an appointment of one of `services`, or whose title has one of
`title_words`. A new client has attended no session and has no earlier incident. Their fee
for missing it (no-show or late cancellation) is waived ("prospect_second_chance waived it: a
new client missed a first meeting; invited to book again").

Emails: none of its own; the fee notice (`no_show_followup`, `late_cancel_notice`) gets
`details.second_chance` = true and `details.invite_rebooking` = true, so it invites them to book again.
"""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from slotguard.kit import HappeningKind, Money, PolicyConfig, PolicyInfo, fee_incidents, hookimpl

NAME = "prospect_second_chance"
NOTICES = ("no_show_followup", "late_cancel_notice")


class ProspectSecondChanceConfig(PolicyConfig):
    services: list[str] = Field(default_factory=list, description="Services (names under [services]) that are first meetings.", examples=[["intro"]])
    title_words: list[str] = Field(
        default_factory=lambda: ["discovery", "intro", "introductory", "first meeting"],
        description="Words or phrases in the event title that make it a first meeting.",
        examples=[["discovery", "first meeting"]],
    )

    @model_validator(mode="after")
    def _something(self):
        if not self.services and not any(word.strip() for word in self.title_words):
            raise ValueError("give services or title_words, or the policy never applies")
        return self


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="modifier",
        config_model=ProspectSecondChanceConfig,
        summary="A new client who missed a first meeting or discovery call pays nothing and is invited to book again.",
    )


@hookimpl
def slotguard_check_config(config, settings):
    return [
        f"services.{index}: no service named {name!r}; services: {', '.join(sorted(settings.services))}"
        for index, name in enumerate(config.services)
        if name not in settings.services
    ]


@hookimpl
def slotguard_title_words(config):
    return [word for word in config.title_words if word.strip()]


def is_first_meeting(appointment, config) -> bool:
    if appointment.service in config.services:
        return True
    title = appointment.title.lower()
    return any(re.search(r"(?<!\w)" + re.escape(word.strip().lower()) + r"(?!\w)", title) for word in config.title_words if word.strip())


def second_chance(happening, appointment, history, account, config) -> bool:
    if happening.kind not in (HappeningKind.NO_SHOW, HappeningKind.CANCELLED_BY_CLIENT):
        return False
    if not is_first_meeting(appointment, config):
        return False
    new_client = history.attended == 0 and not fee_incidents(history, account, exclude_ref=appointment.ref)
    return new_client


@hookimpl
def slotguard_modify(proposal, happening, appointment, history, account, config):
    if not second_chance(happening, appointment, history, account, config):
        return None
    return proposal.with_amount(
        Money.zero(proposal.amount.currency),
        f"{NAME} waived it: a new client missed a first meeting; invited to book again",
    )


@hookimpl
def slotguard_email_details(proposal, happening, appointment, history, account, config):
    if proposal.template not in NOTICES or not second_chance(happening, appointment, history, account, config):
        return None
    return {"second_chance": True, "invite_rebooking": True}
