"""`preview` shows sample emails whose amounts agree with the policies' terms, has the
prepayment version of deposit_request, and amounts are printed as money for people."""

from __future__ import annotations

from pathlib import Path

import pytest

from slotguard.cli.main import main
from slotguard.domain.money import Money, format_money

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("amount", "locale", "expected"), [
    (Money(45000, "NOK"), "nb", "450,00\u00a0kr"),
    (Money(45000, "NOK"), "en", "NOK\u00a0450.00"),
    (Money(45000, "NOK"), "xx", "NOK\u00a0450.00"),
    (Money(45000, "PLN"), "pl", "450,00\u00a0zł"),
    (Money(4500, "JPY"), "en", "¥4,500"),
    (Money(4500, "KWD"), "en", "KWD\u00a04.500"),
])
def test_an_amount_reads_as_money_with_its_minor_units_in_the_locale(amount, locale, expected):
    assert format_money(amount, locale) == expected


@pytest.fixture
def example(monkeypatch):
    monkeypatch.chdir(ROOT)
    return str(ROOT / "config/example.toml")


def preview(example, capsys, *args) -> tuple[int, str, str]:
    code = main(["preview", *args, "--config", example])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_sample_fee_is_the_one_the_policy_line_states(example, capsys):
    code, text, _ = preview(example, capsys, "no_show_followup", "--locale", "en")
    assert code == 0
    # no_show = 100 % of 900 NOK: the policy line and the fee say the same amount.
    assert "100% of the price (NOK\u00a0900.00)" in text
    assert "NOK\u00a0450.00" not in text
    code, text, _ = preview(example, capsys, "late_cancel_notice", "--locale", "en")
    assert "NOK\u00a0450.00" in text  # five hours' notice: the 24-hour tier, 50 %


def test_preview_shows_a_deposit_request_for_a_prepayment(example, capsys):
    code, deposit, _ = preview(example, capsys, "deposit_request", "--locale", "en")
    assert code == 0 and "deposit" in deposit.lower()
    code, prepay, _ = preview(example, capsys, "deposit_request", "--locale", "en", "--purpose", "prepayment")
    assert code == 0
    assert "pay for the session in advance: NOK\u00a0900.00" in prepay and "deposit" not in prepay.lower()
    code, _, err = preview(example, capsys, "reminder", "--purpose", "prepayment")
    assert code == 1 and "deposit_request only" in err


def test_preview_gives_the_practitioners_words_in_the_language_shown(example, capsys):
    _, german, _ = preview(example, capsys, "reminder", "--locale", "de")
    _, norwegian, _ = preview(example, capsys, "reminder")
    assert "Massage" in german and "massasje" not in german
    assert "massasje" in norwegian
