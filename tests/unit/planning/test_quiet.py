"""Which actions quiet hours hold (slotguard/planning/quiet.py): emails to clients and
charges wait for the morning; mail to the practitioner, the answer to a booking just made,
mail about a session that starts before the morning and what the practitioner asks for now
do not."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from slotguard.domain.model import ActionKind, ActionSubject, Appointment, Client, new_action
from slotguard.domain.money import Money
from slotguard.planning.quiet import AT_ONCE, allowed_at
from tests.support.builders import settings

OSLO = ZoneInfo("Europe/Oslo")
NIGHT = datetime(2026, 11, 27, 0, 5, tzinfo=OSLO)
MORNING = datetime(2026, 11, 27, 8, 0, tzinfo=OSLO)
SETTINGS = settings()


def appointment(start: datetime, updated: datetime, zone: str = "Europe/Oslo") -> Appointment:
    return Appointment("primary", "e1", Client("ana@example.com", "Ana"), start, start + timedelta(hours=1), zone, "confirmed",
                       Money(90000, "NOK"), "default", "Massage", updated)


def action(kind: ActionKind, template: str | None = None, to: str = "ana@example.com", context: dict | None = None, event: str = "e1"):
    subject = ActionSubject("primary", event, to, "Ana")
    return new_action(subject, kind, "no_show", "test", key="k", now=NIGHT, template=template, context=context,
                      amount=Money(90000, "NOK") if kind is ActionKind.CHARGE else None)


YESTERDAY = appointment(NIGHT - timedelta(hours=13), NIGHT - timedelta(days=3))


def test_a_fee_and_its_notice_due_at_night_wait_for_the_morning():
    assert allowed_at(SETTINGS, action(ActionKind.CHARGE), YESTERDAY, NIGHT) == MORNING
    assert allowed_at(SETTINGS, action(ActionKind.EMAIL, "no_show_followup"), YESTERDAY, NIGHT) == MORNING
    assert allowed_at(SETTINGS, action(ActionKind.EMAIL, "payment_reminder_1"), YESTERDAY, NIGHT) == MORNING
    assert allowed_at(SETTINGS, action(ActionKind.EMAIL, "no_show_followup"), YESTERDAY, MORNING) == MORNING


def test_the_clients_time_zone_counts_else_the_practices():
    in_new_york = appointment(NIGHT - timedelta(hours=13), NIGHT - timedelta(days=3), zone="America/New_York")
    assert allowed_at(SETTINGS, action(ActionKind.CHARGE), in_new_york, NIGHT) == NIGHT  # 18:05 there
    assert allowed_at(SETTINGS, action(ActionKind.CHARGE), None, NIGHT) == MORNING  # unknown appointment: the practice's


def test_mail_to_the_practitioner_and_money_given_back_are_not_held():
    assert allowed_at(SETTINGS, action(ActionKind.EMAIL, "payment_referral", to="lena@example.com"), YESTERDAY, NIGHT) == NIGHT
    assert allowed_at(SETTINGS, action(ActionKind.EMAIL, "practitioner_digest", to="lena@example.com", event=""), None, NIGHT) == NIGHT
    assert allowed_at(SETTINGS, action(ActionKind.REFUND), YESTERDAY, NIGHT) == NIGHT


def test_a_booking_made_just_now_is_confirmed_at_once_one_found_later_waits():
    next_week = NIGHT + timedelta(days=7)
    just_made = appointment(next_week, NIGHT - timedelta(minutes=10))
    assert allowed_at(SETTINGS, action(ActionKind.EMAIL, "booking_confirmation"), just_made, NIGHT) == NIGHT
    assert allowed_at(SETTINGS, action(ActionKind.EMAIL, "deposit_request"), just_made, NIGHT) == NIGHT
    assert allowed_at(SETTINGS, action(ActionKind.CHARGE, context={"purpose": "deposit"}), just_made, NIGHT) == NIGHT
    found_late = appointment(next_week, NIGHT - timedelta(hours=6))  # made at 18:05, seen after a restart
    assert allowed_at(SETTINGS, action(ActionKind.EMAIL, "booking_confirmation"), found_late, NIGHT) == MORNING
    # A fee is no answer to a booking, however recent the event's change.
    assert allowed_at(SETTINGS, action(ActionKind.CHARGE), appointment(NIGHT - timedelta(hours=3), NIGHT), NIGHT) == MORNING


def test_mail_about_a_session_before_the_morning_goes_at_once():
    early = appointment(NIGHT + timedelta(hours=7), NIGHT - timedelta(days=3))  # 07:05
    assert allowed_at(SETTINGS, action(ActionKind.EMAIL, "reminder"), early, NIGHT) == NIGHT
    later = appointment(NIGHT + timedelta(hours=9), NIGHT - timedelta(days=3))  # 09:05
    assert allowed_at(SETTINGS, action(ActionKind.EMAIL, "reminder"), later, NIGHT) == MORNING


def test_what_the_practitioner_asks_for_now_and_no_quiet_hours_hold_nothing():
    assert allowed_at(SETTINGS, action(ActionKind.CHARGE, context={AT_ONCE: True}), YESTERDAY, NIGHT) == NIGHT
    assert allowed_at(settings(mail={"quiet_hours": ""}), action(ActionKind.CHARGE), YESTERDAY, NIGHT) == NIGHT
    lunch = settings(mail={"quiet_hours": "12:00-13:00"})
    assert allowed_at(lunch, action(ActionKind.CHARGE), YESTERDAY, NIGHT.replace(hour=12, minute=30)) == NIGHT.replace(hour=13, minute=0)


def test_the_notice_of_a_charge_taken_just_before_the_night_goes_with_it():
    notice = action(ActionKind.EMAIL, "no_show_followup")
    evening = NIGHT.replace(hour=21, minute=1) - timedelta(days=1)
    assert allowed_at(SETTINGS, notice, YESTERDAY, evening, charged_at=evening - timedelta(minutes=2)) == evening
    assert allowed_at(SETTINGS, notice, YESTERDAY, evening, charged_at=evening - timedelta(hours=2)) == MORNING
