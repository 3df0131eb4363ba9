"""Waiving when the client paid ahead: a deposit, a prepayment or a rescheduling credit.

A waiver means no money for this slot. What the client paid ahead and the practitioner kept
for a fee comes back (refunded if it was paid, the request withdrawn if it never was); what
was applied to the price of a session the client attended stays applied. The waive mark on
the event (`#waive`) and `main.py waive ACTION_ID` do the same, each give-back is one planned
refund with a stable id, nothing is given back twice, and the client gets one notice for it.

The engine runs for real (SQLite ledger, outbox folder, record-only provider; one test with
the Stripe provider against localstripe); `main.py waive` and `main.py mark-paid` run in this
process on a config file written from the same settings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from integration.memory import MemoryCalendar, MemoryMailer
from slotguard.cli.main import main
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.integration.test_engine_loop import MONDAY, WEDNESDAY_10, Loop
from tests.support.builders import config, event
from tests.support.builders import settings as practice_settings
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY, refunds_for


def NOK(major: int) -> Money:  # noqa: N802 (reads like the amounts in the ledger)
    return Money(major * 100, "NOK")


DEPOSIT = {"enabled": ["late_cancel", "no_show", "deposit"], "deposit": {"amount": "30%"}}
PREPAY = {"enabled": ["late_cancel", "no_show", "repeat_offender_prepay"], "repeat_offender_prepay": {"incidents": 1}}


def toml(value) -> str:
    """`value` as a TOML value (strings, numbers, booleans, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml(item) for item in value) + "]"
    return "{ " + ", ".join(f"{key} = {toml(item)}" for key, item in value.items() if item is not None) + " }"


def write_config(path, sections: dict) -> str:
    lines = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml(value)}" for key, value in table.items() if value is not None]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


class Practice(Loop):
    """The engine loop of test_engine_loop, plus the practitioner's commands on its ledger."""

    def __init__(self, tmp_path, **sections):
        sections["storage"] = {"ledger": str(tmp_path / "ledger.sqlite3")}
        super().__init__(tmp_path, **sections)
        self.config = write_config(tmp_path / "slotguard.toml", config(**sections))

    def command(self, *args, now) -> int:
        return main([*args, "--config", self.config, "--now", now.isoformat()])

    def waive(self, action_id, now, reason="the practitioner's call") -> int:
        return self.command("waive", action_id, "--reason", reason, now=now)

    def mark_paid(self, action_id, now) -> None:
        assert self.command("mark-paid", action_id, now=now) == 0

    def all(self, kind, **filters):
        return [a for a in self.ledger.actions(kinds=[kind]) if all(getattr(a, key) == value for key, value in filters.items())]

    def one(self, kind, **filters):
        [found] = self.all(kind, **filters)
        return found

    def purpose(self, kind, purpose):
        [found] = [a for a in self.ledger.actions(kinds=[kind]) if a.context.get("purpose") == purpose]
        return found

    def to_client(self, before) -> list:
        return [m for name, m in sorted(self.messages().items()) if name not in before and "ana@example.com" in m["To"]]

    def given_back(self) -> int:
        """Minor units refunded (done), money or withdrawn requests alike."""
        return sum(a.amount.minor for a in self.all(ActionKind.REFUND, state=ActionState.DONE))


# -- a deposit kept for a no-show fee ----------------------------------------------------------

NO_SHOW_AT = WEDNESDAY_10 + timedelta(hours=1)


def kept_deposit(tmp_path, paid: bool) -> tuple[Practice, object, object]:
    """Ana booked with a 270 NOK deposit (paid to the practitioner, or still a receivable)
    and did not come: the deposit is kept for the 900 NOK fee, the rest (630 NOK) is charged."""
    practice = Practice(tmp_path, policies=DEPOSIT)
    practice.put(event("e1", WEDNESDAY_10), MONDAY)
    practice.tick(MONDAY)
    deposit = practice.one(ActionKind.CHARGE, policy="deposit")
    assert deposit.state is ActionState.DONE and deposit.context["payment_status"] == "receivable"
    if paid:
        practice.mark_paid(deposit.id, MONDAY + timedelta(hours=1))
    practice.put(event("e1", WEDNESDAY_10, title="Massage #noshow"), NO_SHOW_AT)
    practice.tick(NO_SHOW_AT + timedelta(minutes=5))
    kept = practice.one(ActionKind.CREDIT, policy="no_show")
    assert kept.amount == NOK(270) and kept.context["target_action_id"] == deposit.id
    assert kept.state is ActionState.PENDING_REVIEW
    return practice, deposit, kept


def test_waiving_a_kept_deposit_by_id_withdraws_the_deposit_the_client_never_paid(tmp_path, capsys):
    practice, deposit, kept = kept_deposit(tmp_path, paid=False)
    at = NO_SHOW_AT + timedelta(hours=2)

    assert practice.waive(kept.id, at) == 0

    assert practice.ledger.action(kept.id).state is ActionState.WAIVED
    refund = practice.one(ActionKind.REFUND)
    assert (refund.amount, refund.context["target_action_id"], refund.state) == (NOK(270), deposit.id, ActionState.PLANNED)
    assert f"{refund.id} withdraws the request" in capsys.readouterr().out
    before = set(practice.messages())
    practice.tick(at + timedelta(minutes=5))
    refund = practice.ledger.action(refund.id)
    assert refund.state is ActionState.DONE and refund.context["payment_status"] == "nothing_taken"
    assert practice.ledger.action(deposit.id).context["payment_status"] == "waived", "the deposit is no longer owed"
    [notice] = practice.to_client(before)
    body = practice.body(notice)
    assert notice["Subject"].startswith("No fee for your massage") and "270.00" in body and "nothing for you to pay" in body


def test_waiving_a_kept_deposit_by_id_after_the_review_refunds_it_once_whatever_comes_after(tmp_path, capsys):
    practice, deposit, kept = kept_deposit(tmp_path, paid=True)
    practice.tick(kept.due_at + timedelta(minutes=1))  # the review window is over: kept for good
    assert practice.ledger.action(kept.id).state is ActionState.DONE
    at = kept.due_at + timedelta(hours=1)
    before = set(practice.messages())

    assert practice.waive(kept.id, at) == 0
    assert "refund" in capsys.readouterr().out
    refund = practice.one(ActionKind.REFUND)
    assert (refund.amount, refund.context["target_action_id"]) == (NOK(270), deposit.id)
    # Run again (the engineer is not sure it worked), then the waive mark on the event too.
    assert practice.waive(kept.id, at + timedelta(minutes=1)) == 0
    assert "planned before" in capsys.readouterr().out
    practice.tick(at + timedelta(minutes=5))
    practice.put(event("e1", WEDNESDAY_10, title="Massage #noshow #waive"), at + timedelta(minutes=10))
    practice.run_until(at + timedelta(minutes=15), at + timedelta(days=2), step=timedelta(hours=6))

    assert [a.id for a in practice.all(ActionKind.REFUND, amount=NOK(270))] == [refund.id], "the deposit is refunded once"
    assert practice.ledger.action(refund.id).context["payment_status"] == "paid"
    notices = [m["Subject"] for m in practice.to_client(before) if m["Subject"].startswith("Your refund")]
    assert len(notices) == 1 and "270.00" in notices[0], notices


def test_the_waive_mark_and_the_command_give_back_the_same_kept_deposit(tmp_path):
    by_mark, deposit, kept = kept_deposit(tmp_path / "mark", paid=True)
    at = NO_SHOW_AT + timedelta(hours=2)
    by_mark.put(event("e1", WEDNESDAY_10, title="Massage #noshow #waive"), at)
    by_mark.tick(at + timedelta(minutes=5))
    by_id, _, kept_too = kept_deposit(tmp_path / "command", paid=True)
    assert by_id.waive(kept_too.id, at) == 0
    by_id.tick(at + timedelta(minutes=5))

    for practice in (by_mark, by_id):
        [refund] = practice.all(ActionKind.REFUND)
        assert (refund.amount, refund.state, refund.context["payment_status"]) == (NOK(270), ActionState.DONE, "paid")
        assert practice.one(ActionKind.CREDIT, policy="no_show").state is ActionState.WAIVED
        [notice] = [a for a in practice.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "refund_notice"]
        assert notice.reports_on == refund.id and notice.state is ActionState.DONE


# -- a prepayment (repeat offenders) ----------------------------------------------------------


def prepayment_asked(tmp_path, policies=PREPAY) -> tuple[Practice, object]:
    """Ana missed a session on Monday morning, so her booking for Wednesday needs full
    prepayment: the prepayment charge, asked at once (record-only: a receivable)."""
    practice = Practice(tmp_path, policies=policies)
    missed = MONDAY + timedelta(hours=1)
    practice.put(event("e0", missed), MONDAY)
    practice.tick(MONDAY)
    practice.put(event("e0", missed, title="Massage #noshow"), missed + timedelta(hours=1, minutes=30))
    practice.tick(missed + timedelta(hours=1, minutes=35))
    practice.put(event("e1", WEDNESDAY_10), MONDAY + timedelta(hours=3))
    practice.tick(MONDAY + timedelta(hours=3, minutes=5))
    prepayment = practice.one(ActionKind.CHARGE, policy="repeat_offender_prepay")
    return practice, prepayment


def prepaid(tmp_path, policies=PREPAY) -> tuple[Practice, object]:
    """As prepayment_asked, and she paid the 900 NOK to the practitioner."""
    practice, prepayment = prepayment_asked(tmp_path, policies)
    practice.tick(prepayment.due_at + timedelta(minutes=1))
    practice.mark_paid(prepayment.id, prepayment.due_at + timedelta(hours=1))
    return practice, practice.ledger.action(prepayment.id)


def test_a_waiver_gives_back_the_part_of_the_prepayment_kept_for_the_fee(tmp_path):
    practice, prepayment = prepaid(tmp_path)
    cancel_at = WEDNESDAY_10 - timedelta(hours=5)
    practice.put(event("e1", WEDNESDAY_10, title="Massage #latecancel"), cancel_at)
    practice.tick(cancel_at + timedelta(minutes=5))
    kept = practice.one(ActionKind.CREDIT, policy="late_cancel")
    assert kept.amount == NOK(450) and kept.state is ActionState.PENDING_REVIEW
    practice.tick(cancel_at + timedelta(minutes=10))
    assert practice.given_back() == 45000, "the 450 NOK the fee did not need went back at once"

    practice.tick(cancel_at + timedelta(hours=3))  # 08:00: that refund's notice, held through the client's night, goes
    at = cancel_at + timedelta(hours=3, minutes=5)
    before = set(practice.messages())
    practice.put(event("e1", WEDNESDAY_10, title="Massage #latecancel #waive"), at)
    practice.run_until(at + timedelta(minutes=5), at + timedelta(days=2), step=timedelta(hours=6))

    assert practice.ledger.action(kept.id).state is ActionState.WAIVED
    back = practice.all(ActionKind.REFUND, state=ActionState.DONE)
    assert all(refund.context["target_action_id"] == prepayment.id for refund in back)
    assert practice.given_back() == 90000, [(a.amount, a.reason) for a in back]
    [notice] = [m for m in practice.to_client(before) if m["Subject"].startswith("Your refund")]
    assert "450.00" in practice.body(notice)


def test_waiving_a_kept_prepayment_by_id_after_the_review_refunds_what_was_kept(tmp_path):
    practice, prepayment = prepaid(tmp_path)
    practice.put(event("e1", WEDNESDAY_10, title="Massage #noshow"), NO_SHOW_AT)
    practice.tick(NO_SHOW_AT + timedelta(minutes=5))
    kept = practice.one(ActionKind.CREDIT, policy="no_show")
    assert kept.amount == NOK(900) and kept.context["target_action_id"] == prepayment.id
    practice.tick(kept.due_at + timedelta(minutes=1))

    assert practice.waive(kept.id, kept.due_at + timedelta(hours=1)) == 0
    practice.tick(kept.due_at + timedelta(hours=1, minutes=5))
    [refund] = practice.all(ActionKind.REFUND)
    assert (refund.amount, refund.state, refund.context["target_action_id"]) == (NOK(900), ActionState.DONE, prepayment.id)


def test_a_prepayment_applied_to_an_attended_session_is_not_given_back_by_a_later_waiver(tmp_path):
    practice, prepayment = prepaid(tmp_path)
    practice.run_until(WEDNESDAY_10, WEDNESDAY_10 + timedelta(hours=4))  # unmarked: taken as attended
    applied = practice.purpose(ActionKind.CREDIT, "deposit_applied")
    assert applied.amount == NOK(900) and applied.state is ActionState.DONE
    practice.put(event("e1", WEDNESDAY_10, title="Massage #waive"), WEDNESDAY_10 + timedelta(hours=5))
    practice.run_until(WEDNESDAY_10 + timedelta(hours=5), WEDNESDAY_10 + timedelta(days=2))
    assert practice.all(ActionKind.REFUND) == []
    assert practice.waive(prepayment.id, WEDNESDAY_10 + timedelta(days=2)) == 1, "applied to the price: nothing to give back"
    assert practice.all(ActionKind.REFUND) == []


def test_taking_off_a_mistaken_no_show_mark_applies_the_prepayment_to_the_session_instead_of_refunding_it(tmp_path):
    practice, prepayment = prepaid(tmp_path)
    practice.put(event("e1", WEDNESDAY_10, title="Massage #noshow"), NO_SHOW_AT)
    practice.tick(NO_SHOW_AT + timedelta(minutes=5))
    kept = practice.one(ActionKind.CREDIT, policy="no_show")
    # She did come: the practitioner takes the mark off before the review window ends.
    practice.put(event("e1", WEDNESDAY_10), NO_SHOW_AT + timedelta(hours=3))
    practice.run_until(NO_SHOW_AT + timedelta(hours=3, minutes=5), NO_SHOW_AT + timedelta(days=1))

    assert practice.ledger.action(kept.id).state is ActionState.WAIVED
    assert practice.all(ActionKind.REFUND) == [], "she came: the prepayment pays the session"
    applied = practice.purpose(ActionKind.CREDIT, "deposit_applied")
    assert (applied.amount, applied.state, applied.context["target_action_id"]) == (NOK(900), ActionState.DONE, prepayment.id)


def test_taking_off_a_mistaken_no_show_mark_applies_the_deposit_to_the_session(tmp_path):
    practice, deposit, kept = kept_deposit(tmp_path, paid=True)
    practice.put(event("e1", WEDNESDAY_10), NO_SHOW_AT + timedelta(hours=3))
    practice.run_until(NO_SHOW_AT + timedelta(hours=3, minutes=5), NO_SHOW_AT + timedelta(days=1))
    assert practice.all(ActionKind.REFUND) == []
    applied = practice.purpose(ActionKind.CREDIT, "deposit_applied")
    assert (applied.amount, applied.context["target_action_id"]) == (NOK(270), deposit.id)


def test_the_waive_mark_on_a_booking_not_yet_prepaid_withdraws_the_prepayment(tmp_path):
    practice, prepayment = prepayment_asked(tmp_path)
    # Asked at once, not after a review window (issue 13, item 4): the client has the request.
    assert (prepayment.state, prepayment.context["payment_status"]) == (ActionState.DONE, "receivable")
    assert [a.state for a in practice.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "deposit_request"] == [ActionState.DONE]
    practice.put(event("e1", WEDNESDAY_10, title="Massage #waive"), MONDAY + timedelta(hours=4))
    practice.run_until(MONDAY + timedelta(hours=4, minutes=5), MONDAY + timedelta(days=1), step=timedelta(hours=3))
    assert practice.ledger.action(prepayment.id).context["payment_status"] == "waived", "the request is withdrawn, never paid"
    [withdrawn] = practice.ledger.actions(kinds=[ActionKind.REFUND])
    assert withdrawn.context["payment_status"] == "nothing_taken"


# -- a rescheduling credit ("keep" mode) -----------------------------------------------------

CREDIT_POLICIES = {
    "enabled": ["late_cancel", "deposit", "reschedule_credit"],
    "deposit": {"amount": "30%"},
    "reschedule_credit": {"notice": "48h", "rebook_within": "3d", "if_not_rebooked": "keep"},
}
FRIDAY_10 = WEDNESDAY_10 + timedelta(days=2)


def credit_kept(tmp_path, mode="keep") -> tuple[Practice, object, object, object]:
    """Ana paid her 270 NOK deposit and cancelled 72 hours ahead: the deposit is kept as a
    credit for a booking made within three days of the appointment."""
    policies = {**CREDIT_POLICIES, "reschedule_credit": {**CREDIT_POLICIES["reschedule_credit"], "if_not_rebooked": mode}}
    practice = Practice(tmp_path, policies=policies)
    practice.put(event("e1", FRIDAY_10), MONDAY)
    practice.tick(MONDAY)
    deposit = practice.one(ActionKind.CHARGE, policy="deposit")
    practice.mark_paid(deposit.id, MONDAY + timedelta(minutes=30))
    practice.put(event("e1", FRIDAY_10, title="Massage #latecancel"), FRIDAY_10 - timedelta(hours=72))
    practice.tick(FRIDAY_10 - timedelta(hours=72) + timedelta(minutes=5))
    credit = practice.purpose(ActionKind.CREDIT, "credit")
    assert credit.state is ActionState.DONE and credit.amount == NOK(270)
    ends = [a for a in practice.ledger.actions() if a.context.get("expires_credit") == credit.context["credit_id"]]
    assert [a.state for a in ends] == [ActionState.PLANNED]
    return practice, deposit, credit, ends[0]


def assert_given_back_once_and_gone(practice, deposit, credit, end, before, at):
    """The deposit comes back now, once, with one notice; the credit's end is closed; a new
    booking inside the credit's window asks for a new deposit; nothing more at the end."""
    practice.tick(at + timedelta(minutes=5))
    [refund] = practice.all(ActionKind.REFUND, state=ActionState.DONE)
    assert (refund.amount, refund.context["target_action_id"]) == (NOK(270), deposit.id)
    assert practice.ledger.action(end.id).state in (ActionState.CANCELLED, ActionState.WAIVED)
    practice.put(event("e2", FRIDAY_10 + timedelta(days=1)), at + timedelta(hours=1))
    practice.run_until(at + timedelta(hours=1, minutes=5), FRIDAY_10 + timedelta(days=4), step=timedelta(hours=6))
    assert [a.state for a in practice.all(ActionKind.REFUND)].count(ActionState.DONE) == 1
    assert not [a for a in practice.ledger.actions() if a.context.get("uses_credit")], "the credit is gone"
    new = practice.one(ActionKind.CHARGE, policy="deposit", event_id="e2")
    assert new.amount == NOK(270), "the new booking asks for its own deposit"
    notices = [m for m in practice.to_client(before) if m["Subject"].startswith("Your refund")]
    assert len(notices) == 1 and "270.00" in practice.body(notices[0])


@pytest.mark.parametrize("which", ["credit", "end"])
def test_waiving_a_rescheduling_credit_or_its_end_by_id_gives_the_deposit_back_now(tmp_path, which):
    """The digest lists the credit's end ("kept for good on ..."): waiving that id does the
    same as waiving the credit itself."""
    practice, deposit, credit, end = credit_kept(tmp_path)
    at = FRIDAY_10 - timedelta(hours=60)
    before = set(practice.messages())
    assert practice.waive((credit if which == "credit" else end).id, at) == 0
    assert_given_back_once_and_gone(practice, deposit, credit, end, before, at)


def test_the_waive_mark_on_the_cancelled_appointment_gives_the_credit_back(tmp_path):
    practice, deposit, credit, end = credit_kept(tmp_path)
    at = FRIDAY_10 - timedelta(hours=60)
    before = set(practice.messages())
    practice.put(event("e1", FRIDAY_10, title="Massage #latecancel #waive"), at)
    assert_given_back_once_and_gone(practice, deposit, credit, end, before, at)


def test_a_refund_mode_credit_waived_is_refunded_now_and_not_again_at_its_end(tmp_path):
    practice, deposit, credit, end = credit_kept(tmp_path, mode="refund")
    at = FRIDAY_10 - timedelta(hours=60)
    before = set(practice.messages())
    practice.put(event("e1", FRIDAY_10, title="Massage #latecancel #waive"), at)
    assert_given_back_once_and_gone(practice, deposit, credit, end, before, at)


def test_a_credit_kept_for_good_can_still_be_waived(tmp_path, capsys):
    practice, deposit, credit, end = credit_kept(tmp_path)
    practice.run_until(end.due_at, end.due_at + timedelta(hours=1))
    assert practice.ledger.action(end.id).state is ActionState.DONE  # the deposit is kept for good
    at = end.due_at + timedelta(days=1)
    assert practice.waive(end.id, at) == 0
    practice.tick(at + timedelta(minutes=5))
    [refund] = practice.all(ActionKind.REFUND)
    assert (refund.amount, refund.state, refund.context["target_action_id"]) == (NOK(270), ActionState.DONE, deposit.id)
    assert practice.waive(credit.id, at + timedelta(hours=1)) == 1  # the same money: nothing more
    assert f"given back already ({refund.id})" in capsys.readouterr().err
    practice.tick(at + timedelta(hours=1, minutes=5))
    assert len(practice.all(ActionKind.REFUND)) == 1


def test_a_credit_already_used_for_a_new_booking_is_not_given_back_from_the_old_one(tmp_path, capsys):
    practice, deposit, credit, end = credit_kept(tmp_path)
    rebooked_at = FRIDAY_10 - timedelta(hours=60)
    practice.put(event("e2", FRIDAY_10 + timedelta(days=1)), rebooked_at)
    practice.tick(rebooked_at + timedelta(minutes=5))
    paid_by_credit = practice.one(ActionKind.CREDIT, event_id="e2")
    assert paid_by_credit.context["uses_credit"] == credit.context["credit_id"]

    assert practice.waive(credit.id, rebooked_at + timedelta(hours=1)) == 1
    assert paid_by_credit.id in capsys.readouterr().err, "the message names the deposit it now pays"
    practice.put(event("e1", FRIDAY_10, title="Massage #latecancel #waive"), rebooked_at + timedelta(hours=2))
    practice.tick(rebooked_at + timedelta(hours=2, minutes=5))
    assert practice.all(ActionKind.REFUND) == [], "the money is the new booking's deposit now"


# -- with Stripe ------------------------------------------------------------------------------


def test_with_stripe_a_kept_deposit_waived_by_id_is_refunded_on_the_card_once(
    tmp_path, stripe_proxy, stripe_provider, stripe_admin, stripe_client_with_card, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    sections = {
        "payments": {"provider": "stripe", "secret_key": {"env": KEY_ENV}, "api_base": stripe_proxy.base_url, "review_window": "0m"},
        "mail": {"quiet_hours": ""},  # on the real clock, quiet hours would make when fees and emails go depend on the hour the tests run
        "policies": DEPOSIT,
        "storage": {"ledger": str(tmp_path / "ledger.sqlite3")},
    }
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=3)
    calendar, mailer, ledger = MemoryCalendar("primary"), MemoryMailer(), Ledger(tmp_path / "ledger.sqlite3")
    engine = build_engine(practice_settings(**sections), now - timedelta(days=2), ledger=ledger,
                          calendars=[(calendar, NullWriteBack())], provider=stripe_provider, mailer=mailer)
    path = write_config(tmp_path / "slotguard.toml", config(**sections))
    ledger.record_sync("primary", None, now - timedelta(days=9))  # watched before: Ana's booking is a new one
    calendar.put(event("e1", start), now - timedelta(days=2))
    engine.tick(now - timedelta(days=2))
    deposit = [a for a in ledger.actions(kinds=[ActionKind.CHARGE]) if a.policy == "deposit"][0]
    assert deposit.state is ActionState.DONE and deposit.context["payment_status"] == "paid", deposit.last_error
    calendar.put(event("e1", start, title="Massage #noshow"), now - timedelta(hours=1))
    engine.tick(now - timedelta(minutes=50))
    engine.tick(now - timedelta(minutes=45))
    [kept] = [a for a in ledger.actions(kinds=[ActionKind.CREDIT]) if a.policy == "no_show"]
    assert kept.state is ActionState.DONE and kept.amount == NOK(270)

    assert main(["waive", kept.id, "--reason", "she was ill", "--config", path, "--now", (now - timedelta(minutes=30)).isoformat()]) == 0
    sent = set(mailer.sent)
    engine.tick(now - timedelta(minutes=25))
    calendar.put(event("e1", start, title="Massage #noshow #waive"), now - timedelta(minutes=20))
    engine.tick(now - timedelta(minutes=15))
    engine.tick(now - timedelta(minutes=10))

    [refund] = [a for a in ledger.actions(kinds=[ActionKind.REFUND]) if a.amount == NOK(270)]
    assert refund.state is ActionState.DONE and refund.context["payment_status"] == "paid", refund.last_error
    [made] = refunds_for(stripe_admin, deposit.external_id)
    assert (made["amount"], made["status"], made["metadata"]["slotguard_action_id"]) == (27000, "succeeded", refund.id)
    # The waive mark afterwards refunds the rest of the fee (630 NOK), and not the deposit again.
    notices = sorted(mailer.sent[key]["Subject"] for key in mailer.sent if key not in sent and mailer.sent[key]["Subject"].startswith("Your refund"))
    assert len(notices) == 2 and "270.00" in notices[0] and "630.00" in notices[1], notices
