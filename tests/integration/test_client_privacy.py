"""`client export` and `client forget` on a real ledger (SQLite, or PostgreSQL under
SLOTGUARD_TEST_BACKEND=postgresql) after a year of a client's history, made by the engine
itself from an in-memory calendar, with a real outbox folder.

What a practitioner relies on: the export holds every fee the ledger has for the client;
after forgetting, nothing Slotguard wrote under the data folder (the ledger's file bytes, or
every row of its PostgreSQL schema; the outbox) holds the client's address or name, while
the other clients' data and the money records the law asks for (under a pseudonym) stay;
open fees are waived first; the client's old events, read again, plan nothing; and a new
booking from the same address is a new client.
"""

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
from slotguard.cli.clients import forget_now
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import OPEN_STATES, ActionKind, ActionState
from slotguard.policies.loading import load_enabled
from slotguard.privacy.client_export import export_client, summary_html
from slotguard.privacy.client_forget import erasures
from slotguard.privacy.client_records import find_client
from slotguard.privacy.pseudonyms import is_pseudonym
from slotguard.run.wiring import build_engine, make_renderer
from slotguard.store.ledger import Ledger
from slotguard.store.schema import TABLES
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
FIRST = datetime(2025, 11, 3, 9, 0, tzinfo=OSLO)  # a Monday
ANA, ANA_NAME = "ana_s@example.com", "Ana Sølvberg"  # `_` is LIKE's one-character wildcard
BEA, BEA_NAME = "anaxs@example.com", "Bea Berg"  # what `LIKE 'ana_s@example.com'` would also match
SESSIONS = 26  # every other week for a year
NO_SHOWS = {2, 7, 12, 17, 22, 25}  # the last one's fee is still waiting for review at the end
PAID = 7  # the client paid this one's fee to the practitioner (mark-paid)


class Practice:
    def __init__(self, tmp_path):
        self.data = tmp_path / "var"
        self.settings = settings(
            storage={"data_dir": str(self.data)},
            mail={"transport": "outbox-dir", "outbox_dir": str(self.data / "outbox"), "client_locales": {ANA: "de"}},
        )
        self.calendar = MemoryCalendar("primary")
        self.ledger = Ledger(self.settings.storage.location)
        self.ledger.record_sync("primary", None, FIRST - timedelta(days=30))
        self.engine = build_engine(self.settings, FIRST, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
                                   provider=RecordOnlyProvider(), mailer=OutboxDirMailer(self.data / "outbox"))

    def year(self):
        """Ana's sessions every other week for a year, Bea's the day after each; returns the
        last moment ticked (every tick in time order, as a daemon's)."""
        for number in range(SESSIONS):
            ana, bea = FIRST + timedelta(weeks=2 * number), FIRST + timedelta(weeks=2 * number, days=1)
            self.calendar.put(event(f"ana{number}", ana, client=ANA, name=ANA_NAME), ana - timedelta(days=3))
            self.calendar.put(event(f"bea{number}", bea, client=BEA, name=BEA_NAME), ana - timedelta(days=3))
            self.engine.tick(ana - timedelta(days=3))
            self.engine.tick(ana - timedelta(hours=20))
            if number in NO_SHOWS:
                self.calendar.put(event(f"ana{number}", ana, client=ANA, name=ANA_NAME, title="Massage #noshow"), ana + timedelta(hours=1))
            self.engine.tick(ana + timedelta(hours=3))
            if number == SESSIONS - 1:
                return ana + timedelta(hours=3)  # the last fee stays in its review window
            if number == 3:
                self.calendar.put(event(f"bea{number}", bea, client=BEA, name=BEA_NAME, title="Massage #noshow"), bea + timedelta(hours=1))
            self.engine.tick(bea + timedelta(hours=3))
            self.engine.tick(ana + timedelta(days=2, hours=2))
            if number == PAID:
                [fee] = self.ledger.actions(kinds=[ActionKind.CHARGE], event_id=f"ana{number}")
                assert self.ledger.mark_paid(fee.id, ana + timedelta(days=3), "paid by bank transfer") is not None
        raise AssertionError("unreachable")


@pytest.fixture
def practice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return Practice(tmp_path)


def ledger_fees(ledger, address):
    """The ids of every non-email action of `address`, read with SQL of the test's own."""
    rows = ledger.db.execute("SELECT id, kind, client_email FROM actions ORDER BY seq").fetchall()
    return {row["id"] for row in rows if row["client_email"].lower() == address and row["kind"] != "email"}


def everything_stored(practice) -> str:
    """Every file under the data folder (the SQLite ledger's bytes too), and on PostgreSQL
    every row of every table of the ledger's schema, as one lower-cased text (messages both
    as stored and decoded)."""
    parts = []
    for path in sorted(practice.data.rglob("*")):
        if path.is_file():
            parts.append(path.read_bytes().decode("utf-8", errors="replace"))
            if path.suffix == ".eml":  # and decoded: a quoted-printable or base64 part hides a name from the bytes
                parts.append(decoded(path))
    if practice.ledger.place.postgres:
        for table in TABLES:
            parts += [json.dumps(dict(row), default=str) for row in practice.ledger.db.execute(f"SELECT * FROM {table}")]
    return "\n".join(parts).lower()


def decoded(path) -> str:
    """A message's headers and text parts, decoded."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    texts = [f"{name}: {value}" for name, value in message.items()]
    texts += [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    return "\n".join(texts)


def outbox_texts(practice) -> list[tuple[str, str]]:
    """(To, plain text) of every message in the outbox."""
    found = []
    for path in sorted((practice.data / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found.append((str(message["To"]), message.get_body(("plain",)).get_content()))
    return found


def traces(text: str, address: str, name: str) -> list[str]:
    spelled = {address, name.lower(), json.dumps(name.lower())[1:-1], json.dumps(name)[1:-1].lower()}
    return sorted(word for word in spelled if word in text)


@pytest.mark.timeout(600)
def test_the_export_holds_every_fee_of_a_year_and_the_messages_as_sent(practice):
    now = practice.year()
    fees = ledger_fees(practice.ledger, ANA)
    charges = [a for a in practice.ledger.actions(kinds=[ActionKind.CHARGE]) if a.client_email == ANA]
    assert len(charges) == len(NO_SHOWS), "one fee per no-show the test marked"

    sent_ids = [a.id for a in practice.ledger.actions(kinds=[ActionKind.EMAIL], states=[ActionState.DONE]) if a.client_email == ANA]
    (practice.data / "outbox" / f"{sent_ids[0]}.eml").unlink()  # as with another transport: only the action is kept
    client = find_client(practice.ledger, "  ANA_S@Example.COM ", practice.settings)
    policies = load_enabled(practice.settings)
    renderer = make_renderer(practice.settings, policies, check=False)
    data = export_client(practice.settings, practice.ledger, client, now, renderer=renderer, policies=policies)

    assert {entry["id"] for entry in data["money"]} == fees and fees
    assert {e["event_id"] for e in data["money"] if e["kind"] == "charge"} == {f"ana{n}" for n in NO_SHOWS}
    assert all(entry["history"] for entry in data["money"])
    assert len(data["appointments"]) == SESSIONS and all(a["event_id"].startswith("ana") for a in data["appointments"])
    assert {m["kind"] for m in data["marks_read"]} >= {"booked", "no_show", "attended"}
    sent = {m["id"]: m for m in data["emails"] if m["state"] == "done"}
    assert set(sent) == set(sent_ids)
    rendered = sent.pop(sent_ids[0])
    assert rendered["source"] == "rendered" and "Ana" in rendered["text"] and rendered["subject"] and "composed again" in rendered["note"]
    assert sent and all(m["source"] == "outbox" and m["text"] for m in sent.values())
    assert not any(BEA in json.dumps(entry) for entry in data["money"] + data["emails"] + data["appointments"])
    assert data["client"]["names"] == [ANA_NAME] and data["client"]["locale"] == "de"
    json.dumps(data)  # plain JSON

    page = summary_html(practice.settings, renderer, data)
    assert 'lang="de"' in page and "Gebühren und Zahlungen" in page and "900,00" in page  # German words, German amounts


@pytest.mark.timeout(600)
def test_forget_waives_open_fees_then_leaves_no_trace_and_a_new_booking_is_a_new_client(practice):
    now = practice.year()
    open_fee = [a for a in practice.ledger.actions(kinds=[ActionKind.CHARGE], event_id=f"ana{SESSIONS - 1}")][0]
    assert open_fee.state in OPEN_STATES
    owed = [a for a in practice.ledger.actions(kinds=[ActionKind.CHARGE]) if a.client_email == ANA and a.context.get("payment_status") == "receivable"]
    assert len(owed) == len(NO_SHOWS) - 2  # every fee but the open one and the paid one is owed
    before = everything_stored(practice)
    assert traces(before, ANA, ANA_NAME) and traces(before, BEA, BEA_NAME)
    kept = ledger_fees(practice.ledger, ANA)

    assert forget_now(practice.settings, practice.engine, "Ana_S@example.com", now, "lena") == 0

    after = everything_stored(practice)
    assert traces(after, ANA, ANA_NAME) == []
    assert traces(after, BEA, BEA_NAME) == [BEA, BEA_NAME.lower()], "Bea's address is no LIKE match of Ana's"
    ledger = practice.ledger
    assert ledger.action(open_fee.id).state is ActionState.WAIVED
    for fee in owed:
        refunds = [a for a in ledger.actions(kinds=[ActionKind.REFUND]) if a.context.get("target_action_id") == fee.id]
        assert [(r.state, r.context.get("payment_status")) for r in refunds] == [(ActionState.DONE, "nothing_taken")]
    [paid] = [a for a in ledger.actions(kinds=[ActionKind.CHARGE], event_id=f"ana{PAID}")]
    assert paid.state is ActionState.DONE and paid.context["payment_status"] == "paid" and paid.amount.minor == 90000
    assert is_pseudonym(paid.client_email) and paid.client_name == ""
    assert not [a for a in ledger.actions(client_email=paid.client_email) if a.state in OPEN_STATES]
    assert kept <= ledger_fees(ledger, paid.client_email), "the money records are kept, under the pseudonym"
    [record] = erasures(ledger)
    assert record["pseudonym"] == paid.client_email and record["asked_by"] == "lena"
    assert record["erased"]["actions"] >= len(kept) and record["erased"]["appointments"] == SESSIONS
    digests = [text for text in outbox_texts(practice) if practice.settings.practice.email in text[0]]
    assert any(record["pseudonym"] in body and BEA_NAME in body for _to, body in digests), "the digest lost Ana only"

    # The calendar still holds her old events: read again in full, they plan nothing.
    count = len(ledger.actions())
    ledger.clear_sync_token("primary")
    practice.engine.tick(now + timedelta(hours=1))
    assert len(ledger.actions()) == count
    assert traces(everything_stored(practice), ANA, ANA_NAME) == []

    # She books again: a new client, with no history, who is sent the policy as anyone new.
    start = now + timedelta(days=7)
    practice.calendar.put(event("ana-again", start, client=ANA, name=ANA_NAME), now + timedelta(hours=2))
    practice.engine.tick(now + timedelta(hours=2))
    history = ledger.history(ANA)
    assert history.outcomes == () and history.first_seen == now + timedelta(hours=2)
    assert find_client(ledger, ANA).names == (ANA_NAME,)
    assert [a.template for a in ledger.actions(client_email=ANA)] == ["booking_confirmation"]
