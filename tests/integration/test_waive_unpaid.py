"""Waiving a fee the client was asked for but has not paid yet.

Nothing was taken, so nothing is refunded: the request is withdrawn instead (a record-only
receivable cancelled; a Stripe payment link closed so it can no longer take money), the fee
leaves the receivables and the collections ladder, and the client reads that there is
nothing to pay. If the client paid through the link a moment before, the money is refunded.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from integration.memory import MemoryCalendar, MemoryMailer
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.integration.test_engine_loop import MONDAY, WEDNESDAY_10, Loop
from tests.support.builders import event
from tests.support.builders import settings as practice
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY

OSLO = ZoneInfo("Europe/Oslo")
LADDER = {"steps": [{"after": "3d", "template": "payment_reminder_1"}, {"after": "14d", "template": "payment_reminder_2"}]}


def only(actions, kind):
    [found] = [action for action in actions if action.kind is kind]
    return found


def to_client(loop, before) -> list:
    """Messages to Ana that are not among `before`, oldest first."""
    return [m for name, m in sorted(loop.messages().items()) if name not in before and "ana@example.com" in m["To"]]


def text(message) -> str:
    return message.get_body(("plain",)).get_content()


def test_a_waived_receivable_is_cancelled_and_the_client_reads_there_is_nothing_to_pay(tmp_path):
    loop = Loop(tmp_path, collections=LADDER)
    loop.put(event("e1", WEDNESDAY_10), MONDAY)
    loop.tick(MONDAY)
    loop.put(event("e1", WEDNESDAY_10, title="Massage #noshow"), WEDNESDAY_10 + timedelta(hours=1))
    loop.tick(WEDNESDAY_10 + timedelta(hours=1, minutes=5))
    loop.tick(WEDNESDAY_10 + timedelta(hours=22, minutes=10))  # the review window (12h) ended at 23:00: charged at 08:00
    fee = only(loop.ledger.actions(), ActionKind.CHARGE)
    assert fee.state is ActionState.DONE and fee.context["payment_status"] == "receivable"
    assert [a.id for a in loop.ledger.owed_charges()] == [fee.id]

    thursday = WEDNESDAY_10 + timedelta(days=1)
    loop.put(event("e1", WEDNESDAY_10, title="Massage #noshow #waive"), thursday)
    before = set(loop.messages())
    loop.tick(thursday + timedelta(minutes=5))

    fee = loop.ledger.action(fee.id)
    refund = only(loop.ledger.actions(), ActionKind.REFUND)
    assert refund.state is ActionState.DONE and refund.context["payment_status"] == "nothing_taken"
    assert fee.context["payment_status"] == "waived"
    assert loop.ledger.owed_charges() == []
    [notice] = to_client(loop, before)
    assert notice["Subject"].startswith("No fee for your massage")
    body = text(notice)
    assert "nothing for you to pay" in body and "900" in body
    assert "refund" not in body.lower() and "refund" not in notice["Subject"].lower()

    # The ladder would have sent its first reminder three days after the fee: nothing comes.
    loop.run_until(thursday + timedelta(hours=1), thursday + timedelta(days=20), step=timedelta(hours=12))
    later = [m["Subject"] for m in to_client(loop, before)]
    assert later == [notice["Subject"]], later  # only the notice above
    assert not [a for a in loop.ledger.actions(policy="collections") if a.state is ActionState.DONE]


class StripePractice:
    """The engine with the Stripe provider (through the proxy in front of localstripe), a
    no-show fee reviewed for 0 minutes, and a client with no card on file."""

    def __init__(self, tmp_path, stripe_proxy, stripe_provider, monkeypatch):
        monkeypatch.setenv(KEY_ENV, TEST_KEY)
        self.settings = practice(
            payments={"provider": "stripe", "secret_key": {"env": KEY_ENV}, "api_base": stripe_proxy.base_url,
                      "review_window": "0m"},
            # The clock is the wall clock: at 07:xx Oslo time a digest went out too, and quiet hours
            # would make when fees and emails go depend on the hour the tests run.
            mail={"digest_hour": -1, "quiet_hours": ""},
        )
        self.calendar, self.mailer = MemoryCalendar("primary"), MemoryMailer()
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.start = self.now - timedelta(hours=3)
        self.engine = build_engine(self.settings, self.now - timedelta(days=2), ledger=self.ledger,
                                   calendars=[(self.calendar, NullWriteBack())], provider=stripe_provider, mailer=self.mailer)

    def unpaid_no_show(self):
        """The client missed the session; the fee could not be charged (no card): a link."""
        self.calendar.put(event("e1", self.start, client="new@example.com", name="New Client"), self.now - timedelta(days=2))
        self.engine.tick(self.now - timedelta(days=2))
        self.calendar.put(event("e1", self.start, client="new@example.com", name="New Client", title="Massage #noshow"),
                          self.now - timedelta(hours=1))
        self.engine.tick(self.now - timedelta(minutes=50))
        self.engine.tick(self.now - timedelta(minutes=40))
        fee = only(self.ledger.actions(), ActionKind.CHARGE)
        assert fee.state is ActionState.DONE and fee.context["payment_status"] == "unpaid", fee.last_error
        return fee

    def waive(self):
        self.calendar.put(event("e1", self.start, client="new@example.com", name="New Client", title="Massage #noshow #waive"),
                          self.now - timedelta(minutes=10))
        sent = set(self.mailer.sent)
        self.engine.tick(self.now - timedelta(minutes=5))
        return [self.mailer.sent[key] for key in self.mailer.sent if key not in sent]


def link_works(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return False


def test_waiving_a_fee_still_owed_through_a_stripe_link_closes_the_link_and_refunds_nothing(
    tmp_path, stripe_proxy, stripe_provider, stripe_admin, monkeypatch
):
    practice_ = StripePractice(tmp_path, stripe_proxy, stripe_provider, monkeypatch)
    fee = practice_.unpaid_no_show()
    link = fee.context["payment_link"]
    assert link_works(link)

    [notice] = practice_.waive()

    assert not link_works(link), "the client can no longer pay a fee that was waived"
    session = stripe_proxy.complete_checkout(link.rsplit("/", 1)[-1], "pm_card_visa")
    assert "error" in session
    refund = only(practice_.ledger.actions(), ActionKind.REFUND)
    assert refund.state is ActionState.DONE and refund.context["payment_status"] == "nothing_taken", refund.last_error
    assert practice_.ledger.action(fee.id).context["payment_status"] == "waived"
    assert list(stripe_admin.v1.refunds.list().data) == []
    assert notice["Subject"].startswith("No fee for your massage")
    assert "payment link we sent you no longer works" in text(notice)
    assert "refunded" not in text(notice)


def test_a_fee_paid_through_the_link_just_before_the_waiver_is_refunded(
    tmp_path, stripe_proxy, stripe_provider, stripe_admin, monkeypatch
):
    practice_ = StripePractice(tmp_path, stripe_proxy, stripe_provider, monkeypatch)
    fee = practice_.unpaid_no_show()
    stripe_proxy.complete_checkout(fee.context["payment_link"].rsplit("/", 1)[-1], "pm_card_visa")  # no tick in between

    [notice] = practice_.waive()

    refund = only(practice_.ledger.actions(), ActionKind.REFUND)
    assert refund.state is ActionState.DONE and refund.context["payment_status"] == "paid", refund.last_error
    [stripe_refund] = list(stripe_admin.v1.refunds.list().data)
    assert stripe_refund.amount == fee.amount.minor
    assert "We have refunded" in text(notice)


def test_a_fee_the_provider_refused_can_still_be_waived_and_is_never_retried(tmp_path):
    """A failed fee took nothing; the practitioner's waiver lets it go, so `retry` cannot
    charge it later and the client's notice says there is no fee."""
    loop = Loop(tmp_path)
    loop.put(event("e1", WEDNESDAY_10), MONDAY)
    loop.tick(MONDAY)
    loop.put(event("e1", WEDNESDAY_10, title="Massage #noshow"), WEDNESDAY_10 + timedelta(hours=1))
    loop.tick(WEDNESDAY_10 + timedelta(hours=1, minutes=5))
    fee = only(loop.ledger.actions(), ActionKind.CHARGE)
    fee.state, fee.last_error = ActionState.FAILED, "the card network refused the payment"  # as a provider refusal leaves it
    assert loop.ledger.update_action(fee, WEDNESDAY_10 + timedelta(hours=2), "failed: refused", expect=[ActionState.PENDING_REVIEW])

    loop.put(event("e1", WEDNESDAY_10, title="Massage #noshow #waive"), WEDNESDAY_10 + timedelta(hours=3))
    before = set(loop.messages())
    loop.tick(WEDNESDAY_10 + timedelta(hours=3, minutes=5))

    assert loop.ledger.action(fee.id).state is ActionState.WAIVED
    assert not [a for a in loop.ledger.actions() if a.kind is ActionKind.REFUND], "nothing was taken, nothing to give back"
    loop.tick(WEDNESDAY_10 + timedelta(hours=22))  # the follow-up waits out the review window, then the night
    [followup] = to_client(loop, before)
    assert "900" not in text(followup), text(followup)  # "we missed you", and no fee to pay
