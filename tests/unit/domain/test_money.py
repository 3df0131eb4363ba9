from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotguard.domain.money import Fee, Money, MoneyError, exponent

currencies = st.sampled_from(["NOK", "EUR", "JPY", "KWD", "PLN", "ILS"])
amounts = st.integers(min_value=0, max_value=10**12)


def test_parse_reads_both_orders_and_decimal_commas():
    assert Money.parse("900 NOK") == Money(90000, "NOK")
    assert Money.parse("NOK 450,50") == Money(45050, "NOK")
    assert Money.parse("1000 JPY") == Money(1000, "JPY")
    assert Money.parse("1.234 KWD") == Money(1234, "KWD")
    assert Money.parse("900", default_currency="nok") == Money(90000, "NOK")


@pytest.mark.parametrize("text", ["", "abc", "9.999 NOK", "10.5 JPY", "900", "900 NOK EUR", "12 NO"])
def test_parse_rejects_what_is_not_an_amount(text):
    with pytest.raises(MoneyError):
        Money.parse(text)


def test_floats_and_mixed_currencies_are_refused():
    with pytest.raises(MoneyError):
        Money(9.5, "NOK")
    with pytest.raises(MoneyError):
        Money(100, "NOK") + Money(100, "EUR")
    with pytest.raises(MoneyError):
        Money(100, "NOK").percent(50.0)


def test_zero_decimal_currencies_use_the_table_not_times_100():
    assert exponent("JPY") == 0 and exponent("KRW") == 0 and exponent("KWD") == 3 and exponent("NOK") == 2
    assert str(Money(1000, "JPY")) == "1000 JPY"
    assert str(Money(45050, "NOK")) == "450.50 NOK"


def test_percent_rounds_half_up_to_the_minor_unit():
    assert Money(333, "NOK").percent(Decimal(50)) == Money(167, "NOK")
    assert Money(90000, "NOK").percent(Decimal("12.5")) == Money(11250, "NOK")


def test_fee_is_never_more_than_the_price():
    assert Fee.parse("2000 NOK").of(Money(90000, "NOK")) == Money(90000, "NOK")
    assert Fee.parse("50%").of(Money(90000, "NOK")) == Money(45000, "NOK")
    with pytest.raises(MoneyError):
        Fee.parse("150%")
    with pytest.raises(MoneyError):
        Fee.parse("-5 NOK")


@given(amounts, currencies, st.decimals(min_value=0, max_value=100, places=2))
def test_a_percentage_fee_stays_between_zero_and_the_price(minor, currency, percent):
    price = Money(minor, currency)
    fee = price.percent(percent)
    assert 0 <= fee.minor <= price.minor
    assert fee.currency == price.currency


@given(amounts, amounts, currencies)
def test_addition_and_subtraction_are_exact_inverses(a, b, currency):
    assert (Money(a, currency) + Money(b, currency)) - Money(b, currency) == Money(a, currency)


@given(amounts, currencies)
def test_text_form_parses_back_to_the_same_amount(minor, currency):
    money = Money(minor, currency)
    assert Money.parse(str(money)) == money
