"""first_offense_grace: forgive the first `forgive` incidents per client within `period`.

"We'll let it go this time; next time the session is charged." The fee is waived (recorded as
a `waive` action: "no_show proposed 900.00 NOK ...; first_offense_grace waived it: first
incident in 365 days") and a `grace_warning` email quotes the policy back to the client, kindly,
instead of the usual fee notice. Incidents are counted as in slotguard.policies.loading.fee_incidents:
a fee forgiven by this policy counts (that is the point), one the practitioner waived does not.

Emails: `grace_warning`, with `details.policy` (the fee policy: "no_show", "late_cancel"),
`details.waived_amount` ({"minor", "currency"}), `details.incident` (1 for the first) and
`details.forgive`; it replaces the fee notice (`late_cancel_notice`, `no_show_followup`).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, PositiveInt

from slotguard.kit import (
    REPLACES_NOTICES,
    ActionKind,
    Money,
    PolicyConfig,
    PolicyInfo,
    PositiveDuration,
    Proposal,
    fee_incidents,
    hookimpl,
    money_json,
    ordinal,
)

NAME = "first_offense_grace"
WORDS = {1: "first", 2: "second", 3: "third"}


class FirstOffenseGraceConfig(PolicyConfig):
    forgive: PositiveInt = Field(1, description="How many incidents per client are forgiven within `period`.", examples=[1])
    period: PositiveDuration = Field(timedelta(days=365), description="How far back earlier incidents count.", examples=["365d"])


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="modifier",
        config_model=FirstOffenseGraceConfig,
        summary="Forgives a client's first late cancellation or no-show, with a kind warning that quotes the policy.",
        emails=("grace_warning",),
    )


@hookimpl
def slotguard_modify(proposal, appointment, history, account, config, now):
    earlier = fee_incidents(history, account, since=now - config.period, exclude_ref=appointment.ref)
    if len(earlier) >= config.forgive:
        return None
    number = len(earlier) + 1
    assert proposal.amount is not None
    waived = proposal.with_amount(
        Money.zero(proposal.amount.currency),
        f"{NAME} waived it: {WORDS.get(number, ordinal(number))} incident in {config.period.days} days",
    )
    warning = Proposal(
        kind=ActionKind.EMAIL,
        policy=NAME,
        reason="forgiven this time: tell the client kindly, quoting the policy",
        template="grace_warning",
        slot=f"grace-warning-{proposal.slot}",
        reports_on=proposal.slot,
        context={
            "policy": proposal.policy,
            "waived_amount": money_json(proposal.amount),
            "incident": number,
            "forgive": config.forgive,
            REPLACES_NOTICES: True,
        },
    )
    return [waived, warning]


@hookimpl
def slotguard_terms(config, appointment):
    return {"forgive": config.forgive, "period_days": config.period.days}
