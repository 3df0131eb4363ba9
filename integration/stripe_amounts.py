"""Stripe's rules for amounts: which fees can be sent to Stripe at all, and in what units.

Money already keeps amounts as integer minor units with the ISO exponent from
slotguard.domain.money (JPY 0 decimals, KWD 3, NOK 2), which is also what Stripe's API expects, so
no conversion is done here (no `* 100` anywhere). What Stripe adds:

- a minimum charge per currency (Stripe's documented table: docs.stripe.com/currencies,
  "Minimum and maximum charge amounts"); a currency missing from the table still has a
  minimum equivalent to USD 0.50 in the account's settlement currency, which only Stripe can
  check, so Stripe's own `amount_too_small` error is also mapped to "not attempted";
- a maximum of 99,999,999 minor units (eight digits);
- three-decimal currencies (BHD, JOD, KWD, OMR, TND) must end in 0 because card networks
  settle them with two decimals.
"""

from __future__ import annotations

from slotguard.domain.money import Money, exponent

# Minimum charge in minor units, per Stripe's table. Zero-decimal JPY is in yen.
MINIMUM_CHARGE_MINOR: dict[str, int] = {
    "USD": 50,
    "AED": 200,
    "AUD": 50,
    "BGN": 100,
    "BRL": 50,
    "CAD": 50,
    "CHF": 50,
    "CZK": 1500,
    "DKK": 250,
    "EUR": 50,
    "GBP": 30,
    "HKD": 400,
    "HUF": 17500,
    "INR": 50,
    "JPY": 50,
    "MXN": 1000,
    "MYR": 200,
    "NOK": 300,
    "NZD": 50,
    "PLN": 200,
    "RON": 200,
    "SEK": 300,
    "SGD": 50,
    "THB": 1000,
}

MAXIMUM_CHARGE_MINOR = 99_999_999


def stripe_currency(amount: Money) -> str:
    """The currency code as Stripe wants it: lower case ("nok")."""
    return amount.currency.lower()


def minimum_charge(currency: str) -> Money | None:
    """Stripe's documented minimum charge for `currency`, or None when the table has none."""
    code = currency.upper()
    minor = MINIMUM_CHARGE_MINOR.get(code)
    return Money(minor, code) if minor is not None else None


def why_not_chargeable(amount: Money) -> str:
    """Return why Stripe would refuse to charge or hold `amount`, or "" when it can be sent.

    Given a Money; returns a sentence for the practitioner (empty when fine); raises nothing.
    """
    if amount.minor <= 0:
        return f"{amount} is not a positive amount, so nothing was charged"
    floor = minimum_charge(amount.currency)
    if floor is not None and amount < floor:
        return (
            f"{amount} is below Stripe's minimum charge of {floor}; "
            "it was recorded but not charged"
        )
    if amount.minor > MAXIMUM_CHARGE_MINOR:
        return f"{amount} is above Stripe's maximum for a single charge"
    if exponent(amount.currency) == 3 and amount.minor % 10:
        return (
            f"{amount}: Stripe needs {amount.currency} amounts rounded to 0.010 "
            "(the last digit must be 0); round the fee and try again"
        )
    return ""
