"""Money asked ahead and not paid as the session comes near (issue 13, item 4): the
practitioner is told before the session, once, and not when a digest already told them or
the client paid meanwhile (slotguard/practitioner/money_ahead.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState, ActionSubject, new_action
from slotguard.domain.money import Money
from slotguard.domain.tick_report import TickReport
from slotguard.practitioner.money_ahead import TEMPLATE, plan_money_ahead_alerts
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY_6 = datetime(2026, 3, 2, 6, 0, tzinfo=OSLO)


class Practice:
    """A deposit at booking (record-only: the client pays the practitioner), watched since Monday 06:00."""

    def __init__(self, digest_hour: int = -1, **payments):
        self.settings = settings(mail={"digest_hour": digest_hour}, policies={"enabled": ["no_show", "deposit"], "deposit": {"amount": "300 NOK"}},
                                 payments={"provider": "record-only", "review_window": "12h", **payments})
        self.calendar = MemoryCalendar("primary")
        self.mailer = MemoryMailer()
        self.ledger = Ledger(":memory:")
        self.engine = build_engine(self.settings, MONDAY_6, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
                                   provider=RecordOnlyProvider(), mailer=self.mailer)
        self.engine.tick(MONDAY_6)  # the first look: an empty calendar

    def book(self, event_id: str, start: datetime, at: datetime) -> None:
        self.calendar.put(event(event_id, start), at)

    def run(self, start: datetime, end: datetime, step: timedelta = timedelta(minutes=30)) -> None:
        now = start
        while now <= end:
            self.engine.tick(now)
            now += step

    def alerts(self) -> list:
        return [a for a in self.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == TEMPLATE]

    def deposit(self):
        [deposit] = self.ledger.actions(kinds=[ActionKind.CHARGE])
        return deposit


def test_a_deposit_still_unpaid_two_hours_before_the_session_is_told_to_the_practitioner_once():
    practice = Practice()
    practice.book("e1", MONDAY_6.replace(hour=14), at=MONDAY_6.replace(hour=8))
    practice.run(MONDAY_6.replace(hour=8), MONDAY_6.replace(hour=16))
    [alert] = practice.alerts()
    assert alert.state is ActionState.DONE and alert.executed_at == MONDAY_6.replace(hour=12), "two hours before, not after"
    assert alert.client_email == "lena@example.com" and alert.context["about"] == practice.deposit().id
    message = practice.mailer.sent[alert.id]
    subject = message["Subject"]
    assert subject.startswith("Not paid yet: the deposit for Ana Silva, ") and ("2:00" in subject or "14:00" in subject)
    text = message.get_body(("plain",)).get_content()
    assert "Ana Silva (ana@example.com) has a session on Monday, March 2, 2026 at" in text and "NOK\u00a0300.00 is not paid yet" in text
    assert f"python main.py mark-paid {practice.deposit().id}" in text and f"python main.py waive {practice.deposit().id}" in text


def test_a_booking_at_short_notice_is_told_at_once_and_a_paid_one_not_at_all():
    practice = Practice()
    practice.book("e1", MONDAY_6.replace(hour=14), at=MONDAY_6.replace(hour=13, minute=30))
    practice.run(MONDAY_6.replace(hour=13, minute=30), MONDAY_6.replace(hour=13, minute=30))
    [alert] = practice.alerts()
    assert alert.executed_at == MONDAY_6.replace(hour=13, minute=30)

    paid = Practice()
    paid.book("e1", MONDAY_6.replace(hour=14), at=MONDAY_6.replace(hour=8))
    paid.run(MONDAY_6.replace(hour=8), MONDAY_6.replace(hour=8))
    assert paid.ledger.mark_paid(paid.deposit().id, MONDAY_6.replace(hour=9), "paid by Vipps") is not None
    paid.run(MONDAY_6.replace(hour=9), MONDAY_6.replace(hour=16))
    assert paid.alerts() == []


def test_paid_between_planning_and_sending_the_alert_is_cancelled():
    practice = Practice()
    practice.book("e1", MONDAY_6.replace(hour=14), at=MONDAY_6.replace(hour=8))
    practice.run(MONDAY_6.replace(hour=8), MONDAY_6.replace(hour=8))
    noon = MONDAY_6.replace(hour=12)
    [alert] = plan_money_ahead_alerts(practice.settings, practice.ledger, noon)
    assert plan_money_ahead_alerts(practice.settings, practice.ledger, noon) == [], "planned once"
    practice.ledger.mark_paid(practice.deposit().id, noon, "paid at the door")
    practice.engine.execute_due(noon, TickReport())
    assert practice.ledger.action(alert.id).state is ActionState.CANCELLED
    assert alert.id not in practice.mailer.sent


def test_no_alert_when_the_morning_digest_already_listed_the_unpaid_deposit():
    practice = Practice(digest_hour=7)
    tuesday_14 = MONDAY_6.replace(hour=14) + timedelta(days=1)
    practice.book("e1", tuesday_14, at=MONDAY_6)  # booked before Monday's digest, which lists Tuesday
    practice.run(MONDAY_6, tuesday_14 + timedelta(hours=1), step=timedelta(hours=1))
    assert practice.alerts() == []
    [digest] = [m for a, m in practice.mailer.sent.items() if practice.ledger.action(a).template == "practitioner_digest"
                and "Tomorrow" in m.get_body(("plain",)).get_content()][:1]
    assert "deposit of NOK\u00a0300.00 not paid yet" in digest.get_body(("plain",)).get_content()


def test_a_request_the_client_pays_is_not_held_back_by_the_daily_cap():
    """The daily cap limits money taken from cards; a prepayment request takes none, so a
    short-notice request is not put off to the next day."""
    practice = Practice(daily_cap="500 NOK")
    noon = MONDAY_6.replace(hour=12)
    subject = ActionSubject("primary", "e1", "ana@example.com", "Ana", MONDAY_6.replace(hour=14))
    for slot, context in (("request", {"purpose": "prepayment", "client_pays": True}), ("fee", {})):
        practice.ledger.add_action(new_action(subject, ActionKind.CHARGE, "some_policy", slot, key="k", slot=slot, now=noon,
                                              amount=Money(90000, "NOK"), context=context))
    for action in practice.ledger.actions(kinds=[ActionKind.CHARGE]):
        practice.engine.execute(action, noon, TickReport())
    states = {a.context.get("purpose", "fee"): (a.state, a.due_at) for a in practice.ledger.actions(kinds=[ActionKind.CHARGE])}
    assert states["prepayment"] == (ActionState.DONE, noon)
    # A fee over the cap waits for the next morning, after the client's quiet hours (21:00-08:00).
    assert states["fee"] == (ActionState.PLANNED, MONDAY_6.replace(hour=8) + timedelta(days=1)), "a fee over the cap waits"
