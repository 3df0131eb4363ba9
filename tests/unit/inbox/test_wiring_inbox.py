"""Which inbox the settings open (slotguard/run/wiring.py open_inbox), and what check-config says of it."""

from __future__ import annotations

import sys

import pytest

from integration.memory import MemoryInbox
from slotguard.inbox.summary import inbox_summary
from slotguard.run.wiring import open_inbox
from tests.support.builders import settings

IMAP = {"source": "imap", "address": "lena+sg@example.com",
        "imap": {"host": "imap.example.com", "username": "lena@example.com", "password": {"env": "IMAP_PASSWORD"}}}


def test_none_opens_nothing_and_memory_an_inbox_in_memory():
    assert open_inbox(settings()) is None and inbox_summary(settings()) == ""
    assert isinstance(open_inbox(settings(inbox={"source": "memory", "address": "lena+sg@example.com"})), MemoryInbox)


def test_a_transport_is_imported_only_when_chosen(monkeypatch):
    monkeypatch.setitem(sys.modules, "integration.imap_inbox", None)  # as if the module were missing
    assert open_inbox(settings()) is None
    with pytest.raises(ImportError):
        open_inbox(settings(inbox=IMAP))


def test_check_config_names_the_mailbox_without_connecting():
    line = inbox_summary(settings(inbox={**IMAP, "other_mail": "leave", "authserv_id": "mx.example.com"}))
    assert line.startswith("inbox: reads lena+sg@example.com through IMAP lena@example.com at imap.example.com:993 (imaps)")
    assert "commands from lena@example.com (a pass from mx.example.com)" in line and "other mail left unread" in line
