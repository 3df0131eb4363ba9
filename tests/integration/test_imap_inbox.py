"""integration/imap_inbox.py against a real Dovecot (tests/support/imap_server.py)."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from integration.imap_inbox import ImapInbox, open_inbox
from slotguard.config.inbox import Imap
from slotguard.config.schema import parse_settings
from slotguard.config.types import ConfigError
from slotguard.domain.interfaces import AdapterError, ReauthorizationNeeded

OURS = "lena+slotguard@example.com"
NOW = datetime.now(UTC)


def mail(subject: str, to: str = OURS, *, date: str = "Mon, 01 Jan 2024 09:00:00 +0000", extra: str = "") -> bytes:
    return (f"From: Client <client@example.org>\r\nTo: {to}\r\n{extra}Subject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\nBody of {subject}\r\n").encode()


def inbox_of(mailbox, **overrides) -> ImapInbox:
    return ImapInbox(Imap.model_validate(mailbox.imap_config(**overrides)), OURS)


def subjects(page) -> list[str]:
    return [line.split(b": ", 1)[1].decode() for m in page.mails for line in m.raw.split(b"\r\n") if line.startswith(b"Subject:")]


def test_read_returns_unseen_then_only_new_messages(imap_mailbox):
    imap_mailbox.deliver(mail("old and read"), NOW - timedelta(hours=3), flags=("\\Seen",))
    imap_mailbox.deliver(mail("first"), NOW - timedelta(hours=2))
    imap_mailbox.deliver(mail("second"), NOW - timedelta(hours=1))
    imap_mailbox.deliver(mail("too old"), NOW - timedelta(days=40))
    inbox = inbox_of(imap_mailbox)
    try:
        page = inbox.read(None, NOW)
        assert subjects(page) == ["first", "second"]
        assert page.cursor == f"{imap_mailbox.uidvalidity()}:4:{int(NOW.timestamp())}"  # UIDVALIDITY, last UID, time of the read
        assert inbox.read(page.cursor, NOW).mails == []
        imap_mailbox.deliver(mail("third"), NOW)
        later = inbox.read(page.cursor, NOW)
        assert subjects(later) == ["third"]
        assert later.cursor == f"{imap_mailbox.uidvalidity()}:5:{int(NOW.timestamp())}"
    finally:
        inbox.close()
    assert all("\\Seen" not in flags for flags, raw in imap_mailbox.messages() if b"Subject: old" not in raw)


def test_mail_not_addressed_to_the_inbox_is_neither_returned_nor_marked_read(imap_mailbox):
    imap_mailbox.deliver(mail("private", to="lena@example.com"), NOW - timedelta(minutes=5))
    imap_mailbox.deliver(mail("by cc", to="someone@example.org", extra=f"Cc: Slotguard <{OURS.upper()}>\r\n"), NOW - timedelta(minutes=4))
    imap_mailbox.deliver(mail("bcc", to="undisclosed-recipients:;", extra=f"Delivered-To: {OURS}\r\n"), NOW - timedelta(minutes=3))
    imap_mailbox.deliver(mail("lookalike", to="lena+slotguard@example.com.evil.org"), NOW - timedelta(minutes=2))
    inbox = inbox_of(imap_mailbox)
    try:
        page = inbox.read(None, NOW)
        assert subjects(page) == ["by cc", "bcc"]
        assert page.cursor.split(":")[1] == "4"  # past the others too
        imap_mailbox.deliver(mail("private again", to="lena@example.com"), NOW)
        again = inbox.read(page.cursor, NOW)
        assert again.mails == [] and again.cursor.split(":")[1] == "5"
    finally:
        inbox.close()
    assert [("\\Seen" in flags) for flags, _raw in imap_mailbox.messages()] == [False] * 5


def test_a_new_uidvalidity_rereads_everything_since_the_last_read_seen_or_not(imap_mailbox):
    imap_mailbox.create("Slotguard")
    imap_mailbox.deliver(mail("before"), NOW - timedelta(hours=1, minutes=5), folder="Slotguard")
    inbox = inbox_of(imap_mailbox, folder="Slotguard")
    try:
        cursor = inbox.read(None, NOW - timedelta(hours=1)).cursor
        imap_mailbox.recreate("Slotguard")
        imap_mailbox.deliver(mail("opened long before"), NOW - timedelta(days=3), folder="Slotguard", flags=("\\Seen",))
        imap_mailbox.deliver(mail("after"), NOW - timedelta(minutes=1), folder="Slotguard")
        imap_mailbox.deliver(mail("after, read"), NOW, folder="Slotguard", flags=("\\Seen",))
        page = inbox.read(cursor, NOW)
        assert subjects(page) == ["after", "after, read"]  # a client's reply the practitioner opened is not lost
        assert page.cursor.startswith(f"{imap_mailbox.uidvalidity('Slotguard')}:3:")
        old_form = ":".join(cursor.split(":")[:2])  # a cursor written before the time was kept in it
        assert subjects(inbox.read(old_form, NOW)) == ["after"]
    finally:
        inbox.close()


def test_received_at_is_the_internaldate_not_the_date_header(imap_mailbox):
    arrived = datetime(2026, 12, 1, 8, 30, 15, tzinfo=timezone(timedelta(hours=1)))
    imap_mailbox.deliver(mail("dated", date="Sat, 28 Nov 2026 10:00:00 +0000"), arrived)
    inbox = inbox_of(imap_mailbox)
    try:
        [received] = inbox.read(None, arrived + timedelta(hours=1)).mails
    finally:
        inbox.close()
    assert received.received_at.tzinfo is not None
    assert received.received_at == arrived
    assert b"Body of dated" in received.raw


def test_file_handled_moves_into_the_processed_folder_read_and_unhandled_stays_unread(imap_mailbox):
    imap_mailbox.deliver(mail("command"), NOW - timedelta(minutes=2))
    imap_mailbox.deliver(mail("question"), NOW - timedelta(minutes=1))
    inbox = inbox_of(imap_mailbox)
    try:
        command, question = inbox.read(None, NOW).mails
        inbox.file(command, True)
        inbox.file(question, False)
        inbox.file(command, True)  # again: harmless
    finally:
        inbox.close()
    assert "Processed by Slotguard" in imap_mailbox.folders()
    assert not [folder for folder in imap_mailbox.folders() if folder.lower().startswith("slotguard")]  # no folder named like the sub-address
    [(flags, raw)] = imap_mailbox.messages("Processed by Slotguard")
    assert b"Subject: command" in raw and "\\Seen" in flags
    [(flags, raw)] = imap_mailbox.messages("INBOX")
    assert b"Subject: question" in raw and "\\Seen" not in flags


def test_idle_wakes_soon_after_a_delivery(imap_mailbox):
    inbox = inbox_of(imap_mailbox)
    try:
        cursor = inbox.read(None, NOW).cursor
        assert inbox.wait(1) is False
        timer = threading.Timer(1.0, imap_mailbox.deliver, args=(mail("wake up"), NOW))
        started = time.monotonic()
        timer.start()
        try:
            assert inbox.wait(20) is True
        finally:
            timer.join()
        assert time.monotonic() - started < 6
        assert subjects(inbox.read(cursor, NOW)) == ["wake up"]
        started = time.monotonic()
        assert inbox_of(imap_mailbox, idle=False).wait(5) is False
        assert time.monotonic() - started < 1
    finally:
        inbox.close()


def test_a_connection_dropped_mid_idle_ends_the_wait_and_nothing_is_lost(imap_mailbox):
    inbox = inbox_of(imap_mailbox)
    try:
        cursor = inbox.read(None, NOW).cursor

        def drop_then_deliver() -> None:
            imap_mailbox.drop_connections()
            imap_mailbox.deliver(mail("meanwhile"), NOW)

        timer = threading.Timer(1.0, drop_then_deliver)
        started = time.monotonic()
        timer.start()
        try:
            assert inbox.wait(4) is False
        finally:
            timer.join()
        assert time.monotonic() - started >= 3.9  # the rest of the time slept: a loop pacing on wait() never spins
        page = inbox.read(cursor, NOW)
        assert subjects(page) == ["meanwhile"]
    finally:
        inbox.close()


def test_a_wait_that_cannot_connect_lasts_its_time_and_returns_false(imap_mailbox):
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connections are refused at once
    inbox = inbox_of(imap_mailbox, tls="none", port=port)
    started = time.monotonic()
    assert inbox.wait(2) is False
    assert time.monotonic() - started >= 1.9


def test_a_kept_connection_the_server_closed_is_opened_again(imap_mailbox):
    inbox = inbox_of(imap_mailbox)
    try:
        cursor = inbox.read(None, NOW).cursor
        imap_mailbox.drop_connections()
        imap_mailbox.deliver(mail("after a restart"), NOW)
        assert subjects(inbox.read(cursor, NOW)) == ["after a restart"]
    finally:
        inbox.close()


@pytest.mark.parametrize("tls", ["imaps", "starttls"])
def test_tls_with_the_private_ca(imap_mailbox, tls):
    port = imap_mailbox.imaps_port if tls == "imaps" else imap_mailbox.port
    imap_mailbox.deliver(mail(f"over {tls}"), NOW)
    inbox = inbox_of(imap_mailbox, tls=tls, port=port)
    try:
        assert subjects(inbox.read(None, NOW)) == [f"over {tls}"]
    finally:
        inbox.close()
    untrusted = inbox_of(imap_mailbox, tls=tls, port=port, ca_file="")
    with pytest.raises(AdapterError, match="certificate could not be verified") as caught:
        untrusted.read(None, NOW)
    assert caught.value.retryable is False


def test_a_refused_login_names_the_user_not_the_password(imap_mailbox, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("Not-the-password-42")
    wrong.chmod(0o600)
    inbox = inbox_of(imap_mailbox, password={"file": str(wrong)})
    assert "Not-the-password" not in repr(inbox)
    with pytest.raises(ReauthorizationNeeded) as caught:
        inbox.read(None, NOW)
    message = str(caught.value)
    assert f"refused the login for {imap_mailbox.username}" in message and "inbox.imap.username" in message
    assert "Not-the-password" not in message and imap_mailbox.password not in message
    assert caught.value.retryable is False


def test_starttls_is_refused_when_the_server_does_not_offer_it(imap_mailbox):
    """A server whose greeting offers no STARTTLS (a small fake: Dovecot always offers it when
    it has a certificate): the adapter stops before sending the password."""
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
            connection.settimeout(5)
            try:
                while data := connection.recv(4096):
                    received.append(data)
                    tag = data.split(b" ", 1)[0]
                    if b"CAPABILITY" in data.upper():
                        connection.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
                        continue
                    if b"LOGOUT" in data.upper():
                        connection.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                        break
                    connection.sendall(tag + b" BAD not here\r\n")
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    inbox = inbox_of(imap_mailbox, tls="starttls", port=port)
    try:
        with pytest.raises(AdapterError, match="does not offer STARTTLS") as caught:
            inbox.read(None, NOW)
    finally:
        thread.join(5)
        listener.close()
    assert caught.value.retryable is False
    assert imap_mailbox.password.encode() not in b"".join(received)
    assert not any(b"LOGIN" in chunk.upper() or b"AUTHENTICATE" in chunk.upper() for chunk in received)


def test_open_inbox_from_the_settings_and_nothing_secret_in_the_logs(imap_mailbox, tmp_path, caplog):
    settings = parse_settings({
        "practice": {"name": "Lena Berg Massage", "email": "lena@example.com", "timezone": "Europe/Oslo", "currency": "NOK"},
        "calendar": {"source": "ics", "url": "https://calendar.example.com/lena.ics"},
        "services": {"default": {"price": "900 NOK"}},
        "storage": {"data_dir": str(tmp_path / "data")},
        "inbox": {"source": "imap", "address": OURS, "imap": imap_mailbox.imap_config(tls="imaps", port=imap_mailbox.imaps_port)},
    })
    imap_mailbox.deliver(mail("secret body words"), NOW)
    caplog.set_level("DEBUG", logger="slotguard.imap")  # its own level: an earlier in-process CLI test may have left "slotguard" at WARNING
    inbox = open_inbox(settings)
    try:
        [received] = inbox.read(None, NOW).mails
        inbox.file(received, True)
        assert inbox.wait(0.5) is False
    finally:
        inbox.close()
    assert imap_mailbox.password not in repr(inbox)
    logged = caplog.text
    assert "imap read" in logged
    assert imap_mailbox.password not in logged and "secret body words" not in logged


def test_a_processed_folder_named_like_the_sub_address_is_refused(imap_mailbox, tmp_path):
    def settings(processed: str):
        return parse_settings({
            "practice": {"name": "Lena Berg Massage", "email": "lena@example.com", "timezone": "Europe/Oslo", "currency": "NOK"},
            "calendar": {"source": "ics", "url": "https://calendar.example.com/lena.ics"},
            "services": {"default": {"price": "900 NOK"}},
            "storage": {"data_dir": str(tmp_path / "data")},
            "inbox": {"source": "imap", "address": "Lena+SlotGuard@example.com",
                      "imap": {**imap_mailbox.imap_config(), "processed_folder": processed}},
        })

    assert settings("Processed by Slotguard").inbox.imap.processed_folder == "Processed by Slotguard"
    assert settings("Done/Slotguard").inbox.imap.processed_folder == "Done/Slotguard"
    for named_like_it in ("Slotguard/Processed", "slotguard", "SLOTGUARD.Done"):
        with pytest.raises(ConfigError, match="sub-address"):
            settings(named_like_it)


def test_filing_without_move_copies_and_expunges_that_message_alone(imap_mailbox, monkeypatch):
    """A server without MOVE (Dovecot with MOVE hidden from the adapter): COPY, \\Deleted and
    UID EXPUNGE of that message only; the practitioner's own \\Deleted mail stays."""
    from imapclient import IMAPClient

    offered = IMAPClient.has_capability
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, name: name.upper() != "MOVE" and offered(self, name))
    imap_mailbox.deliver(mail("theirs, deleted", to="lena@example.com"), NOW - timedelta(minutes=2), flags=("\\Deleted",))
    imap_mailbox.deliver(mail("command"), NOW - timedelta(minutes=1))
    inbox = inbox_of(imap_mailbox)
    try:
        [command] = inbox.read(None, NOW).mails
        inbox.file(command, True)
        inbox.file(command, True)
    finally:
        inbox.close()
    [(flags, raw)] = imap_mailbox.messages("Processed by Slotguard")
    assert b"Subject: command" in raw and "\\Seen" in flags and "\\Deleted" not in flags
    [(flags, raw)] = imap_mailbox.messages("INBOX")
    assert b"Subject: theirs" in raw and "\\Deleted" in flags


def test_filing_without_move_or_uidplus_is_safe_to_repeat(imap_mailbox, monkeypatch):
    """Neither MOVE nor UIDPLUS: COPY and \\Deleted, no EXPUNGE (it would remove the
    practitioner's own \\Deleted mail too); filing again makes no second copy."""
    from imapclient import IMAPClient

    offered = IMAPClient.has_capability
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, name: name.upper() not in ("MOVE", "UIDPLUS") and offered(self, name))
    imap_mailbox.deliver(mail("command"), NOW - timedelta(minutes=1))
    inbox = inbox_of(imap_mailbox)
    try:
        [command] = inbox.read(None, NOW).mails
        inbox.file(command, True)
        inbox.file(command, True)
    finally:
        inbox.close()
    [(flags, raw)] = imap_mailbox.messages("Processed by Slotguard")
    assert b"Subject: command" in raw and "\\Seen" in flags
    [(flags, raw)] = imap_mailbox.messages("INBOX")
    assert b"Subject: command" in raw and "\\Deleted" in flags  # flagged, left for the practitioner's client to expunge


def test_a_first_read_cut_short_keeps_its_unseen_filter_in_the_next_reads(imap_mailbox, monkeypatch):
    monkeypatch.setattr("integration.imap_inbox.PAGE", 2)
    for n, seen in enumerate((True, False, False, True, False, True, False)):
        imap_mailbox.deliver(mail(f"m{n}"), NOW - timedelta(hours=10 - n), flags=("\\Seen",) if seen else ())
    inbox = inbox_of(imap_mailbox)
    try:
        first = inbox.read(None, NOW)
        assert subjects(first) == ["m1", "m2"]
        second = inbox.read(first.cursor, NOW + timedelta(minutes=1))
        assert subjects(second) == ["m4", "m6"]  # still the first read: m3 and m5 were read already
        imap_mailbox.deliver(mail("new, opened at once"), NOW + timedelta(minutes=2), flags=("\\Seen",))
        third = inbox.read(second.cursor, NOW + timedelta(minutes=3))
        assert subjects(third) == ["new, opened at once"]  # the first read is over: everything new again
        assert third.cursor.split(":")[1] == "8"
    finally:
        inbox.close()


def test_a_first_read_without_uidnext_starts_after_the_highest_uid(imap_mailbox, monkeypatch):
    from imapclient import IMAPClient

    selected = IMAPClient.select_folder
    monkeypatch.setattr(IMAPClient, "select_folder",
                        lambda self, *args, **kwargs: {k: v for k, v in selected(self, *args, **kwargs).items() if k != b"UIDNEXT"})
    imap_mailbox.deliver(mail("unread"), NOW - timedelta(hours=2))
    imap_mailbox.deliver(mail("read", to="lena@example.com"), NOW - timedelta(hours=1), flags=("\\Seen",))
    imap_mailbox.deliver(mail("read too"), NOW - timedelta(minutes=30), flags=("\\Seen",))
    inbox = inbox_of(imap_mailbox)
    try:
        page = inbox.read(None, NOW)
        assert subjects(page) == ["unread"] and page.cursor.split(":")[1] == "3"
        assert inbox.read(page.cursor, NOW).mails == []
    finally:
        inbox.close()


def test_only_the_receiving_servers_delivery_header_counts_when_there_is_one(imap_mailbox):
    """A stranger's mail to the main address cannot choose to be fetched by naming the inbox
    address in To or in a Delivered-To of its own: the topmost Delivered-To/X-Original-To
    (the one the receiving server adds) decides; To/Cc only count without one."""
    main = "Delivered-To: lena@example.com\r\n"
    imap_mailbox.deliver((main + "X-Original-To: lena@example.com\r\n").encode() + mail("forged", extra=f"Delivered-To: {OURS}\r\n"),
                         NOW - timedelta(minutes=4))
    imap_mailbox.deliver(main.encode() + mail("forged to"), NOW - timedelta(minutes=3))
    imap_mailbox.deliver(f"X-Original-To: {OURS}\r\n{main}".encode() + mail("aliased", to="list@example.org"), NOW - timedelta(minutes=2))
    imap_mailbox.deliver(mail("no delivery header"), NOW - timedelta(minutes=1))
    inbox = inbox_of(imap_mailbox)
    try:
        assert subjects(inbox.read(None, NOW)) == ["aliased", "no delivery header"]
    finally:
        inbox.close()


def test_a_new_mail_notice_idle_check_missed_is_found_at_the_end_of_the_round(imap_mailbox, monkeypatch):
    """The EXISTS can come in the answer to DONE (at a round's end) or before IDLE's "+":
    idle_check never sees it. The wait still ends True after that round (a UID SEARCH)."""
    from imapclient import IMAPClient

    monkeypatch.setattr("integration.imap_inbox.IDLE_ROUND", 1.0)
    checked = IMAPClient.idle_check
    monkeypatch.setattr(IMAPClient, "idle_check", lambda self, timeout=None: [r for r in checked(self, timeout) if b"EXISTS" not in r])
    inbox = inbox_of(imap_mailbox)
    try:
        cursor = inbox.read(None, NOW).cursor
        timer = threading.Timer(0.3, imap_mailbox.deliver, args=(mail("unannounced"), NOW))
        started = time.monotonic()
        timer.start()
        try:
            assert inbox.wait(8) is True
        finally:
            timer.join()
        assert time.monotonic() - started < 5
        assert subjects(inbox.read(cursor, NOW)) == ["unannounced"]
    finally:
        inbox.close()


def test_a_server_error_never_puts_the_servers_words_into_the_message():
    """Server text is untrusted: an error names its kind and a fixed advice, never the text."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
            connection.settimeout(5)
            try:
                while data := connection.recv(4096):
                    tag = data.split(b" ", 1)[0]
                    command = data.split(b" ", 2)[1].strip().upper() if b" " in data else b""
                    if command == b"LOGIN":
                        connection.sendall(tag + b" OK logged in\r\n")
                    elif command == b"CAPABILITY":
                        connection.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
                    elif command == b"LOGOUT":
                        connection.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                        break
                    else:
                        connection.sendall(tag + b" NO [UNAVAILABLE] Pay at https://evil.example/pay now\r\n")
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    config = Imap.model_validate({"host": "127.0.0.1", "port": port, "tls": "none", "username": "lena", "password": {"env": "HOME"}})
    inbox = ImapInbox(config, OURS)
    try:
        with pytest.raises(AdapterError) as caught:
            inbox.read(None, NOW)
    finally:
        inbox.close()
        thread.join(5)
        listener.close()
    message = str(caught.value)
    assert "evil" not in message and "Pay" not in message
    assert "[UNAVAILABLE]" in message and caught.value.retryable is True  # a known response code, said as it is


def test_messages_over_the_size_limit_are_not_downloaded_left_unread_and_the_read_goes_on(imap_mailbox):
    big = "x" * 4000 + "\r\n"
    for n in range(3):
        imap_mailbox.deliver(mail(f"huge {n}", extra=f"X-Padding: {big}"), NOW - timedelta(minutes=10 - n))
    imap_mailbox.deliver(mail("Waive [sg1-waive-abc]"), NOW - timedelta(minutes=1))
    before = imap_mailbox.messages()
    settings = parse_settings({
        "practice": {"name": "Lena Berg Massage", "email": "lena@example.com", "timezone": "Europe/Oslo", "currency": "NOK"},
        "calendar": {"source": "ics", "url": "https://calendar.example.com/lena.ics"},
        "services": {"default": {"price": "900 NOK"}},
        "inbox": {"source": "imap", "address": OURS, "max_message_size": 2048, "imap": imap_mailbox.imap_config()},
    })
    inbox = open_inbox(settings)
    try:
        assert inbox.max_size == 2048
        page = inbox.read(None, NOW)
        large = [m for m in page.mails if m.too_large]
        assert [m.raw for m in large] == [b"", b"", b""]
        assert all(m.too_large > 4000 for m in large)
        assert [m.received_at for m in large] == [NOW.replace(microsecond=0) - timedelta(minutes=10 - n) for n in range(3)]
        assert subjects(page) == ["Waive [sg1-waive-abc]"]  # the small command behind them is read
        assert page.cursor.split(":")[1] == "4"  # past all four
        for m in page.mails:
            inbox.file(m, not m.too_large)
        assert inbox.read(page.cursor, NOW).mails == []
    finally:
        inbox.close()
    after = imap_mailbox.messages()
    # the large ones are where they were, unread and unchanged; the command was filed
    assert [raw for _flags, raw in after] == [raw for _flags, raw in before[:3]]
    assert all("\\Seen" not in flags for flags, _raw in after)


def test_a_read_downloads_at_most_a_few_times_the_size_limit_and_the_next_read_goes_on(imap_mailbox):
    pad = "y" * 1200 + "\r\n"
    for n in range(6):
        imap_mailbox.deliver(mail(f"note {n}", extra=f"X-Padding: {pad}"), NOW - timedelta(minutes=10 - n))
    inbox = ImapInbox(Imap.model_validate(imap_mailbox.imap_config()), OURS, max_size=2048)
    try:
        first = inbox.read(None, NOW)
        # 4 x 2048 bytes per read: five of about 1.4 kB, the sixth at the next read
        assert subjects(first) == [f"note {n}" for n in range(5)]
        assert first.cursor.split(":")[1] == "5" and first.cursor.endswith(":unseen")
        second = inbox.read(first.cursor, NOW)
        assert subjects(second) == ["note 5"]
        assert second.cursor.split(":")[1] == "6"
    finally:
        inbox.close()
