"""An inbox message read into an Incoming (slotguard/inbox/parse.py): sender, key, note, authentication."""

from __future__ import annotations

from datetime import UTC, datetime

from slotguard.domain.interfaces import ReceivedMail
from slotguard.inbox.parse import incoming
from tests.support.builders import settings

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def read(raw: str, **inbox):
    config = settings(inbox={"source": "memory", "address": "lena+sg@example.com", **inbox})
    return incoming(ReceivedMail("1", raw.replace("\n", "\r\n").encode(), AT), config)


def mail(headers: str, body: str = "Yes please.\n") -> str:
    return headers.strip() + "\nSubject: Waive the fee [sg1-waive-0123456789abcdef-abc-abcdefghijklmnopqrstuvwxyz]\n\n" + body


def test_sender_key_subject_token_note():
    found = read(mail("From: Lena <Lena@Example.com>\nMessage-ID: <a1@example.com>",
                      "She was ill.\n\n-- \nLena\n") )
    assert found.sender == "lena@example.com"
    assert found.message_key == "<a1@example.com>"
    assert found.token == "sg1-waive-0123456789abcdef-abc-abcdefghijklmnopqrstuvwxyz"
    assert found.note == "She was ill."
    assert found.authenticated is None and not found.automatic


def test_quoted_and_wrote_lines_left_out_and_note_short():
    found = read(mail("From: lena@example.com", "Fine\n> old text\nOn Mon, Lena wrote:\n> more\n"))
    assert found.note == "Fine"
    long = read(mail("From: lena@example.com", "x" * 2000 + "\n"))
    assert len(long.note) == 500


def test_folded_subject_one_line_and_no_message_id_is_a_digest():
    found = read("From: lena@example.com\nSubject: STATUS\n please\n\nbody\n")
    assert found.subject == "STATUS please"
    assert found.message_key.startswith("sha256:") and found.token == ""


def test_no_sender_when_several_from_none_or_other_sender_domain():
    assert read(mail("From: a@example.com, b@example.com")).sender == ""
    assert read(mail("From: a@example.com\nFrom: b@example.com")).sender == ""
    assert read(mail("To: lena@example.com")).sender == ""
    assert read(mail("From: lena@example.com\nSender: bob@evil.test")).sender == ""
    assert read(mail("From: lena@example.com\nSender: bot@example.com")).sender == "lena@example.com"


def test_html_only_body_is_stripped():
    raw = ("From: lena@example.com\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\nSubject: x\n\n"
           "<p>Hei &amp; takk</p><script>alert(1)</script>")
    assert read(raw).note == "Hei & takk"


def test_automatic_messages():
    assert read(mail("From: lena@example.com\nAuto-Submitted: auto-replied")).automatic
    assert not read(mail("From: lena@example.com\nAuto-Submitted: no")).automatic
    assert read(mail("From: lena@example.com\nPrecedence: bulk")).automatic
    assert read(mail("Return-Path: <>\nFrom: lena@example.com")).automatic


def test_topmost_authentication_results_only():
    top_fail = "Authentication-Results: mx.example.com; dkim=fail header.d=example.com; spf=fail smtp.mailfrom=lena@example.com"
    forged_pass = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com"
    assert read(mail(f"{top_fail}\n{forged_pass}\nFrom: lena@example.com")).authenticated is False
    assert read(mail(f"{forged_pass}\n{top_fail}\nFrom: lena@example.com")).authenticated is True


def test_pass_must_be_for_the_from_domain():
    other = "Authentication-Results: mx.example.com; dkim=pass header.d=evil.test; spf=fail smtp.mailfrom=x@evil.test"
    assert read(mail(f"{other}\nFrom: lena@example.com")).authenticated is False
    parent = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com"
    assert read(mail(f"{parent}\nFrom: lena@mail.example.com")).authenticated is True
    spf = "Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=bounce@example.com"
    assert read(mail(f"{spf}\nFrom: lena@example.com")).authenticated is True
    dmarc = "Authentication-Results: mx.example.com; dmarc=pass header.from=example.com"
    assert read(mail(f"{dmarc}\nFrom: lena@example.com")).authenticated is True
    neutral = "Authentication-Results: mx.example.com; dkim=none"
    assert read(mail(f"{neutral}\nFrom: lena@example.com")).authenticated is False  # a header without a pass: no pass


def test_authserv_id_picks_the_headers_and_requires_one():
    ours = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com"
    theirs = "Authentication-Results: mx.evil.test; dkim=pass header.d=example.com"
    assert read(mail(f"{theirs}\n{ours}\nFrom: lena@example.com"), authserv_id="mx.example.com").authenticated is True
    assert read(mail(f"{theirs}\nFrom: lena@example.com"), authserv_id="mx.example.com").authenticated is False
    assert read(mail("From: lena@example.com"), authserv_id="mx.example.com").authenticated is False


def test_the_commented_inbox_in_config_example_toml_is_valid():
    import tomllib
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "config" / "example.toml").read_text(encoding="utf-8")
    block = text[text.index("# [inbox]"):text.index("# Unpaid fees")]
    uncommented = "\n".join(line[2:] if line.startswith("# ") else line for line in block.splitlines())
    inbox = settings(inbox=tomllib.loads(uncommented)["inbox"]).inbox
    assert inbox.source == "imap" and inbox.imap is not None and inbox.imap.host == "imap.fastmail.com"
