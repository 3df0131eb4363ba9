"""Features add to emails through one hook, and composing an email makes no call: the
card-setup link is fetched from the provider before rendering, the digest reads the numbers a
policy wrote beside its note, and a record a policy marks `pending_until_due` is listed for
review, whatever policy made it. An in-memory calendar, ledger and mailer; the real engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import slotguard.run.email_effects as email_effects
from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.practitioner.digest import digest_details
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
SETUP_LINK = "https://pay.example.com/setup/ana"


class CardProvider(RecordOnlyProvider):
    """A provider that can make card-setup links, and fails the test when it is called while
    an email is being composed."""

    def __init__(self):
        self.composing = False
        self.calls: list[str] = []

    def _called(self, what: str) -> None:
        if self.composing:
            raise AssertionError(f"composing an email called the provider ({what})")
        self.calls.append(what)

    def has_card_on_file(self, client_email: str) -> bool:
        self._called("has_card_on_file")
        return False

    def card_setup_link(self, client_email: str, client_name: str = "", card_terms: str = "") -> str:
        self._called("card_setup_link")
        self.card_terms = card_terms
        return SETUP_LINK


def test_the_card_setup_link_is_fetched_before_the_email_is_composed_and_composing_makes_no_call(monkeypatch):
    provider = CardProvider()
    real_compose = email_effects.compose_email

    def compose_watched(*args, **kwargs):
        provider.composing = True
        try:
            return real_compose(*args, **kwargs)
        finally:
            provider.composing = False

    monkeypatch.setattr(email_effects, "compose_email", compose_watched)
    calendar, mailer, ledger = MemoryCalendar("primary"), MemoryMailer(), Ledger(":memory:")
    engine = build_engine(settings(mail={"digest_hour": -1}), MONDAY, ledger=ledger, calendars=[(calendar, NullWriteBack())],
                          provider=provider, mailer=mailer)
    calendar.put(event("e1", WEDNESDAY_10), MONDAY)
    engine.tick(MONDAY)
    [confirmation] = [a for a in ledger.actions() if a.template == "booking_confirmation"]
    assert ledger.action(confirmation.id).state is ActionState.DONE, "the email went out"
    assert SETUP_LINK in mailer.sent[confirmation.id].get_body(("plain",)).get_content(), "the fetched link is in the email"
    assert provider.calls == ["has_card_on_file", "card_setup_link"], "fetched once, before composing"
    text = mailer.sent[confirmation.id].get_body(("plain",)).get_content()
    assert "12 hours" in provider.card_terms and "Not coming without letting us know" in provider.card_terms, \
        "the card-setup page says what the card may be charged for and when, with the policy"
    assert provider.card_terms.splitlines()[0] in text, "the email says the same before the card is saved"


def _noted(action_id: str, state: ActionState, kind: ActionKind, **context) -> Action:
    return Action(
        id=action_id, kind=kind, state=state, policy="some_policy", reason="why", amount=Money(45000, "NOK"),
        calendar_id="primary", event_id="e1", client_email="bo@example.com", client_name="Bo Ek", happening_key="k",
        due_at=MONDAY + timedelta(days=3), created_at=MONDAY - timedelta(hours=1), updated_at=MONDAY - timedelta(hours=1),
        appointment_start=MONDAY + timedelta(days=1), context=context,
    )


@pytest.mark.parametrize("numbers, shown", [
    ({"incidents": 4, "window_days": 90}, (4, 90)),
    ({}, (None, None)),  # a note without counts is shown as written, whatever its words
])
def test_the_digest_reads_the_counts_a_policy_wrote_beside_its_note(numbers, shown):
    ledger = Ledger(":memory:")
    note = "bo@example.com: 4 late cancellations or no-shows in 90 days"  # the words are not parsed
    ledger.add_action(_noted("act_noted00000000000001", ActionState.PENDING_REVIEW, ActionKind.CHARGE,
                             practitioner_note=note, **numbers))
    [row] = digest_details(settings(), ledger, MONDAY)["talk_to"]
    assert (row["incidents"], row["days"]) == shown
    assert row["note"] == "4 late cancellations or no-shows in 90 days"


def test_a_record_a_policy_marks_pending_until_due_is_listed_for_review_until_then():
    ledger = Ledger(":memory:")
    ledger.add_action(_noted("act_kept000000000000001", ActionState.PLANNED, ActionKind.CREDIT, purpose="kept_later", pending_until_due=True))
    ledger.add_action(_noted("act_other00000000000001", ActionState.PLANNED, ActionKind.CREDIT, purpose="kept_later"))
    pending = digest_details(settings(), ledger, MONDAY)["pending"]
    assert [row["id"] for row in pending] == ["act_kept000000000000001"]
    assert pending[0]["charge_at"] == MONDAY + timedelta(days=3)


def test_mail_composition_imports_no_feature_and_no_adapter():
    """What an email says comes from the hook's answers: composing imports neither the
    features (digest, evidence, payments, collections) nor the executor nor an adapter."""
    import ast
    from pathlib import Path

    mail = Path(__file__).resolve().parents[3] / "slotguard" / "mail"
    forbidden = ("slotguard.practitioner", "slotguard.payments", "slotguard.collections", "slotguard.run", "integration", "plugins")
    for path in sorted(mail.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
