"""Money as an integer count of a currency's minor unit plus an ISO 4217 code.

Floats are refused everywhere: a float cannot hold 0.1 exactly, and a fee computed from one
can be off by a minor unit. Percentages are applied in Decimal with an explicit rounding mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency

# Minor-unit exponents that differ from 2. Stripe's list of zero-decimal currencies and ISO
# 4217's three-decimal ones. Everything else has two decimals.
ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
)
THREE_DECIMAL = frozenset("BHD IQD JOD KWD LYD OMR TND".split())

# CLDR's currency spacing: a symbol made of letters ("NOK") is set apart from the digits.
_LETTER_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")

_AMOUNT_RE = re.compile(
    r"^\s*(?:(?P<cur1>[A-Za-z]{3})\s+)?(?P<num>-?\d+(?:[.,]\d+)?)\s*(?P<cur2>[A-Za-z]{3})?\s*$"
)


class MoneyError(ValueError):
    """An amount or currency that cannot be used, with a message meant for the user."""


def exponent(currency: str) -> int:
    """Return how many decimals the minor unit of `currency` has (0, 2 or 3)."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def _check_currency(currency: str) -> str:
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise MoneyError(f"{currency!r} is not a three-letter ISO currency code (e.g. NOK, EUR)")
    return currency.upper()


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An amount of money: `minor` units (int) of `currency` (upper-case ISO code)."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise MoneyError(
                f"money needs an integer count of minor units, got {type(self.minor).__name__}"
            )
        object.__setattr__(self, "currency", _check_currency(self.currency))

    # -- construction -------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, default_currency: str | None = None) -> Money:
        """Parse "900 NOK", "NOK 900", "450.50 EUR" or, with a default currency, "900".

        Raises MoneyError naming the text when it is not an amount, or when it has more
        decimals than the currency allows.
        """
        if not isinstance(text, str):
            raise MoneyError(f"{text!r} is not an amount; write it as text like \"900 NOK\"")
        match = _AMOUNT_RE.match(text)
        if not match:
            raise MoneyError(f"{text!r} is not an amount; write it like \"900 NOK\"")
        if match["cur1"] and match["cur2"]:
            raise MoneyError(f"{text!r} names a currency twice")
        currency = match["cur1"] or match["cur2"] or default_currency
        if not currency:
            raise MoneyError(f"{text!r} has no currency; write it like \"900 NOK\"")
        currency = _check_currency(currency)
        try:
            value = Decimal(match["num"].replace(",", "."))
        except InvalidOperation as error:  # pragma: no cover - the regex admits only digits
            raise MoneyError(f"{text!r} is not a number") from error
        return cls.from_decimal(value, currency, source=text)

    @classmethod
    def from_decimal(cls, value: Decimal, currency: str, source: str | None = None) -> Money:
        """Convert a Decimal in major units to Money; refuses sub-minor-unit precision."""
        if isinstance(value, float):
            raise MoneyError("floats are not accepted for money; use Decimal or text")
        currency = _check_currency(currency)
        scaled = value.scaleb(exponent(currency))
        if scaled != scaled.to_integral_value():
            raise MoneyError(
                f"{source or value} has more decimals than {currency} allows "
                f"({exponent(currency)})"
            )
        return cls(int(scaled), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    # -- arithmetic ---------------------------------------------------------------------
    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise MoneyError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor

    def percent(self, percent: Decimal | int) -> Money:
        """Return `percent` % of this amount (a Decimal or a whole number), rounded half-up to the minor unit."""
        if isinstance(percent, float):
            raise MoneyError("floats are not accepted for percentages; use Decimal")
        value = (Decimal(self.minor) * Decimal(percent) / Decimal(100)).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        return Money(int(value), self.currency)

    def min(self, other: Money) -> Money:
        return self if self <= other else other

    @property
    def is_zero(self) -> bool:
        return self.minor == 0

    def to_decimal(self) -> Decimal:
        """The amount in major units, exact."""
        return Decimal(self.minor).scaleb(-exponent(self.currency))

    def __str__(self) -> str:
        places = exponent(self.currency)
        value = self.to_decimal()
        text = f"{value:.{places}f}" if places else f"{value:f}"
        return f"{text} {self.currency}"

    def as_json(self) -> dict:
        return {"minor": self.minor, "currency": self.currency}


@dataclass(frozen=True, slots=True)
class Fee:
    """A fee rule: either a percentage of the price or a fixed amount."""

    percent: Decimal | None = None
    fixed: Money | None = None

    @classmethod
    def parse(cls, text: str, default_currency: str | None = None) -> Fee:
        """Parse "50%" or "450 NOK". Raises MoneyError with a message for the user."""
        if not isinstance(text, str):
            raise MoneyError(f"{text!r} is not a fee; write \"50%\" or \"450 NOK\"")
        stripped = text.strip()
        if stripped.endswith("%"):
            try:
                value = Decimal(stripped[:-1].strip())
            except InvalidOperation as error:
                raise MoneyError(f"{text!r} is not a percentage like \"50%\"") from error
            if not value.is_finite() or value < 0 or value > 100:
                raise MoneyError(f"{text!r}: a percentage fee must be between 0% and 100%")
            return cls(percent=value)
        amount = Money.parse(stripped, default_currency)
        if amount.minor < 0:
            raise MoneyError(f"{text!r}: a fee cannot be negative")
        return cls(fixed=amount)

    def of(self, price: Money) -> Money:
        """The fee for an appointment of `price`; never more than the price itself."""
        if self.percent is not None:
            return price.percent(self.percent)
        assert self.fixed is not None
        return self.fixed.min(price)

    def __str__(self) -> str:
        if self.percent is not None:
            return f"{self.percent.normalize():f}%"
        return str(self.fixed)


def format_money(amount: Money, locale: str = "en") -> str:
    """`amount` as a person reads it in `locale` (a code like "nb", "de-AT"; an unknown one
    reads English), by Babel: "450,00 kr" (nb), "NOK 450.00" (en), "450,00 zł" (pl), with the
    currency's minor units. For people only: files and JSON keep {"minor", "currency"}."""
    try:
        babel_locale = Locale.parse((locale or "en").replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        babel_locale = Locale.parse("en")
    text = format_currency(amount.to_decimal(), amount.currency, locale=babel_locale)
    return _LETTER_DIGIT.sub("\u00a0", text)
