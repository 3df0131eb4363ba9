"""Issue 15's "done when", on the example practice with a real IMAP server (Dovecot) as its inbox:
`main.py run` as separate processes, the outbox folder as the practice's sent mail.

- the digest's "Waive" link, sent back through the IMAP server, waives the fee and the
  practitioner gets a confirmation (in the practice's language, nb);
- the same message again, and the same link in a new message, do nothing and are logged;
- a forged sender (a client's address) with a valid link does nothing and is logged;
- a client's "I need to cancel" link sent 3 hours before the session gives the 50 % late-cancel
  fee, timed by the server's receipt (INTERNALDATE), not by the Date header.
"""

from __future__ import annotations

import email
import email.policy
import json
import shutil
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.support.cli import NOW, ROOT, main

INBOX = "lena+slotguard@example.com"


def practice_with_inbox(folder, mailbox) -> None:
    """config/ copied into `folder`, the example practice reading `mailbox` as its inbox."""
    shutil.copytree(ROOT / "config", folder / "config")
    imap = mailbox.imap_config(idle=False)
    lines = ["", "[inbox]", 'source = "imap"', f'address = "{INBOX}"', "", "[inbox.imap]"]
    for key, value in imap.items():
        if isinstance(value, dict):
            lines.append(f'{key} = {{ file = "{value["file"]}" }}')
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    path = folder / "config/example.toml"
    path.write_text(path.read_text() + "\n".join(lines) + "\n")


def outbox(folder, skip: frozenset[str] = frozenset()) -> list[EmailMessage]:
    """The messages in the outbox folder (but the files named in `skip`)."""
    messages = []
    for path in sorted((folder / "var/outbox").glob("*.eml")):
        if path.name in skip:
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def to(messages: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in messages if m["To"].addresses[0].addr_spec == address]


def links(message: EmailMessage) -> list[tuple[str, str, str]]:
    """Every mailto link of the message's text part: (address, subject, body)."""
    text = message.get_body(("plain",)).get_content()
    found = []
    for word in text.split():
        if word.startswith("mailto:"):
            parts = urlsplit(word)
            query = parse_qs(parts.query)
            found.append((unquote(parts.path), query["subject"][0], query.get("body", [""])[0]))
    return found


def command_mail(sender: str, subject: str, body: str, date: datetime, message_id: str = "") -> bytes:
    """What a phone's mail app sends when the link is tapped and send pressed."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = INBOX
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id or make_msgid(domain="phone.example.com")
    message.set_content(body)
    return bytes(message)


def ledger(folder) -> dict[str, dict]:
    return {a["id"]: a for a in json.loads(main(folder, "ledger", "--json").stdout)["actions"]}


@pytest.fixture
def practice(tmp_path, imap_mailbox):
    practice_with_inbox(tmp_path, imap_mailbox)
    return tmp_path


def test_the_digests_waive_link_sent_back_through_imap_waives_the_fee_once_and_forgeries_do_nothing(practice, imap_mailbox):
    main(practice, "run", "--once", "--now", NOW)
    fees = {a["client"]: a["id"] for a in json.loads(main(practice, "status", "--json", "--now", NOW).stdout)["pending_review"]}
    bjorn = fees["bjorn@example.com"]
    [digest] = [m for m in to(outbox(practice), "lena@example.com") if "sg1-waive-" in m.get_body(("plain",)).get_content()]
    waive = [link for link in links(digest) if "[sg1-waive-" in link[1]]
    assert waive, "the digest has a Waive link"
    address, subject, body = waive[0]
    assert address == INBOX
    keep = next(link for link in links(digest) if "[sg1-keep-" in link[1])

    at = datetime.fromisoformat(NOW) + timedelta(minutes=10)
    tapped = command_mail("Lena Berg <lena@example.com>", subject, f"{body}\nBjørn var syk, han ringte meg.", at)
    imap_mailbox.deliver(tapped, at)
    before = frozenset(path.name for path in (practice / "var/outbox").glob("*.eml"))
    main(practice, "run", "--once", "--now", (at + timedelta(minutes=5)).isoformat())

    assert ledger(practice)[bjorn]["state"] == "waived"
    replies = to(outbox(practice, skip=before), "lena@example.com")
    assert replies, "the practitioner gets a confirmation"
    assert any("Bjørn" in m["Subject"] for m in replies), [m["Subject"] for m in replies]
    assert [flags for flags, _ in imap_mailbox.messages("INBOX")] == [], "the handled command left the inbox"

    # The same message delivered again, the same link in a new message, and a client's address
    # sending the practitioner's (unused) Keep link: nothing happens, each is logged.
    later = at + timedelta(minutes=30)
    imap_mailbox.deliver(tapped, later)
    imap_mailbox.deliver(command_mail("lena@example.com", subject, body, later), later)
    imap_mailbox.deliver(command_mail("Ana Silva <ana@example.com>", keep[1], "", later), later)
    states = {action_id: row["state"] for action_id, row in ledger(practice).items()}
    run = main(practice, "run", "--once", "--now", (later + timedelta(minutes=5)).isoformat())

    assert {action_id: row["state"] for action_id, row in ledger(practice).items() if action_id in states} == states
    assert "inbox refused reason=replay" in run.stderr
    assert "inbox refused reason=sender" in run.stderr
    assert "ana@example.com" not in run.stderr, "the log names no address"


def test_a_clients_cancel_link_three_hours_before_gives_the_half_fee_timed_by_the_servers_receipt(practice, imap_mailbox):
    # Frank's weekly session, moved to Friday 27 Nov 13:00: his reminder goes 24 h before.
    main(practice, "run", "--once", "--now", NOW)
    main(practice, "run", "--once", "--now", "2026-11-26T13:05:00+01:00")
    reminders = [m for m in to(outbox(practice), "frank@example.com") if any("[sg1-cancel-" in link[1] for link in links(m))]
    assert reminders, "Frank's reminder carries the cancel link"
    address, subject, body = next(link for link in links(reminders[-1]) if "[sg1-cancel-" in link[1])
    assert address == INBOX

    received = datetime.fromisoformat("2026-11-27T10:00:00+01:00")  # 3 h before the session
    lying = datetime.fromisoformat("2026-11-26T09:00:00+01:00")  # the phone's clock says a day earlier
    imap_mailbox.deliver(command_mail("Frank Berger <frank@example.com>", subject, body, lying), received)
    main(practice, "run", "--once", "--now", "2026-11-27T10:05:00+01:00")

    fees = [a for a in ledger(practice).values() if a["client"] == "frank@example.com" and a["kind"] == "charge"]
    assert [(fee["amount"], fee["policy"]) for fee in fees] == [({"minor": 45000, "currency": "NOK"}, "late_cancel")], fees
