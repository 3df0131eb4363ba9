"""package_credits: a client with a prepaid package of sessions forfeits one session credit
instead of paying a money fee.

The package is configured per client (`packages`: email, sessions, since). The balance comes
from the history: the package size, minus the sessions attended since `since`, minus the
credits already forfeited. While the balance is above zero, a no-show or late-cancellation fee
(after the modifiers: a forgiven fee costs nothing) becomes a `credit` record with no money:
"one package session forfeited instead". When the package is used up, the usual money fee
applies.

Emails: none of its own; the fee notice reports on the credit (it carries no amount, so the
email mentions no fee) and gets `details.package_credit` = true and
`details.credits_left`; the booking confirmation gets `details.package_credits_left`.
"""

from __future__ import annotations

from pydantic import AwareDatetime, Field, PositiveInt, field_validator

from slotguard.kit import PACKAGE_CREDIT, ActionKind, HappeningKind, PolicyConfig, PolicyInfo, derive, hookimpl, is_unpaid_fee, money_json

NAME = "package_credits"


class Package(PolicyConfig):
    email: str = Field(description="The client's email address.", examples=["ana@example.com"])
    sessions: PositiveInt = Field(description="Sessions in the package.", examples=[10])
    since: AwareDatetime = Field(description="When the package was bought: sessions from then on use it.", examples=["2026-01-05T00:00:00+01:00"])

    @field_validator("email")
    @classmethod
    def _lower(cls, email: str) -> str:
        return email.strip().lower()


class PackageCreditsConfig(PolicyConfig):
    packages: list[Package] = Field(default_factory=list, description="Clients with a prepaid package.", examples=[[{"email": "ana@example.com", "sessions": 10, "since": "2026-01-05T00:00:00+01:00"}]])


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="fee",
        config_model=PackageCreditsConfig,
        summary="Clients with a prepaid package forfeit one session credit instead of a money fee.",
    )


def package_of(email: str, config) -> Package | None:
    """The client's latest package, if any."""
    found = [package for package in config.packages if package.email == email.lower()]
    return max(found, key=lambda package: package.since) if found else None


def balance(package: Package, history, account, exclude_ref: str | None = None) -> int:
    """Sessions left: the package, minus sessions attended and credits forfeited since it was bought."""
    attended = sum(
        1 for item in history.outcomes if item.kind is HappeningKind.ATTENDED and item.start >= package.since and item.event_ref != exclude_ref
    )
    forfeited = sum(
        1
        for entry in account.entries
        if entry.purpose == PACKAGE_CREDIT and entry.live
        and entry.appointment_start is not None and entry.appointment_start >= package.since and entry.event_ref != exclude_ref
    )
    return package.sessions - attended - forfeited


@hookimpl
def slotguard_settle(proposals, happening, appointment, history, account, config):
    if happening.kind not in (HappeningKind.NO_SHOW, HappeningKind.CANCELLED_BY_CLIENT):
        return None
    package = package_of(appointment.client.email, config)
    if package is None or appointment.start < package.since:
        return None
    left = balance(package, history, account, exclude_ref=appointment.ref)
    if left <= 0:
        return None
    result = list(proposals)
    fee = next((p for p in result if is_unpaid_fee(p)), None)
    if fee is None:
        return None
    credit = derive(
        fee,
        kind=ActionKind.CREDIT,
        amount=None,
        because=f"{NAME}: one package session forfeited instead ({left - 1} of {package.sessions} left)",
        context={"purpose": PACKAGE_CREDIT, "instead_of": money_json(fee.amount), "credits_left": left - 1},
    )
    result[result.index(fee)] = credit
    return [
        derive(p, context={"package_credit": True, "credits_left": left - 1}) if p.kind is ActionKind.EMAIL and p.reports_on == fee.slot else p
        for p in result
    ]


@hookimpl
def slotguard_email_details(proposal, appointment, history, account, config):
    if proposal.template != "booking_confirmation":
        return None
    package = package_of(appointment.client.email, config)
    if package is None:
        return None
    return {"package_credits_left": max(balance(package, history, account), 0)}
