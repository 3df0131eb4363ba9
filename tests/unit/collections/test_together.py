"""Collections speak to a client, not to a fee (slotguard/collections/together.py): one payment
email a client a day, and one reminder listing every open fee when steps fall due together."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from slotguard.collections.debts import COLLECTIONS, STEP
from slotguard.collections.decide import evaluate
from slotguard.collections.ladder import _session_of
from slotguard.collections.together import COMBINED_INTO, FEES, combine, held_until, refresh
from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.intake.normalize import normalize
from slotguard.intake.tracker import Tracked
from slotguard.store.ledger import Ledger
from tests.support.builders import event
from tests.support.builders import settings as make_settings
from tests.unit.collections.test_collections_ladder import LENA, NOK, STRIPE, T0, config, fee

OSLO = ZoneInfo("Europe/Oslo")


def second_fee(days_later: int = 11, amount: int = 60000) -> Action:
    first = fee()
    return replace(first, id="act_fee2", event_id="a2", amount=Money(amount, NOK), context=dict(first.context),
                   executed_at=T0 + timedelta(days=days_later), appointment_start=T0 + timedelta(days=days_later, hours=-16))


def email(template: str, at: datetime, state: ActionState = ActionState.DONE, **fields) -> Action:
    first = fee()
    return replace(first, id=f"act_mail_{template}_{at.isoformat()}", kind=ActionKind.EMAIL, state=state, template=template,
                   amount=None, due_at=at, executed_at=at if state is ActionState.DONE else None, context=dict(fields.pop("context", {})),
                   **fields)


def test_a_payment_email_today_holds_a_new_step_until_the_next_local_midnight():
    now = datetime(2026, 3, 19, 14, 0, tzinfo=OSLO)
    reminder = email("payment_reminder_1", datetime(2026, 3, 19, 2, 0, tzinfo=OSLO), policy=COLLECTIONS, context={"role": STEP})
    assert held_until([reminder], now, OSLO) == datetime(2026, 3, 20, 0, 0, tzinfo=OSLO)
    yesterday = replace(reminder, executed_at=datetime(2026, 3, 18, 23, 59, tzinfo=OSLO))
    assert held_until([yesterday], now, OSLO) is None, "a day is the practice's day, not the UTC one"
    cancelled = replace(reminder, state=ActionState.CANCELLED)
    assert held_until([cancelled], now, OSLO) is None, "an email combined into another was never sent"
    # A fee's own notice (an email reporting on the fee charge) due later today counts too.
    notice = email("no_show_followup", datetime(2026, 3, 19, 20, 0, tzinfo=OSLO), ActionState.PLANNED, reports_on=fee().id)
    assert held_until([fee(), notice], now, OSLO) == datetime(2026, 3, 20, 0, 0, tzinfo=OSLO)
    tomorrow = replace(notice, due_at=datetime(2026, 3, 20, 2, 0, tzinfo=OSLO))
    assert held_until([fee(), tomorrow], now, OSLO) is None
    lifecycle = email("reminder", datetime(2026, 3, 19, 9, 0, tzinfo=OSLO), policy="lifecycle")
    assert held_until([lifecycle], now, OSLO) is None, "a session reminder is not about paying"


def test_a_held_step_waits_for_the_next_day_but_the_write_off_does_not():
    due = T0 + timedelta(days=3)
    held = evaluate(fee(), [], config(), due, not_before=due + timedelta(hours=5))
    assert held.new == [] and held.next_at == due + timedelta(hours=5)
    assert [a.template for a in evaluate(fee(), [], config(), due + timedelta(hours=5), not_before=due + timedelta(hours=5)).new] == ["payment_reminder_1"]
    last = evaluate(fee(), [], config(steps=[{"after": "3d", "action": "writeoff_or_refer"}], writeoff_below="5000 NOK"), due,
                    not_before=due + timedelta(hours=5))
    assert last.state == "written_off", "writing a debt off sends the client nothing: never held"


def steps_due_together(caps=STRIPE):
    """Fee 1 at its second step (with a card retry) and fee 2 at its first, at the same moment."""
    now = T0 + timedelta(days=14)
    one, two = fee(payment_status="unpaid"), second_fee()
    first_step = evaluate(one, [], config(), T0 + timedelta(days=3), caps, LENA).new
    decisions = [evaluate(one, first_step, config(), now, caps, LENA), evaluate(two, [], config(), now, caps, LENA)]
    sessions = {one.id: {"service": "massage", "start": "2026-03-04T09:00:00Z", "timezone": "Europe/Oslo"},
                two.id: {"service": "massage", "start": "2026-03-15T09:00:00Z", "timezone": "Europe/Oslo"}}
    combine(decisions, lambda f: sessions[f.id])
    return decisions


def test_steps_due_together_become_one_email_listing_every_fee_and_each_fee_s_step_counts():
    first, second = steps_due_together()
    [lead] = [a for a in first.new if a.kind is ActionKind.EMAIL]
    [other] = [a for a in second.new if a.kind is ActionKind.EMAIL]
    assert lead.template == "payment_reminder_2" and lead.state is ActionState.PLANNED, "the firmest step leads"
    assert [(e["fee"], e["balance"]["minor"]) for e in lead.context[FEES]] == [("act_fee", 90000), ("act_fee2", 60000)]
    assert lead.context["total"] == {"minor": 150000, "currency": NOK} and lead.context["totals"] == [lead.context["total"]]
    assert [e["start"] for e in lead.context[FEES]] == ["2026-03-04T09:00:00Z", "2026-03-15T09:00:00Z"]
    assert other.template == "payment_reminder_1" and other.state is ActionState.CANCELLED
    assert other.context[COMBINED_INTO] == lead.id
    # Fee 2's ladder goes on from its first step: next comes its second reminder, not the first again.
    later = evaluate(second_fee(), second.new, config(), T0 + timedelta(days=11 + 14), STRIPE, LENA)
    assert [a.template for a in later.new if a.kind is ActionKind.EMAIL] == ["payment_reminder_2"]


def test_one_fee_alone_is_not_listed():
    now = T0 + timedelta(days=3)
    decisions = [evaluate(fee(), [], config(), now)]
    combine(decisions, lambda f: {})
    [email_alone] = decisions[0].new
    assert FEES not in email_alone.context and email_alone.state is ActionState.PLANNED


def test_before_it_goes_the_list_is_read_again_and_waits_for_a_card_retry():
    first, second = steps_due_together()
    [lead] = [a for a in first.new if a.kind is ActionKind.EMAIL]
    # Fee 2's own card retry, planned by an earlier step and not carried out yet.
    retry_two = replace(fee(), id="act_retry2", policy=COLLECTIONS, state=ActionState.PLANNED,
                        context={"role": "retry", "collects": "act_fee2"})
    decisions = {"act_fee": first, "act_fee2": second}
    retries = {"act_fee": [a for a in first.new if a.kind is ActionKind.CHARGE], "act_fee2": [retry_two]}
    assert refresh(lead, decisions.get, retries.__getitem__) == "wait", "fee 2's card retry has not run yet"
    retry_two.state = ActionState.DONE
    paid = replace(second, state="settled", balance=Money(0, NOK))
    assert refresh(lead, {"act_fee": first, "act_fee2": paid}.get, retries.__getitem__) == ""
    assert [e["fee"] for e in lead.context[FEES]] == ["act_fee"] and lead.context["total"]["minor"] == 90000
    gone = replace(first, state="settled", balance=Money(0, NOK))
    assert refresh(lead, {"act_fee": gone, "act_fee2": paid}.get, retries.__getitem__) != ""


def test_a_combined_reminder_names_each_session_by_its_label_in_the_clients_language():
    """A service label given as a table by language (services.NAME.label) is listed in the
    language the client reads, never as the table itself."""
    configured = make_settings(
        services={"default": {"price": "900 NOK", "label": {"nb": "massasje", "de": "Massage"}}},
        mail={"client_locales": {"ana@example.com": "de"}},
    )
    start = datetime(2026, 3, 4, 10, 0, tzinfo=ZoneInfo("Europe/Oslo"))
    appointment = normalize(event("a1", start, client="ana@example.com"), "primary", configured, start - timedelta(days=3)).appointment
    ledger = Ledger(":memory:")
    ledger.save_tracked(Tracked(appointment, "", "", start - timedelta(days=3)))
    assert _session_of(ledger, configured)(fee())["service"] == "Massage"
