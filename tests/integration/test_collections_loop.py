"""The collections ladder in the real loop: a SQLite ledger file, the outbox folder, the
record-only provider; and the commands that read it (`balance`, `evidence`, `mark-paid`,
`status`) run in this process on a config file pointing at the same ledger."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.cli.main import build_parser
from slotguard.collections.ladder import run_collections
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.domain.tick_report import TickReport
from slotguard.practitioner.digest import digest_details
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
LADDER = {
    "steps": [
        {"after": "3d", "template": "payment_reminder_1"},
        {"after": "14d", "template": "payment_reminder_2"},
        {"after": "30d", "template": "payment_final_notice", "offer": "plan"},
        {"after": "45d", "action": "writeoff_or_refer"},
    ],
    "plan": {"installments": 3, "every": "30d", "min_installment": "200 NOK"},
    "writeoff_below": "150 NOK",
}
CONFIG = """
[practice]
name = "Lena Berg Massage"
email = "lena@example.com"
timezone = "Europe/Oslo"
currency = "NOK"
booking_link = "https://example.com/book"
payment_instructions = "Vipps 400 00 000"

[calendar]
source = "memory"

[services]
default = {{ price = "900 NOK", duration = "60m", label = "massage" }}

[mail]
outbox_dir = "{outbox}"
digest_hour = -1
monthly_report = false

[storage]
ledger = "{ledger}"

[policies]
enabled = ["late_cancel", "no_show"]

[collections]
steps = [ {{ after = "3d", template = "payment_reminder_1" }}, {{ after = "14d", template = "payment_reminder_2" }},
          {{ after = "30d", template = "payment_final_notice", offer = "plan" }}, {{ after = "45d", action = "writeoff_or_refer" }} ]
plan = {{ installments = 3, every = "30d", min_installment = "200 NOK" }}
writeoff_below = "150 NOK"
"""


class Practice:
    """A no-show whose fee became a receivable, with the ladder configured."""

    def __init__(self, tmp_path):
        self.settings = settings(collections=LADDER, mail={"outbox_dir": str(tmp_path / "outbox"), "digest_hour": -1})
        self.calendar = MemoryCalendar("primary")
        self.outbox = OutboxDirMailer(tmp_path / "outbox")
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        self.engine = build_engine(self.settings, MONDAY, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
                                   provider=RecordOnlyProvider(), mailer=self.outbox)
        self.config = tmp_path / "slotguard.toml"
        self.config.write_text(CONFIG.format(outbox=tmp_path / "outbox", ledger=tmp_path / "ledger.sqlite3"))
        title = "Massage (owes me from last time)"  # the practitioner's private note
        self.calendar.put(event("e1", WEDNESDAY_10, title=title), MONDAY)
        self.engine.tick(MONDAY)
        self.calendar.put(event("e1", WEDNESDAY_10, title=title, color="11"), WEDNESDAY_10 + timedelta(hours=1))
        self.engine.tick(WEDNESDAY_10 + timedelta(hours=1))
        self.engine.tick(WEDNESDAY_10 + timedelta(hours=22))  # the window ends at 23:00, in quiet hours: 08:00
        [self.fee] = self.ledger.actions(kinds=[ActionKind.CHARGE])
        assert self.fee.context["payment_status"] == "receivable"
        self.since = self.fee.executed_at

    def day(self, days: float) -> datetime:
        return self.since + timedelta(days=days)

    def run(self, until_days: float, step=timedelta(hours=6)) -> None:
        now = self.day(0)
        while now <= self.day(until_days):
            self.engine.tick(now)
            now += step

    def messages(self) -> dict[str, email.message.EmailMessage]:
        return {path.stem: email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in sorted(self.outbox.folder.glob("*.eml"))}

    def sent(self, template: str) -> list:
        return [a for a in self.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == template and a.state is ActionState.DONE]

    def command(self, *argv: str) -> int:
        args = build_parser().parse_args([argv[0], "--config", str(self.config), *argv[1:]])
        return args.handler(args)


@pytest.fixture
def practice(tmp_path):
    return Practice(tmp_path)


def test_a_payment_between_planning_and_sending_cancels_the_reminder(practice):
    now = practice.day(3)
    report = TickReport()
    run_collections(practice.settings, practice.ledger, practice.engine.provider, now, report)
    [reminder] = [a for a in practice.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "payment_reminder_1"]
    assert reminder.state is ActionState.PLANNED and report.planned["email:planned"] == 1
    # The client pays (a webhook, `mark-paid`) after the ladder planned the reminder and
    # before the executor sends it.
    assert practice.ledger.mark_paid(practice.fee.id, now, "paid by bank transfer") is not None
    practice.engine.execute_due(now, report)
    stored = practice.ledger.action(reminder.id)
    assert stored.state is ActionState.CANCELLED
    assert "not sent: the balance is settled" in practice.ledger.action_log(reminder.id)[-1]["note"]
    assert reminder.id not in practice.messages(), "no reminder after a payment, ever"
    practice.engine.tick(now + timedelta(minutes=5))
    [receipt] = practice.sent("payment_receipt")
    text = practice.messages()[receipt.id].get_body(("plain",)).get_content()
    assert "900.00" in text and "receipt" in text


def test_the_reminders_carry_the_payment_instructions_and_never_the_event_title(practice):
    practice.run(15)
    [first] = practice.sent("payment_reminder_1")
    [second] = practice.sent("payment_reminder_2")
    message = practice.messages()[first.id]
    text = message.get_body(("plain",)).get_content()
    assert message["To"] == "Ana Silva <ana@example.com>" and "friendly reminder" in message["Subject"]
    assert "Vipps 400 00 000" in text and "900.00" in text and "owes me" not in text
    assert "14 days" in practice.messages()[second.id].get_body(("plain",)).get_content()


def test_a_referral_tells_the_practitioner_with_the_evidence_attached_and_the_digest_lists_it(practice):
    practice.run(46)
    [referral] = practice.sent("payment_referral")
    message = practice.messages()[referral.id]
    assert message["To"].addresses[0].addr_spec == "lena@example.com"
    [attachment] = [part for part in message.iter_attachments() if part.get_filename() == "evidence.html"]
    evidence = attachment.get_content()
    assert "record of a fee" in evidence and practice.fee.id in evidence and "payment_final_notice" in evidence
    details = digest_details(practice.settings, practice.ledger, practice.day(47))
    [row] = details["collections"]
    assert (row["id"], row["state"], row["balance"].minor) == (practice.fee.id, "referred", 90000)
    assert [r["amount"].minor for r in details["receivables"]] == [90000], "the plan offer is not counted twice"


def test_balance_status_and_mark_paid_on_the_command_line(practice, capsys):
    practice.run(31)
    capsys.readouterr()
    assert practice.command("balance", "--now", practice.day(31).isoformat()) == 0
    out = capsys.readouterr().out
    assert "ana@example.com" in out and "owes NOK\u00a0900.00" in out and "step 3 of 4 done" in out
    assert practice.command("balance", "ana@example.com", "--json", "--now", practice.day(31).isoformat()) == 0
    [client] = json.loads(capsys.readouterr().out)["clients"]
    assert client["owed"] == {"minor": 90000, "currency": "NOK"} and client["debts"][0]["id"] == practice.fee.id
    assert practice.command("balance", "nobody@example.com") == 1

    assert practice.command("status", "--json", "--now", practice.day(31).isoformat()) == 0
    status = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in status["receivables"]] == [practice.fee.id], "the plan's first installment is part of the fee"
    assert status["balances"][0]["client"] == "ana@example.com" and status["balances"][0]["owed"]["minor"] == 90000

    # The client pays the first installment (300 NOK) by bank: recorded against the fee id.
    assert practice.command("mark-paid", practice.fee.id, "--note", "Vipps", "--now", practice.day(32).isoformat()) == 0
    assert "NOK\u00a0300.00 (installment 1 of 3) recorded as paid" in capsys.readouterr().out
    practice.engine.tick(practice.day(32))
    assert practice.command("balance", "--json", "--now", practice.day(32).isoformat()) == 0
    [client] = json.loads(capsys.readouterr().out)["clients"]
    assert client["owed"]["minor"] == 60000 and client["paid"]["minor"] == 30000
    assert client["debts"][0]["state"] == "plan"


def test_evidence_for_a_dispute(practice, capsys, tmp_path):
    practice.run(4)
    out = tmp_path / "evidence.html"
    reminder = practice.sent("payment_reminder_1")[0]
    assert practice.command("evidence", reminder.id, "--out", str(out), "--now", practice.day(4).isoformat()) == 0
    html = out.read_text(encoding="utf-8")
    [confirmation] = practice.sent("booking_confirmation")
    assert confirmation.id in html and "as sent, from the outbox" in html, "the policy text the client received, and when"
    told = html.split("How the client knew the policy before the incident")[1].split("<h2>")[0]
    assert f"booking confirmation {confirmation.id}" in told and "before the incident" in told, "which message carried the policy"
    assert "Not coming without letting us know" in html or "cancel" in html.lower()
    assert "no show" in html and "marked as not attended" in html, "the calendar mark and the fee's computation"
    # The event was in the calendar at Slotguard's first look (issue 13, item 9): each time says
    # what it is, and the booking shows when it was first seen, never a "booked" time it does not know.
    assert "Introduction of the policy (the booking was made before Slotguard watched the calendar)" in html
    assert "<td>first seen by Slotguard</td><td>booked</td>" in html
    assert "<td>session start (marked as not come)</td><td>no show</td>" in html
    assert "<td>booked</td><td>booked</td>" not in html
    assert "payment_reminder_1" in html and "receivable" in html
    assert "<script" not in html and "owes me" not in html, "the event title (private notes) never appears"
    assert practice.command("evidence", "act_nope") == 1


def test_the_balance_counts_what_is_owed_even_with_collections_off(practice):
    from slotguard.cli.collections import client_balances

    off = settings(mail={"digest_hour": -1})
    assert not off.collections.enabled and not practice.ledger.actions(policy="collections")
    [ana] = client_balances(practice.ledger, off, practice.day(1))
    assert (ana.client, ana.charged, ana.paid, ana.owed) == ("ana@example.com", 90000, 0, 90000)
    assert digest_details(off, practice.ledger, practice.day(1))["collections"] == []


def test_one_reminder_lists_every_open_fee_and_still_goes_when_one_is_paid_before_sending(practice):
    """Two no-shows of one client: the reminder for the first lists both (each with its
    session and amount, and the total). Paid for the first between planning and sending, it
    goes for the second alone."""
    thursday = WEDNESDAY_10 + timedelta(days=1)
    practice.calendar.put(event("e2", thursday), thursday - timedelta(hours=20))
    practice.engine.tick(thursday - timedelta(hours=20))
    practice.calendar.put(event("e2", thursday, color="11"), thursday + timedelta(hours=1))
    practice.engine.tick(thursday + timedelta(hours=1))
    practice.engine.tick(thursday + timedelta(hours=22))  # Friday 08:00: the fee's window ended in quiet hours
    assert len([a for a in practice.ledger.actions(kinds=[ActionKind.CHARGE]) if a.context.get("payment_status") == "receivable"]) == 2
    now = practice.day(3)
    run_collections(practice.settings, practice.ledger, practice.engine.provider, now, TickReport())
    [reminder] = [a for a in practice.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "payment_reminder_1"]
    assert [entry["fee"] for entry in reminder.context["fees"]][0] == practice.fee.id and len(reminder.context["fees"]) == 2
    listed = practice.ledger.action(reminder.id)
    # Rendered as planned: both fees, the total in the subject.
    both = practice.engine.renderer.render("payment_reminder_1", {**_context_of(practice, listed)}, "en")
    assert "1,800.00" in both.subject and "Wednesday, March 4, 2026" in both.text and "Thursday, March 5, 2026" in both.text
    assert practice.ledger.mark_paid(practice.fee.id, now, "paid by bank transfer") is not None
    practice.engine.execute_due(now, TickReport())
    assert practice.ledger.action(reminder.id).state is ActionState.DONE, "the second fee is still owed: it goes"
    text = practice.messages()[reminder.id].get_body(("plain",)).get_content()
    assert "Thursday, March 5, 2026" in text and "Wednesday, March 4, 2026" not in text and "this fee is still open" in text


def _context_of(practice, action):
    from slotguard.mail.context import email_context

    tracked = practice.ledger.tracked(action.calendar_id, action.event_id)
    return email_context(practice.settings, practice.engine.policies, action, tracked.appointment, practice.ledger.action(action.reports_on))


class Links:
    """A provider that makes payment links (as Stripe Checkout does), one per call."""

    def __init__(self):
        self.asked: list[str] = []

    def payment_link(self, action) -> str:
        self.asked.append(action.id)
        return f"https://pay.example.com/{action.id}/{len(self.asked)}"


def test_a_combined_reminder_has_one_fresh_link_per_fee_never_two_for_one_charge(practice):
    from slotguard.collections.ladder import collection_ready

    thursday = WEDNESDAY_10 + timedelta(days=1)
    practice.calendar.put(event("e2", thursday), thursday - timedelta(hours=20))
    practice.engine.tick(thursday - timedelta(hours=20))
    practice.calendar.put(event("e2", thursday, color="11"), thursday + timedelta(hours=1))
    practice.engine.tick(thursday + timedelta(hours=1))
    practice.engine.tick(thursday + timedelta(hours=22))  # Friday 08:00: the fee's window ended in quiet hours
    fees = [a for a in practice.ledger.actions(kinds=[ActionKind.CHARGE]) if a.context.get("payment_status") == "receivable"]
    for fee in fees:  # as with Stripe: the card was declined, the client pays through a link
        fee.context["payment_status"] = "unpaid"
        practice.ledger.update_action(fee, thursday + timedelta(hours=14))
    provider = Links()
    now = practice.day(3)
    run_collections(practice.settings, practice.ledger, provider, now, TickReport())
    [reminder] = [a for a in practice.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "payment_reminder_1"]
    assert collection_ready(practice.ledger, provider, practice.settings, reminder, now)
    assert sorted(provider.asked) == sorted(fee.id for fee in fees), "one link for each fee's charge"
    links = [entry["payment_link"] for entry in reminder.context["fees"]]
    assert len(set(links)) == 2 and all(link.startswith("https://pay.example.com/") for link in links)
