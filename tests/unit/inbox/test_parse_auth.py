"""What an attacker can write into a message cannot make it read as authenticated, or as from
someone else (slotguard/inbox/parse.py; docs/inbox.md, "Security model")."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from slotguard.domain.interfaces import ReceivedMail
from slotguard.inbox.parse import incoming
from slotguard.mail.links import memory_secret
from slotguard.run.inbox_step import sender_digest
from tests.support.builders import settings

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SUBJECT = "Subject: Waive the fee [sg1-waive-0123456789abcdef-abc-abcdefghijklmnopqrstuvwxyz]"


def read(headers: str, **inbox):
    config = settings(inbox={"source": "memory", "address": "lena+sg@example.com", **inbox})
    raw = f"{headers.strip()}\n{SUBJECT}\n\nYes please.\n".replace("\n", "\r\n").encode()
    return incoming(ReceivedMail("1", raw, AT), config)


def verdict(results: str, sender: str = "lena@example.com", **inbox) -> bool | None:
    return read(f"Authentication-Results: {results}\nFrom: {sender}", **inbox).authenticated


# --- 1. a trusted header without an aligned pass is a fail, not "no verdict" -------------

@pytest.mark.parametrize("results", [
    "mx.example.com; spf=none smtp.mailfrom=mallory@evil.test; dkim=none; dmarc=fail header.from=example.com",
    "mx.example.com; spf=softfail smtp.mailfrom=evil.test; dkim=none",
    "mx.example.com; spf=neutral smtp.mailfrom=evil.test",
    "mx.example.com; none",
    "mx.example.com; dkim=temperror header.d=example.com",
])
def test_a_header_without_a_pass_is_a_fail(results):
    assert verdict(results) is False


def test_no_header_at_all_is_no_verdict_and_required_with_authserv_id():
    assert read("From: lena@example.com").authenticated is None
    assert read("From: lena@example.com", authserv_id="mx.example.com").authenticated is False


@pytest.mark.parametrize(("results", "expected"), [
    ("mx.example.com; dkim=pass header.d=example.com", True),
    ("mx.example.com; dkim=pass header.d=EXAMPLE.com.", True),
    ("mx.example.com; dkim=pass header.d=com", False),  # a bare top-level domain is no parent
    ("mx.example.com; dkim=pass header.d=ample.com", False),
    ("mx.example.com; dkim=pass header.d=example.com.evil.test", False),
    ("mx.example.com; dkim=pass header.d=mail.example.com", False),  # a child does not vouch for its parent
    ("mx.example.com; spf=pass smtp.mailfrom=bounce@example.com", True),
    ("mx.example.com; spf=pass smtp.mailfrom=example.com", True),
    ("mx.example.com; spf=pass smtp.mailfrom=bounce@mail.example.com", False),  # the full domain, equal
    ("mx.example.com; dmarc=pass header.from=example.com", True),
    ("mx.example.com; dmarc=pass header.from=evil.test", False),
    ("mx.google.com; dkim=pass header.i=@example.com header.s=s1 header.b=Ab/c+d", True),  # Gmail's way
    ("mx.example.com; dkim=pass header.d=evil.test; spf=fail smtp.mailfrom=x@evil.test", False),
])
def test_only_an_aligned_pass_counts(results, expected):
    assert verdict(results) is expected


def test_the_topmost_header_of_the_authserv_id_counts():
    ours = "Authentication-Results: mx.example.com; dkim=fail header.d=example.com"
    forged = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com"
    theirs = "Authentication-Results: mx.evil.test; dkim=pass header.d=example.com"
    assert read(f"{theirs}\n{ours}\n{forged}\nFrom: lena@example.com", authserv_id="mx.example.com").authenticated is False
    assert read(f"{ours}\n{forged}\nFrom: lena@example.com").authenticated is False


# --- 2. the sender's text inside the receiving server's header -------------------------

@pytest.mark.parametrize("results", [
    # a nested comment, with the sender's quoted local part in it
    'mx.example.com; spf=softfail (mx.example.com: domain of "(x) dkim=pass header.d=example.com "@evil.test does not '
    "designate 1.2.3.4 as permitted sender) smtp.mailfrom=evil.test; dkim=none; dmarc=fail header.from=example.com",
    # a quoted local part naming the From domain
    'mx.example.com; spf=pass smtp.mailfrom="x@example.com"@evil.test',
    'mx.example.com; spf=pass smtp.mailfrom="lena@example.com"',
    # method=result anywhere but at the start of a resinfo
    "mx.example.com; spf=fail smtp.helo=dkim=pass; dkim=fail header.d=example.com",
    'mx.example.com; spf=fail smtp.mailfrom=evil.test reason="dkim=pass header.d=example.com"',
    "mx.example.com; spf=fail smtp.mailfrom=evil.test x-note=dkim=pass header.d=example.com",
    # a ";" inside a comment or quoted string does not start a resinfo
    "mx.example.com; spf=fail (x; dkim=pass header.d=example.com) smtp.mailfrom=evil.test",
    'mx.example.com; spf=fail smtp.mailfrom="a;dkim=pass header.d=example.com"@evil.test',
    # a comment that escapes the server's own, and one left open
    'mx.example.com; spf=fail (domain of "x) ; dkim=pass header.d=example.com (y"@evil.test) smtp.mailfrom=evil.test',
    "mx.example.com; spf=fail (unclosed dkim=pass header.d=example.com",
    # the same method twice: text the sender slipped in
    "mx.example.com; spf=fail smtp.mailfrom=evil.test; spf=pass smtp.mailfrom=example.com",
    "mx.example.com; dkim=none; dkim=pass header.d=example.com",
])
def test_the_senders_text_in_the_header_gives_no_pass(results):
    assert verdict(results) is False


def test_comments_and_quoted_authserv_id_are_read_as_rfc_8601_says():
    assert verdict('mx.example.com 1; dkim=pass (good (nested) signature) header.d=example.com') is True
    assert verdict('"mx.example.com"; spf=pass (sender ok) smtp.mailfrom="bounce"@example.com') is True
    assert verdict("mx.example.com (me); dkim=pass header.d=example.com", authserv_id="mx.example.com") is True


# --- 3. encoded words are display names, never addresses -------------------------------

@pytest.mark.parametrize(("header", "sender"), [
    ("From: =?utf-8?q?lena=40example=2Ecom?=", ""),
    ("From: =?utf-8?q?lena=40example=2Ecom?= <mallory@evil.test>", "mallory@evil.test"),
    ("From: =?utf-8?q?=3Clena=40example=2Ecom=3E?= <mallory@evil.test>", "mallory@evil.test"),
    ("From: =?utf-8?q?Lena_=3Clena=40example=2Ecom=3E?=", ""),
    ("From: =?utf-8?q?lena?=@example.com", ""),
    ("From: =?utf-8?q?Lena_S=C3=B8rensen?= <Lena@Example.com>", "lena@example.com"),
    ("From: lena@example.com\nSender: =?utf-8?q?bot=40example=2Ecom?=", ""),
])
def test_an_address_is_read_from_the_raw_header(header, sender):
    assert read(header).sender == sender


# --- 4. the log's name for a sender ------------------------------------------------------

def test_the_logs_sender_digest_needs_the_installations_secret():
    one = SimpleNamespace(inbox=SimpleNamespace(secret_file=memory_secret("digest-one", b"a" * 64)))
    two = SimpleNamespace(inbox=SimpleNamespace(secret_file=memory_secret("digest-two", b"b" * 64)))
    digest = sender_digest("ana@example.com", one)
    assert digest == sender_digest("ana@example.com", one) and len(digest) == 10
    assert digest != sender_digest("ana@example.com", two)
    assert digest != sender_digest("bob@example.com", one)
    assert digest != hashlib.sha256(b"ana@example.com").hexdigest()[:10]  # not recomputable from the client list
    assert sender_digest("", one) == "none"
