"""The links in the emails (docs/inbox.md, "The links in the emails"), with the ledger built by
the real engine (an in-memory calendar and mailer, the record-only provider, hourly ticks):
the digest's one-tap commands, the client's "I'll be there" / "I need to cancel", the
Reply-To of client mail, and the digest's sections about the inbox. Every link is parsed back
with urllib and its token verified with the installation's secret."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.mail.links import action_target, appointment_target, find_token, load_secret, verify
from slotguard.practitioner.digest import digest_action_id, digest_details
from slotguard.run.wiring import build_engine
from slotguard.store.inbox_rows import CANCEL, CLIENT_MAIL, CONFIRM, OTHER, PRACTITIONER_COMMAND, REFUSED
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
MON_10 = datetime(2026, 3, 2, 10, 0, tzinfo=OSLO)
DAY = timedelta(days=1)
NO_SHOW = "11"
INBOX = "lena+slotguard@example.com"


class Practice:
    def __init__(self, tmp_path: Path, *, with_inbox: bool = True, **sections):
        sections["mail"] = {"digest_hour": 7, **sections.get("mail", {})}
        sections["payments"] = {"review_window": "48h", **sections.get("payments", {})}
        self.secret_file = tmp_path / "secret" / "inbox-secret"
        if with_inbox:
            sections["inbox"] = {"source": "memory", "address": INBOX, "secret_file": str(self.secret_file), **sections.get("inbox", {})}
        self.settings = settings(**sections)
        self.calendar = MemoryCalendar("primary")
        self.mailer = MemoryMailer()
        self.ledger = Ledger(":memory:")
        self.ledger.record_sync("primary", None, MONDAY - timedelta(days=7))
        self.engine = build_engine(
            self.settings, MONDAY, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
            provider=RecordOnlyProvider(), mailer=self.mailer,
        )
        self.now = MONDAY

    @property
    def secret(self) -> bytes:
        return load_secret(self.secret_file)

    def put(self, resource, at):
        self.run_until(at)
        self.calendar.put(resource, at)
        self.engine.tick(at)

    def run_until(self, end):
        while self.now + timedelta(hours=1) <= end:
            self.now += timedelta(hours=1)
            self.engine.tick(self.now)
        self.now = max(self.now, end)

    def digest(self, day: str) -> EmailMessage | None:
        self.run_until(datetime.fromisoformat(f"{day}T07:00:00").replace(tzinfo=OSLO))
        action = self.ledger.action(digest_action_id(day))
        assert action is not None, f"no digest planned for {day}"
        return self.mailer.sent.get(action.id)

    def sent(self, template: str, event_id: str) -> list[EmailMessage]:
        return [
            self.mailer.sent[action.id]
            for action in self.ledger.actions(kinds=[ActionKind.EMAIL], calendar_id="primary", event_id=event_id)
            if action.template == template and action.id in self.mailer.sent
        ]


def text(message: EmailMessage, part: str = "plain") -> str:
    body = message.get_body((part,))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


def links(message_text: str) -> list[tuple[str, str]]:
    """(the words before it on its line, the mailto: URL) of every mailto link in a text part."""
    found = []
    lines = message_text.splitlines()
    for index, line in enumerate(lines):
        if "mailto:" in line:
            before, _, url = line.partition("mailto:")
            found.append((before.strip() or lines[index - 1].strip(), "mailto:" + url.strip()))
    return found


def parsed(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(url)
    assert parts.scheme == "mailto"
    return parts.path, parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)


def no_show_fee_practice(tmp_path: Path, name: str = "Ana Silva", **options) -> Practice:
    """A no-show on Monday at 10:00: its fee waits for review (48 h) at Tuesday's digest."""
    practice = Practice(tmp_path, **options)
    practice.put(event("ana", MON_10, name=name), MONDAY)
    practice.put(event("ana", MON_10, color=NO_SHOW, name=name), MON_10 + timedelta(hours=2))
    return practice


def test_the_digest_has_a_waive_link_that_verifies_to_that_fee_and_expires_link_valid_for_after_it_was_sent(tmp_path):
    practice = no_show_fee_practice(tmp_path)
    message = practice.digest("2026-03-03")
    assert message is not None
    fees = practice.ledger.actions(kinds=[ActionKind.CHARGE], states=[ActionState.PENDING_REVIEW])
    assert len(fees) == 1
    by_label = {label: url for label, url in links(text(message))}
    assert {"Waive:", "Charge now:", "Keep as is:"} <= set(by_label)
    address, query = parsed(by_label["Waive:"])
    assert address == INBOX
    assert set(query) == {"subject", "body"}
    subject = query["subject"][0]
    assert subject.startswith("Mar 2, 2026: waive NOK 900.00 for Ana Silva")  # the date first: a long name is cut, not the date
    token = verify(practice.secret, find_token(subject), practice.now)
    sent_at = parsedate_to_datetime(message["Date"])
    assert (token.command, token.target) == ("waive", action_target(fees[0].id))
    assert token.expires == sent_at + timedelta(days=14)
    assert query["body"] == ["Reason (optional), then press send:"]
    charge = verify(practice.secret, find_token(parsed(by_label["Charge now:"])[1]["subject"][0]), practice.now)
    assert charge.command == "charge_now" and charge.target == token.target
    # The HTML part has the same links as buttons.
    html = text(message, "html")
    assert html.count(f'href="mailto:{INBOX}?subject=') == 3 and ">Waive</a>" in html and ">Keep as is</a>" in html


def test_a_practice_without_an_inbox_sends_no_links(tmp_path):
    practice = no_show_fee_practice(tmp_path, with_inbox=False)
    practice.put(event("bo", MON_10 + 3 * DAY, client="bo@example.com", name="Bo Ek"), practice.now + timedelta(hours=1))
    message = practice.digest("2026-03-03")
    assert message is not None and "python main.py waive" in text(message)
    assert "?subject=" not in text(message) and "?subject=" not in text(message, "html")
    practice.run_until(MON_10 + 3 * DAY - timedelta(hours=23))
    client_mail = practice.sent("booking_confirmation", "bo") + practice.sent("reminder", "bo")
    assert len(client_mail) == 3  # the confirmation, the 48 h and the 24 h reminders
    for sent in client_mail:
        assert "?subject=" not in text(sent) and "?subject=" not in text(sent, "html")
    assert not practice.secret_file.exists()  # no inbox: no secret made


def test_a_reminder_in_norwegian_carries_confirm_and_cancel_links_for_that_appointment_until_it_starts(tmp_path):
    practice = Practice(tmp_path, mail={"client_locales": {"ana@example.com": "nb"}})
    thursday_10 = MON_10 + 3 * DAY
    practice.put(event("ana-thu", thursday_10), MONDAY)
    practice.run_until(thursday_10 - timedelta(hours=23))
    reminders = practice.sent("reminder", "ana-thu")
    assert len(reminders) == 2  # 48 h and 24 h before
    appointment = practice.ledger.tracked("primary", "ana-thu").appointment
    target = appointment_target("primary", "ana-thu", thursday_10, "ana@example.com")
    for reminder in reminders + practice.sent("booking_confirmation", "ana-thu"):
        found = links(text(reminder))
        assert [label for label, _ in found] == ["Jeg kommer:", "Jeg må avbestille (dette avbestiller timen):"]
        confirm, cancel = (parsed(url)[1] for _, url in found)
        assert confirm["subject"][0].startswith("Jeg kommer: torsdag 5. mars kl. 10:00 [sg1-confirm-")
        assert cancel["subject"][0].startswith("Avbestill timen min torsdag 5. mars kl. 10:00 [sg1-cancel-")
        assert "Trykk på send for å avbestille timen din torsdag 5. mars kl. 10:00" in cancel["body"][0]
        assert "Lena Berg Massage" in cancel["body"][0]
        for query, command in ((confirm, "confirm"), (cancel, "cancel")):
            token = verify(practice.secret, find_token(query["subject"][0]), practice.now)
            assert (token.command, token.target, token.expires) == (command, target, appointment.start)
        html = text(reminder, "html")
        assert ">Jeg kommer</a>" in html and ">Jeg må avbestille</a>" in html
        assert "«Jeg må avbestille» avbestiller timen din" in html
    for reminder in reminders:  # the reminder points at the button, not at a reply
        assert "Hvis du ikke kan komme, trykk på «Jeg må avbestille» nedenfor" in text(reminder)
        assert "ved å svare på denne e-posten" not in text(reminder)


def test_no_client_links_when_client_links_is_off(tmp_path):
    practice = Practice(tmp_path, inbox={"client_links": False})
    practice.put(event("ana-thu", MON_10 + 3 * DAY), MONDAY)
    practice.run_until(MON_10 + 2 * DAY)
    sent = practice.sent("booking_confirmation", "ana-thu") + practice.sent("reminder", "ana-thu")
    assert sent and all("?subject=" not in text(message) + text(message, "html") for message in sent)
    reminders = practice.sent("reminder", "ana-thu")
    assert reminders and all("If you cannot come, please tell us as soon as you can by replying to this email" in text(message)
                             and "I need to cancel" not in text(message) for message in reminders)


@pytest.mark.parametrize("name", ["Ana\r\nBcc: evil@example.org", "Ana & Bo?cc=evil@example.org", "Ana%0ABcc: evil@example.org"])
def test_a_client_name_cannot_break_the_link_or_add_a_header(tmp_path, name):
    practice = no_show_fee_practice(tmp_path, name=name)
    message = practice.digest("2026-03-03")
    assert message is not None
    found = dict(links(text(message)))
    assert "Waive:" in found
    for label, url in found.items():
        address, query = parsed(url)
        assert address == INBOX
        assert set(query) == {"subject", "body"}, label
        subject = query["subject"][0]
        assert "\n" not in subject and "\r" not in subject
        assert find_token(subject) and subject.endswith(f"[{find_token(subject)}]")
        verify(practice.secret, find_token(subject), practice.now)
    subject = parsed(found["Waive:"])[1]["subject"][0]
    folded = " ".join(name.split())
    assert folded in subject  # the name as it is, "%0A" and "&" and "?" included, on one line


def test_a_client_email_replies_to_the_practitioner_even_when_it_is_sent_from_the_inbox_address(tmp_path):
    practice = Practice(tmp_path, mail={"from_address": INBOX})
    practice.put(event("ana-thu", MON_10 + 3 * DAY), MONDAY)
    practice.run_until(MON_10 + DAY + timedelta(hours=1))
    confirmation, reminder = practice.sent("booking_confirmation", "ana-thu")[0], practice.sent("reminder", "ana-thu")[0]
    for message in (confirmation, reminder):
        assert INBOX in str(message["From"])
        assert message["Reply-To"].addresses[0].addr_spec == "lena@example.com"
        assert INBOX not in str(message["Reply-To"])


def test_the_unconfirmed_section_lists_tomorrows_clients_who_had_links_and_did_not_answer(tmp_path):
    practice = Practice(tmp_path)
    wednesday = MON_10 + 2 * DAY
    for event_id, client, hour in (("ana", "ana@example.com", 9), ("bo", "bo@example.com", 11), ("cy", "cy@example.com", 13)):
        practice.put(event(event_id, wednesday.replace(hour=hour), client=client, name=client[:2].title()), MONDAY)
    practice.put(event("dag", wednesday + DAY, client="dag@example.com", name="Dag"), MONDAY)  # Thursday: not tomorrow
    with practice.ledger.transaction():
        practice.ledger.add_email_signal("primary", "ana", wednesday.replace(hour=9), CONFIRM, "ana@example.com", MONDAY, "<1@x>")
        practice.ledger.add_email_signal("primary", "bo", wednesday.replace(hour=11), CANCEL, "bo@example.com", MONDAY, "<2@x>")
    tuesday_7 = datetime(2026, 3, 3, 7, 0, tzinfo=OSLO)
    practice.run_until(tuesday_7 - timedelta(hours=1))
    details = digest_details(practice.settings, practice.ledger, tuesday_7)
    assert [(row["client"], row["start"]) for row in details["unconfirmed"]] == [("cy@example.com", wednesday.replace(hour=13))]
    message = practice.digest("2026-03-03")
    assert message is not None
    assert "Not confirmed yet for tomorrow: call them? (1)" in text(message)
    # Without client links nobody is asked to confirm, so nobody is listed.
    off = Practice(tmp_path / "off", inbox={"client_links": False})
    off.put(event("cy", wednesday.replace(hour=13), client="cy@example.com"), MONDAY)
    off.run_until(tuesday_7 - timedelta(hours=1))
    assert digest_details(off.settings, off.ledger, tuesday_7)["unconfirmed"] == []


def _remember(ledger: Ledger, key: str, sender: str, kind: str, at: datetime, **more) -> None:
    with ledger.transaction():
        assert ledger.remember_mail(message_key=key, token_key=None, received_at=at, sender=sender, kind=kind, handled_at=at, **more)


def test_the_client_mail_section_lists_mail_not_acted_on_since_the_previous_digest_and_counts_refused_commands(tmp_path):
    practice = Practice(tmp_path, inbox={"other_mail": "leave"})
    practice.put(event("ana", MON_10 + 4 * DAY), MONDAY)
    monday_digest = practice.digest("2026-03-02")  # the previous digest: read at Monday's first tick
    del monday_digest
    before = MONDAY - timedelta(minutes=30)
    _remember(practice.ledger, "<old@x>", "ana@example.com", CLIENT_MAIL, before)
    at = MONDAY + timedelta(hours=5)
    _remember(practice.ledger, "<a@x>", "ana@example.com", CLIENT_MAIL, at, calendar_id="primary", event_id="ana")
    _remember(practice.ledger, "<b@x>", "stranger@example.org", OTHER, at + timedelta(minutes=1))
    _remember(practice.ledger, "<c@x>", "lena@example.com", PRACTITIONER_COMMAND, at + timedelta(minutes=2), command="waive")
    _remember(practice.ledger, "<d@x>", "evil@example.org", REFUSED, at + timedelta(minutes=3))
    _remember(practice.ledger, "<e@x>", "lena@example.com", REFUSED, at + timedelta(minutes=4))
    _remember(practice.ledger, "too_large:memory:9", "", OTHER, at + timedelta(minutes=5), outcome="too_large")
    message = practice.digest("2026-03-03")
    assert message is not None
    body = text(message)
    lines = body.splitlines()
    heading = lines.index("Emails to the inbox that Slotguard did not act on (3):")
    assert lines[heading + 1].startswith("- Ana Silva (ana@example.com), ") and lines[heading + 1].endswith(": left unread in your inbox")
    assert lines[heading + 2].startswith("- stranger@example.org, ")
    assert lines[heading + 3].startswith("- A message too large to read, ") and lines[heading + 3].endswith(": left unread in your inbox")
    assert not lines[heading + 4].startswith("- ")
    assert "2 emails with a Slotguard link were not carried out (expired, used already, or sent from an address not set as yours). Nothing was changed." in body
    assert "lena@example.com, " not in body  # the practitioner's own command is not "mail not acted on"


def test_client_mail_alone_makes_the_digest_worth_sending_and_refused_commands_alone_do_not(tmp_path):
    practice = Practice(tmp_path)
    practice.engine.tick(MONDAY)
    practice.digest("2026-03-02")
    _remember(practice.ledger, "<d@x>", "evil@example.org", REFUSED, MONDAY + timedelta(hours=2))
    assert practice.digest("2026-03-03") is None  # a quiet day but for a refused command
    _remember(practice.ledger, "<a@x>", "someone@example.org", OTHER, MONDAY + DAY + timedelta(hours=3))
    message = practice.digest("2026-03-04")
    assert message is not None and "someone@example.org" in text(message) and "forwarded to you" in text(message)
