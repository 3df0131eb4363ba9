"""What the policies decided for one email, declared in one place: every key a policy may put
in an email's context for the client to read (through `slotguard_email_details` or a
settlement step), what it means, and the plain value templates read as `decided.NAME`.

Templates read `decided`, never guess at `details` keys: a policy that adds a detail declares
it here (and docs/templates.md lists the same table), so a key renamed in a plugin fails the
test that renders every policy's emails (tests/unit/mail/test_templates_decided.py) instead of
silently dropping a sentence.

Precedence, decided here once rather than in every template: a prepayment replaces the deposit
the same booking would need, and a deposit already paid by a rescheduling credit is not asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from slotguard.domain.money import Money

Kind = Literal["money", "count", "flag", "percent", "text"]


@dataclass(frozen=True)
class Detail:
    """One key of an email's context: its `kind` (how it is read) and what it `means`, in
    which `emails`."""

    key: str
    kind: Kind
    emails: tuple[str, ...]
    means: str


CONFIRMATION = ("booking_confirmation",)
NOTICES = ("late_cancel_notice", "no_show_followup")

DETAILS: tuple[Detail, ...] = (
    Detail("deposit", "money", CONFIRMATION, "the deposit this booking asks for (`deposit` policy)"),
    Detail("deposit_kind", "text", CONFIRMATION, '"charge" (taken at booking) or "hold" (reserved on the card before the session)'),
    Detail("deposit_paid_by_credit", "money", CONFIRMATION, "the deposit is already paid by the credit kept from a booking cancelled in good time (`reschedule_credit`)"),
    Detail("prepayment_required", "flag", CONFIRMATION, "this booking must be paid in advance (`repeat_offender_prepay`); replaces the deposit"),
    Detail("prepayment", "money", CONFIRMATION, "the amount asked in advance"),
    Detail("paid_ahead", "money", CONFIRMATION, "what the client has already paid ahead towards this session (`rolling_half_deposit`)"),
    Detail("package_credits_left", "count", CONFIRMATION, "sessions left in the client's prepaid package, this one included (`package_credits`)"),
    Detail("goodwill_discount", "percent", CONFIRMATION, "a discount on this session's price, because the practitioner cancelled an earlier one (`practitioner_cancel_refund`)"),
    Detail("package_credit", "flag", NOTICES, "one session of the prepaid package was used instead of a money fee (`package_credits`)"),
    Detail("credits_left", "count", NOTICES, "sessions left in the package after that"),
    Detail("second_chance", "flag", NOTICES, "a missed first meeting costs nothing this time (`prospect_second_chance`)"),
    Detail("invite_rebooking", "flag", NOTICES, "the email invites the client to book again"),
    Detail("written_off", "flag", NOTICES, "the fee was too small to ask for (`small_amount_writeoff`): the client is not asked to pay"),
)
BY_KEY = {detail.key: detail for detail in DETAILS}


def _read(detail: Detail, value: Any) -> Any:
    """`value` as its kind, or None when it is not one (a template then says nothing of it)."""
    if value is None:
        return None
    if detail.kind == "money":
        if isinstance(value, Money):
            return value
        if isinstance(value, Mapping) and isinstance(value.get("minor"), int) and value.get("currency"):
            return Money(int(value["minor"]), str(value["currency"]))
        return None
    if detail.kind == "count":
        return max(int(value), 0) if isinstance(value, int) and not isinstance(value, bool) else None
    if detail.kind == "flag":
        return bool(value)
    if detail.kind == "percent":
        try:
            number = Decimal(str(value).strip().rstrip("%").strip())
        except InvalidOperation:
            return None
        return int(number) if number == number.to_integral_value() else number
    return str(value)


def decided(context: Mapping[str, Any]) -> dict[str, Any]:
    """The declared details found in an action's `context`, each read as its kind; keys not
    present (or not readable) are absent. Applies the precedence above."""
    found = {}
    for key, value in context.items():
        detail = BY_KEY.get(key)
        if detail is not None and (read := _read(detail, value)) is not None:
            found[key] = read
    if found.get("prepayment_required") and "prepayment" in found:
        found.pop("deposit", None)
        found.pop("deposit_paid_by_credit", None)
    else:
        found.pop("prepayment_required", None)
        found.pop("prepayment", None)
    if "deposit_paid_by_credit" in found:
        found.pop("deposit", None)
    if "deposit" not in found:
        found.pop("deposit_kind", None)
    if not found.get("package_credit"):
        found.pop("credits_left", None)
    return found
