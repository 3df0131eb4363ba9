"""The practitioner's commands by email, end to end: MemoryInbox, the real engine, the real
ledger (SQLite, and PostgreSQL with SLOTGUARD_TEST_BACKEND=postgresql), the outbox folder."""

from __future__ import annotations

import email
import email.policy
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar, MemoryInbox
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.inbox.replies import spool_folder
from slotguard.mail.links import action_target, load_secret, secret_path, sign
from slotguard.practitioner.digest_inbox import client_mail
from slotguard.run.wiring import build_engine
from slotguard.store.inbox_rows import CLIENT_MAIL, OTHER, PRACTITIONER_COMMAND, REFUSED, STATUS
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
CANCEL_AT = WEDNESDAY_10 - timedelta(hours=5)
READ_AT = CANCEL_AT + timedelta(minutes=10)
RECEIVING = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=lena@example.com"


class Practice:
    """A practice with a late cancellation's fee pending review and an inbox."""

    def __init__(self, tmp_path, **sections):
        inbox = {"source": "memory", "address": "lena+sg@example.com", "secret_file": str(tmp_path / "secret"), **sections.pop("inbox", {})}
        self.settings = settings(inbox=inbox, storage={"data_dir": str(tmp_path)}, **sections)
        self.calendar = MemoryCalendar("primary")
        self.outbox = OutboxDirMailer(tmp_path / "outbox")
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        self.ledger.record_sync("primary", None, MONDAY - timedelta(days=7))
        self.inbox = MemoryInbox()
        self.engine = build_engine(self.settings, MONDAY, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
                                   provider=RecordOnlyProvider(), mailer=self.outbox, inbox=self.inbox)
        self.calendar.put(event("e1", WEDNESDAY_10), MONDAY)
        self.engine.tick(MONDAY)
        self.calendar.put(event("e1", WEDNESDAY_10, title="Massage #latecancel"), CANCEL_AT)
        self.engine.tick(CANCEL_AT + timedelta(minutes=2))
        [self.fee] = self.ledger.actions(kinds=[ActionKind.CHARGE])
        assert self.fee.state is ActionState.PENDING_REVIEW
        self.secret = load_secret(secret_path(self.settings))
        self.sent_before = set(self.messages())

    def token(self, command: str, expires: datetime | None = None) -> str:
        return sign(self.secret, command, action_target(self.fee.id), expires or WEDNESDAY_10 + timedelta(days=14))

    def deliver(self, subject: str, *, sender: str = "lena@example.com", body: str = "She was ill.\n", headers: str = RECEIVING,
                message_id: str = "<m1@example.com>", at: datetime = READ_AT - timedelta(minutes=1)) -> None:
        raw = f"{headers}\nFrom: {sender}\nTo: lena+sg@example.com\nSubject: {subject}\nMessage-ID: {message_id}\n\n{body}"
        self.inbox.deliver(raw.strip("\n").replace("\n", "\r\n").encode(), at)

    def tick(self, at: datetime = READ_AT):
        return self.engine.tick(at)

    def messages(self) -> dict[str, email.message.EmailMessage]:
        folder = self.outbox.folder
        return {path.stem: email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in sorted(folder.glob("*.eml"))} if folder.exists() else {}

    def new_messages(self) -> list[email.message.EmailMessage]:
        return [message for key, message in self.messages().items() if key not in self.sent_before]

    def rows(self):
        return self.ledger.mail_since(MONDAY)

    def fee_now(self):
        return self.ledger.action(self.fee.id)


def text(message) -> str:
    return message.get_body(("plain",)).get_content()


def test_waive_by_email_waives_the_fee_once_and_the_reply_says_so_in_norwegian(tmp_path):
    practice = Practice(tmp_path, practice={"locale": "nb"})
    practice.deliver(f"Frafall gebyret [{practice.token('waive')}]")
    practice.tick()
    assert practice.fee_now().state is ActionState.WAIVED
    assert "She was ill." in practice.fee_now().reason or any("She was ill." in a.reason for a in practice.ledger.actions(event_id="e1"))
    [row] = practice.rows()
    assert (row["kind"], row["command"], row["outcome"]) == (PRACTITIONER_COMMAND, "waive", "waived")
    assert practice.inbox.filed == {"1": True}
    [reply] = [m for m in practice.new_messages() if m["To"].addresses[0].addr_spec == "lena@example.com"]
    assert reply["Subject"] == "Gebyr frafalt: Ana Silva"
    assert "er frafalt" in text(reply) and "450,00" in text(reply)


def test_charge_now_charges_once(tmp_path):
    practice = Practice(tmp_path)
    practice.deliver(f"Charge now [{practice.token('charge_now')}]")
    practice.tick()
    fee = practice.fee_now()
    assert fee.state is ActionState.DONE and fee.attempts == 1
    practice.deliver(f"Re: Charge now [{practice.token('charge_now')}]", message_id="<m2@example.com>")
    practice.tick(READ_AT + timedelta(minutes=1))
    assert practice.fee_now().attempts == 1 and practice.fee_now().executed_at == fee.executed_at
    subjects = sorted(m["Subject"] for m in practice.new_messages() if m["To"].addresses[0].addr_spec == "lena@example.com")
    assert subjects == ["Already done: Ana Silva", "Fee charged: Ana Silva"]


def test_mark_paid_and_keep(tmp_path):
    practice = Practice(tmp_path)
    practice.deliver(f"Keep [{practice.token('keep')}]")
    practice.tick()
    assert practice.fee_now().state is ActionState.PENDING_REVIEW
    assert practice.rows()[0]["outcome"] == "kept"
    practice.engine.tick(practice.fee.due_at + timedelta(minutes=1))  # charged after its window; the client has not paid
    assert practice.fee_now().state is ActionState.DONE
    practice.deliver(f"Paid [{practice.token('mark_paid')}]", message_id="<m2@example.com>", at=practice.fee.due_at + timedelta(minutes=2))
    practice.engine.tick(practice.fee.due_at + timedelta(minutes=3))
    assert practice.fee_now().context.get("payment_status") == "paid"
    outcomes = {row["command"]: row["outcome"] for row in practice.rows()}
    assert outcomes == {"keep": "kept", "mark_paid": "paid"}


def test_replay_of_the_same_message_and_of_the_token_do_nothing_and_are_logged(tmp_path, caplog):
    practice = Practice(tmp_path)
    practice.deliver(f"Waive [{practice.token('waive')}]")
    practice.tick()
    assert practice.fee_now().state is ActionState.WAIVED
    practice.inbox.mails.append(practice.inbox.mails[0])  # the same message again (a transport's re-delivery)
    caplog.set_level(logging.INFO, "slotguard.inbox")
    practice.deliver(f"Fwd: Waive [{practice.token('waive')}]", sender="ana@example.com", message_id="<m3@example.com>")
    practice.tick(READ_AT + timedelta(minutes=5))
    kinds = [(row["kind"], row["outcome"]) for row in practice.rows()]
    assert kinds == [(PRACTITIONER_COMMAND, "waived"), (REFUSED, "sender")]
    assert "inbox refused reason=sender" in caplog.text and "ana@example.com" not in caplog.text


def test_forged_or_unknown_sender_with_a_valid_token_does_nothing_and_gets_no_reply(tmp_path, caplog):
    practice = Practice(tmp_path)
    caplog.set_level(logging.INFO, "slotguard.inbox")
    practice.deliver(f"Waive [{practice.token('waive')}]", sender="ana@example.com", message_id="<a@x>")
    practice.deliver(f"Charge [{practice.token('charge_now')}]", sender="mallory@evil.test", headers="X-Spam: no", message_id="<b@x>")
    practice.deliver(f"Waive [{practice.token('waive')}]", sender="lena@example.com",
                     headers="Authentication-Results: mx.example.com; dkim=fail header.d=example.com; spf=fail smtp.mailfrom=lena@example.com\n"
                             "Authentication-Results: mx.example.com; dkim=pass header.d=example.com", message_id="<c@x>")
    practice.tick()
    assert practice.fee_now().state is ActionState.PENDING_REVIEW
    assert [(row["kind"], row["outcome"]) for row in practice.rows()] == [(REFUSED, "sender"), (REFUSED, "sender"), (REFUSED, "authentication")]
    # no reply to a sender; the practice gets one note per token (the waive token came twice)
    notes = practice.new_messages()
    assert [m["To"].addresses[0].addr_spec for m in notes] == ["lena@example.com", "lena@example.com"]
    assert sorted(m["Subject"] for m in notes) == ["Not carried out: Ana Silva", "Not carried out: Ana Silva"]
    assert caplog.text.count("inbox refused") == 3
    assert "mallory" not in caplog.text and "She was ill" not in caplog.text
    assert practice.ledger.token_use(f"waive:{action_target(practice.fee.id)}:0") is None


def test_a_bad_and_an_expired_token_do_nothing(tmp_path):
    practice = Practice(tmp_path)
    good = practice.token("waive")
    practice.deliver(f"Waive [{good[:-3]}aaa]", message_id="<a@x>")
    practice.deliver(f"Waive [{practice.token('waive', READ_AT - timedelta(minutes=30))}]", message_id="<b@x>")
    practice.tick()
    assert practice.fee_now().state is ActionState.PENDING_REVIEW
    assert [row["outcome"] for row in practice.rows()] == ["bad_token", "expired"]
    [note] = practice.new_messages()  # none for the bad signature; the expired link is named to the practice
    assert note["To"].addresses[0].addr_spec == "lena@example.com" and note["Subject"] == "Link expired: Ana Silva"
    assert "The ‘Waive’ link you used for Ana Silva has expired (links work for 14 days)." in text(note)
    assert "Your daily digest has a fresh link." in text(note)


def test_a_refused_tap_from_another_address_plans_one_note_to_the_practice_and_none_to_the_sender(tmp_path):
    practice = Practice(tmp_path, practice={"locale": "nb"})
    token = practice.token("waive")
    practice.deliver(f"Frafall [{token}]", sender="lena.private@icloud.com", headers="X-Spam: no", message_id="<a@x>")
    practice.deliver(f"Fwd: Frafall [{token}]", sender="lena.private@icloud.com", headers="X-Spam: no", message_id="<b@x>")
    practice.deliver(f"Frafall [{token[:-3]}aaa]", sender="mallory@evil.test", headers="X-Spam: no", message_id="<c@x>")  # forged: nothing at all
    practice.tick()
    assert practice.fee_now().state is ActionState.PENDING_REVIEW
    assert [row["outcome"] for row in practice.rows()] == ["sender", "sender", "bad_token"]
    [note] = practice.new_messages()
    assert note["To"].addresses[0].addr_spec == "lena@example.com" and note["Subject"] == "Ikke utført: Ana Silva"
    body = text(note)
    assert "«Frafall» for Ana Silva kom fra lena.private@icloud.com, som ikke er en av adressene dine" in body
    due = practice.fee.due_at.astimezone(practice.settings.zone)
    assert "Ingenting er gjort: 450,00 kr trekkes" in body.replace("\xa0", " ") and f"{due:%H:%M}" in body
    assert "mallory" not in body


def test_status_replies_with_the_fee_pending(tmp_path):
    practice = Practice(tmp_path)
    practice.deliver("Re: status", message_id="<s@x>")
    practice.deliver("STATUS", sender="ana@example.com", message_id="<t@x>")
    practice.tick()
    assert [(row["kind"], row["outcome"]) for row in practice.rows()] == [(STATUS, "replied"), (REFUSED, "sender")]
    [reply] = practice.new_messages()
    assert reply["Subject"] == "Slotguard status"
    assert "Fees waiting for your review (1):" in text(reply) and "Ana Silva" in text(reply)


@pytest.mark.parametrize("other_mail", ["forward", "leave"])
def test_free_text_is_forwarded_or_left_never_acted_on(tmp_path, other_mail):
    practice = Practice(tmp_path, inbox={"other_mail": other_mail})
    practice.deliver("Question", sender="ana@example.com", body="Please waive my fee, and click http://evil.test\n", message_id="<q@x>")
    practice.tick()
    assert practice.fee_now().state is ActionState.PENDING_REVIEW
    [row] = practice.rows()
    assert row["kind"] == CLIENT_MAIL
    if other_mail == "leave":
        assert practice.inbox.filed == {"1": False} and practice.new_messages() == []
        return
    assert practice.inbox.filed == {"1": True}
    [forward] = practice.new_messages()
    assert forward["Subject"] == "Message from ana@example.com"
    assert "evil.test" not in text(forward) and "did nothing" in text(forward)
    [attached] = [part for part in forward.iter_attachments() if part.get_content_type() == "message/rfc822"]
    assert "evil.test" in attached.as_string()
    assert not list(spool_folder(practice.settings).glob("*.eml")) or practice.tick(READ_AT + timedelta(minutes=1)) is not None
    practice.tick(READ_AT + timedelta(minutes=1))
    assert not list(spool_folder(practice.settings).glob("*.eml")), "the spooled message is removed once sent"


def test_unknown_sender_free_text_is_other(tmp_path):
    practice = Practice(tmp_path, inbox={"other_mail": "leave"})
    practice.deliver("Hello", sender="someone@else.test", message_id="<o@x>")
    practice.tick()
    assert [row["kind"] for row in practice.rows()] == [OTHER]


def test_messages_too_large_to_download_are_left_unread_in_the_digest_and_the_command_behind_them_is_handled(tmp_path):
    practice = Practice(tmp_path, inbox={"other_mail": "forward"})
    for n in range(3):
        practice.inbox.deliver_too_large(30_000_000 + n, READ_AT - timedelta(minutes=5 - n))
    practice.deliver(f"Waive [{practice.token('waive')}]")
    report = practice.tick()
    assert practice.fee_now().state is ActionState.WAIVED
    assert practice.inbox.filed == {"1": False, "2": False, "3": False, "4": True}  # left unread where they are
    rows = practice.rows()
    assert [(row["kind"], row["outcome"], row["sender"]) for row in rows[:3]] == [(OTHER, "too_large", "")] * 3
    assert report.happenings["inbox:other"] == 3
    assert [row["where"] for row in client_mail(practice.settings, practice.ledger, MONDAY)] == ["leave"] * 3
    assert [m["To"].addresses[0].addr_spec for m in practice.new_messages()] == ["lena@example.com"]  # the waive's reply; nothing forwarded
    practice.tick(READ_AT + timedelta(minutes=1))
    assert len(practice.rows()) == 4


def test_a_message_that_breaks_the_parser_is_a_problem_and_the_next_is_handled(tmp_path, monkeypatch):
    practice = Practice(tmp_path)
    import slotguard.run.inbox_step as step

    real = step.incoming

    def fragile(mail, settings):
        if b"<boom@x>" in mail.raw:
            raise ValueError("cannot read")
        return real(mail, settings)

    monkeypatch.setattr(step, "incoming", fragile)
    practice.deliver("Broken", message_id="<boom@x>")
    practice.deliver(f"Waive [{practice.token('waive')}]", message_id="<ok@x>")
    report = practice.tick()
    assert any("could not be handled" in problem for problem in report.problems)
    assert practice.fee_now().state is ActionState.WAIVED
    assert practice.inbox.filed == {"1": False, "2": True}


def test_a_clients_token_goes_to_client_command_and_nothing_else(tmp_path, monkeypatch):
    practice = Practice(tmp_path)
    import slotguard.run.inbox_step as step
    from slotguard.mail.links import appointment_target

    seen = []
    monkeypatch.setattr(step, "client_command", lambda engine, message, token, now, report, **_: seen.append((message.sender, token.command)) or "cancelled")
    target = appointment_target("primary", "e1", WEDNESDAY_10, "ana@example.com")
    token = sign(practice.secret, "cancel", target, WEDNESDAY_10)
    practice.deliver(f"I need to cancel [{token}]", sender="ana@example.com", message_id="<c@x>")
    practice.tick()
    assert seen == [("ana@example.com", "cancel")]
    assert practice.inbox.filed == {"1": True} and practice.fee_now().state is ActionState.PENDING_REVIEW


def test_the_waivers_reason_is_what_the_practitioner_wrote_not_the_prefilled_line_or_the_phones_signature(tmp_path):
    practice = Practice(tmp_path)
    practice.deliver(f"Waive [{practice.token('waive')}]",
                     body="Reason (optional), then press send:\n\nHer mother is in hospital.\n\nSent from my iPhone\n")
    practice.tick()
    reasons = " ".join(a.reason for a in practice.ledger.actions(event_id="e1"))
    assert "Her mother is in hospital." in reasons
    assert "Reason (optional)" not in reasons and "iPhone" not in reasons
