"""What the policies decided reaches the client, in every language: for each policy that puts
a detail on a client email (docs/policies.md, slotguard/mail/decided.py), the real policies
and planner plan the email over an in-memory ledger, compose_email renders it, and the detail
(the amount or count, and its sentence in the client's language) is in both the text and the
HTML part.

The sentence is looked up in the locale's catalog, so an untranslated or missing sentence
fails here, and so does a policy that renames its context key (the template would drop it).
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from slotguard.domain.model import OPEN_STATES, ActionKind, ActionState
from slotguard.mail.catalogs import translations_for
from slotguard.mail.compose import compose_email
from slotguard.mail.decided import DETAILS, decided
from slotguard.mail.messages import BUNDLED_TEMPLATES, LOCALES, Renderer
from tests.unit.planning.test_policy_planner import MONDAY, K, World, fee_config, nok

ANA = "ana@example.com"


@dataclass(frozen=True)
class Said:
    """What an email must say: a message id of the catalog (its translation, cut at the first
    placeholder, must appear), and the values (amounts, counts) it carries."""

    msgid: str
    values: tuple = ()
    plural: str = ""
    count: int = 0


@dataclass(frozen=True)
class Case:
    enabled: tuple[str, ...]
    tables: dict
    story: Callable[[World], object]  # plays the story, returns the email action to render
    said: tuple[Said, ...]


def _world(case: Case, locale: str) -> World:
    return World(**fee_config(*case.enabled, **case.tables), mail={"client_locales": {ANA: locale}})


def _email(actions, template: str):
    return next(action for action in actions if action.template == template)


def _done(world: World, actions, at):
    for action in actions:
        if action.kind is not ActionKind.EMAIL and action.state in OPEN_STATES:
            action.state = ActionState.DONE
            action.executed_at = at
            action.context.setdefault("payment_status", "paid")
            world.ledger.update_action(action, at, "done")


def deposit_booking(world: World):
    _, booked = world.book("b1", MONDAY + timedelta(days=5), at=MONDAY)
    return _email(booked, "booking_confirmation")


def prepayment_booking(world: World):
    world.happen(K.NO_SHOW, world.appointment("n1", MONDAY), MONDAY)
    world.carry_out(MONDAY + timedelta(days=1))
    _, booked = world.book("b1", MONDAY + timedelta(days=10), at=MONDAY + timedelta(days=2))
    return _email(booked, "booking_confirmation")


def credit_booking(world: World):
    first, booked = world.book("a1", MONDAY + timedelta(days=5), at=MONDAY)
    _done(world, booked, MONDAY)
    world.happen(K.CANCELLED_BY_CLIENT, first, MONDAY + timedelta(days=1))
    world.carry_out(MONDAY + timedelta(days=1, hours=1))
    _, rebooked = world.book("b1", MONDAY + timedelta(days=7), at=MONDAY + timedelta(days=2))
    return _email(rebooked, "booking_confirmation")


def paid_ahead_booking(world: World):
    first, booked = world.book("a1", MONDAY, at=MONDAY - timedelta(days=3))
    world.happen(K.ATTENDED, first, MONDAY + timedelta(hours=2))
    world.carry_out(MONDAY + timedelta(hours=3))
    _, rebooked = world.book("b1", MONDAY + timedelta(days=7), at=MONDAY + timedelta(days=1))
    return _email(rebooked, "booking_confirmation")


def package_booking(world: World):
    _, booked = world.book("b1", MONDAY + timedelta(days=5), at=MONDAY)
    return _email(booked, "booking_confirmation")


def package_no_show(world: World):
    planned = world.happen(K.NO_SHOW, world.appointment("n1", MONDAY), MONDAY + timedelta(hours=1))
    world.carry_out(MONDAY + timedelta(days=1))
    return _email(planned, "no_show_followup")


def prospect_no_show(world: World):
    planned = world.happen(K.NO_SHOW, world.appointment("n1", MONDAY, title="Discovery call"), MONDAY + timedelta(hours=1))
    world.carry_out(MONDAY + timedelta(days=1))
    return _email(planned, "no_show_followup")


def prospect_late_cancel(world: World):
    planned = world.happen(K.CANCELLED_BY_CLIENT, world.appointment("n1", MONDAY, title="Discovery call"), MONDAY - timedelta(hours=3))
    world.carry_out(MONDAY + timedelta(days=1))
    return _email(planned, "late_cancel_notice")


def goodwill_booking(world: World):
    first, booked = world.book("a1", MONDAY + timedelta(days=5), at=MONDAY)
    world.happen(K.CANCELLED_BY_PRACTITIONER, first, MONDAY + timedelta(days=1))
    world.carry_out(MONDAY + timedelta(days=1, hours=1))
    _, rebooked = world.book("b1", MONDAY + timedelta(days=9), at=MONDAY + timedelta(days=2))
    return _email(rebooked, "booking_confirmation")


PACKAGE = {"packages": [{"email": ANA, "sessions": 10, "since": "2026-01-05T00:00:00+01:00"}]}
CASES = {
    "deposit": Case(("late_cancel", "no_show", "deposit"), {"deposit": {"amount": "30%"}}, deposit_booking, (
        Said("To hold this time for you, we ask for a deposit of %(deposit_money)s; it counts towards the price of the session.", (nok(270),)),)),
    "deposit_hold": Case(("late_cancel", "no_show", "deposit"), {"deposit": {"amount": "30%", "kind": "hold"}}, deposit_booking, (
        Said("To hold this time for you, a deposit of %(deposit_money)s will be reserved on your card shortly before the session; it counts towards the price of the session.", (nok(270),)),)),
    "repeat_offender_prepay": Case(("late_cancel", "no_show", "repeat_offender_prepay"), {"repeat_offender_prepay": {"incidents": 1}}, prepayment_booking, (
        Said("Because of the recent missed or late-cancelled sessions, we ask you to pay for this session in advance: %(prepayment_money)s. It pays for the session itself and is not an extra charge; you will get a separate email about the payment.", (nok(900),)),)),
    "reschedule_credit": Case(("late_cancel", "deposit", "reschedule_credit"), {"deposit": {"amount": "30%"}}, credit_booking, (
        Said("Your deposit of %(credit_money)s is already paid: the credit from the booking you cancelled in good time covers it.", (nok(270),)),)),
    "rolling_half_deposit": Case(("late_cancel", "no_show", "rolling_half_deposit"), {}, paid_ahead_booking, (
        Said("You have already paid %(paid_ahead_money)s ahead for this session; it counts towards its price.", (nok(450),)),)),
    "package_credits_booking": Case(("no_show", "package_credits"), {"package_credits": PACKAGE}, package_booking, (
        Said("This session comes from your package: you have %(count)s session left in it, this one included.", (10,),
             "This session comes from your package: you have %(count)s sessions left in it, this one included.", 10),)),
    "package_credits_notice": Case(("no_show", "package_credits"), {"package_credits": PACKAGE}, package_no_show, (
        Said("Instead of a fee, one session of your package counts as used: you have %(count)s session left in it.", (9,),
             "Instead of a fee, one session of your package counts as used: you have %(count)s sessions left in it.", 9),)),
    "prospect_second_chance_no_show": Case(("no_show", "prospect_second_chance"), {}, prospect_no_show, (
        Said("As this was to be our first meeting, there is no fee: things come up, and we would still very much like to meet you."),
        Said("We would be glad to find a new time for you."))),
    "prospect_second_chance_late_cancel": Case(("late_cancel", "prospect_second_chance"), {}, prospect_late_cancel, (
        Said("As this was to be our first meeting, there is no fee: things come up, and we would still very much like to meet you."),)),
    "practitioner_cancel_refund": Case(("no_show", "practitioner_cancel_refund"), {"practitioner_cancel_refund": {"goodwill": "10%"}}, goodwill_booking, (
        Said("Because we had to cancel one of your sessions, you get %(percent)s%% off the price of this one.", (10,)),)),
}


def translated_start(locale: str, said: Said) -> str:
    """The locale's translation of the message, up to its first placeholder (the fixed words)."""
    translations = translations_for(locale, BUNDLED_TEMPLATES, None)
    text = translations.ngettext(said.msgid, said.plural, said.count) if said.plural else translations.gettext(said.msgid)
    assert locale == "en" or text != said.msgid, f"{locale}: not translated: {said.msgid!r}"
    return re.split(r"%\(\w+\)s", text)[0].strip()


def visible(html: str) -> str:
    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))


def flat(text: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", text)


def rendered(case: Case, locale: str) -> tuple[str, str]:
    world = _world(case, locale)
    email = case.story(world)
    renderer = Renderer(world.settings.practice.locale, world.settings.practice.timezone)
    message = compose_email(world.settings, world.policies, renderer, world.ledger, email, MONDAY + timedelta(days=3))
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def value_text(locale: str, value) -> str:
    if isinstance(value, int):
        return str(value)
    return Renderer("en", "Europe/Oslo").env_for(locale).filters["money"](value)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_what_each_policy_decided_is_in_the_text_and_the_html_in_every_locale(name, locale):
    case = CASES[name]
    text, html = rendered(case, locale)
    for part, body in (("text", flat(text)), ("html", flat(visible(html)))):
        for said in case.said:
            start = flat(translated_start(locale, said))
            assert start in body, f"{name} {locale} {part}: {start!r} missing in\n{body}"
            for value in said.values:
                assert value_text(locale, value) in body, f"{name} {locale} {part}: {value_text(locale, value)!r} missing"


@pytest.mark.parametrize("locale", ["he"])
def test_hebrew_html_isolates_the_amounts_the_policies_decided(locale):
    _, html = rendered(CASES["deposit"], locale)
    assert f"<bdi>{value_text(locale, nok(270))}</bdi>" in html


def test_a_prepayment_replaces_the_deposit_and_a_credit_paid_deposit_is_not_asked_again():
    both = decided({"deposit": nok(270).as_json(), "deposit_kind": "charge", "prepayment_required": True, "prepayment": nok(900).as_json()})
    assert both == {"prepayment_required": True, "prepayment": nok(900)}
    credit = decided({"deposit": nok(270).as_json(), "deposit_kind": "charge", "deposit_paid_by_credit": nok(270).as_json()})
    assert credit == {"deposit_paid_by_credit": nok(270)}
    assert decided({"goodwill_discount": "10%", "unknown": 1, "paid_ahead": "not money"}) == {"goodwill_discount": 10}


def test_every_declared_detail_is_said_by_a_template_or_is_a_switch():
    """A declared key no template reads would be a promise to the client nobody keeps."""
    templates = "".join(path.read_text() for path in BUNDLED_TEMPLATES.glob("*.j2"))
    switches = {"invite_rebooking", "written_off"}  # said by the notices' existing sentences
    unread = [detail.key for detail in DETAILS if f"decided.{detail.key}" not in templates and detail.key not in switches]
    assert unread == []
