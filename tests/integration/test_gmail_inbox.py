"""The `gmail` inbox against a local server speaking the Gmail v1 wire format, driven through
the real google-api-python-client and google-auth."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from integration import google_auth
from integration.gmail_inbox import GmailInbox, open_inbox
from integration.google_auth import (
    SCOPE_GMAIL_MODIFY,
    SCOPE_GMAIL_SEND,
    SCOPE_OWNED,
    SCOPE_READONLY,
    save_credentials,
    token_path,
)
from slotguard.domain.interfaces import AdapterError, ReauthorizationNeeded
from tests.support.builders import settings as build_settings
from tests.support.fake_gmail import FakeGmail

INBOX = "lena+slotguard@example.com"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def google_fake():
    """Overrides the conftest fixture: the Gmail fake, so google_credentials' tokens work."""
    fake = FakeGmail(account="lena@example.com").start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def inbox_settings(tmp_path, google_fake):
    def make(**sections):
        base = {
            "calendar": {"source": "memory", "token_uri": google_fake.token_uri},
            "inbox": {"source": "gmail", "address": INBOX, "gmail": {"api_endpoint": google_fake.gmail_api_endpoint}},
            "storage": {"data_dir": str(tmp_path / "data")},
        }
        for name, values in sections.items():
            base[name] = {**base.get(name, {}), **values}
        return build_settings(**base)

    return make


@pytest.fixture
def inbox(inbox_settings, google_credentials):
    delays: list[float] = []
    source = GmailInbox(inbox_settings(), credentials=google_credentials([SCOPE_GMAIL_MODIFY]), sleep=delays.append)
    source.delays = delays
    yield source
    source.close()


def mail(subject: str, *, to: str = INBOX, date: str = "Mon, 02 Mar 2026 08:00:00 +0000", body: str = "", **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ana Silva <ana@example.com>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = date
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body or f"text of {subject}")
    return message.as_bytes(policy=SMTP)


def raw_fetches(fake: FakeGmail) -> list[str]:
    """The ids of messages fetched whole (format=raw)."""
    return [r.path.rsplit("/", 1)[1] for r in fake.gmail_requests()
            if r.method == "GET" and "/messages/" in r.path and r.query.get("format") == ["raw"]]


def hid(cursor: str) -> int:
    """The history id of a cursor ("HISTORYID:EPOCH")."""
    return int(cursor.split(":")[0])


def subjects(page) -> list[str]:
    return [m.raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for m in page.mails]


# --- reading ------------------------------------------------------------------------------


def test_the_first_read_returns_the_unread_addressed_mail_oldest_first_and_a_cursor(google_fake, inbox):
    assert inbox.name == "gmail" and all(callable(getattr(inbox, member)) for member in ("read", "file", "wait", "close"))
    second = google_fake.deliver(mail("second"), received_at=NOW - timedelta(hours=1))
    first = google_fake.deliver(mail("first", to=f"Lena <{INBOX.upper()}>"), received_at=NOW - timedelta(days=3))
    google_fake.deliver(mail("already read"), received_at=NOW - timedelta(hours=2), label_ids=("INBOX",))
    google_fake.deliver(mail("too old"), received_at=NOW - timedelta(days=31))
    cc = google_fake.deliver(mail("copied", to="someone@example.com", Cc=INBOX), received_at=NOW - timedelta(hours=3))

    page = inbox.read(None, NOW)

    assert subjects(page) == ["first", "copied", "second"]
    assert [m.ref for m in page.mails] == [first, cc, second]
    assert page.mails[0].raw == mail("first", to=f"Lena <{INBOX.upper()}>")
    assert page.cursor == f"{google_fake.box.history_id}:{int(NOW.timestamp())}"  # the history id, the time of the read
    assert sorted(raw_fetches(google_fake)) == sorted([first, cc, second])


def test_the_first_read_pages_through_the_listing(google_fake, inbox):
    google_fake.box.page_size = 2
    ids = [google_fake.deliver(mail(f"m{n}"), received_at=NOW - timedelta(minutes=60 - n)) for n in range(5)]
    page = inbox.read(None, NOW)
    assert [m.ref for m in page.mails] == ids
    listings = [r for r in google_fake.gmail_requests() if r.path.endswith("/messages")]
    assert len(listings) == 3 and listings[1].query["pageToken"] == ["2"]


def test_a_second_read_returns_only_what_arrived_since_through_the_history(google_fake, inbox):
    google_fake.deliver(mail("before"), received_at=NOW - timedelta(hours=1))
    page = inbox.read(None, NOW)
    google_fake.box.page_size = 2
    later = [google_fake.deliver(mail(f"later {n}"), received_at=NOW + timedelta(minutes=n)) for n in range(3)]
    google_fake.reset_requests()

    again = inbox.read(page.cursor, NOW + timedelta(minutes=5))

    assert [m.ref for m in again.mails] == later
    history = [r for r in google_fake.gmail_requests() if r.path.endswith("/history")]
    assert len(history) == 2 and history[0].query["startHistoryId"] == [str(hid(page.cursor))]
    assert sorted(history[0].query["historyTypes"]) == ["labelAdded", "messageAdded"] and history[0].query["labelId"] == ["INBOX"]
    assert not [r for r in google_fake.gmail_requests() if r.path.endswith("/messages") or r.path.endswith("/profile")]
    assert hid(again.cursor) == google_fake.box.history_id > hid(page.cursor)
    assert inbox.read(again.cursor, NOW + timedelta(minutes=6)).mails == []


def test_mail_moved_into_the_inbox_from_spam_is_read(google_fake, inbox):
    cursor = inbox.read(None, NOW).cursor
    rescued = google_fake.deliver(mail("caught as spam"), received_at=NOW, label_ids=("SPAM", "UNREAD"))
    archived = google_fake.deliver(mail("archived"), received_at=NOW, label_ids=("UNREAD",))
    google_fake.deliver(mail("still spam"), received_at=NOW, label_ids=("SPAM", "UNREAD"))
    google_fake.relabel(rescued, add=("INBOX",), remove=("SPAM",))  # "Not spam"
    google_fake.relabel(archived, add=("INBOX",))  # "Move to Inbox"
    google_fake.relabel(archived, add=("STARRED",))  # another label: not a new arrival
    google_fake.reset_requests()

    page = inbox.read(cursor, NOW + timedelta(minutes=1))

    assert [m.ref for m in page.mails] == [rescued, archived]
    history = [r for r in google_fake.gmail_requests() if r.path.endswith("/history")]
    assert sorted(history[0].query["historyTypes"]) == ["labelAdded", "messageAdded"]
    assert inbox.read(page.cursor, NOW + timedelta(minutes=2)).mails == []


def test_a_large_backlog_is_read_in_parts_and_each_part_moves_the_cursor(google_fake, inbox_settings, google_credentials):
    source = GmailInbox(inbox_settings(), credentials=google_credentials([SCOPE_GMAIL_MODIFY]), read_limit=3, sleep=lambda _s: None)
    cursor = source.read(None, NOW).cursor
    google_fake.box.page_size = 2
    backlog = [google_fake.deliver(mail(f"m{n}"), received_at=NOW + timedelta(seconds=n)) for n in range(7)]
    records = [int(record["id"]) for record in google_fake.box.history]
    google_fake.reset_requests()

    first = source.read(cursor, NOW + timedelta(minutes=1))
    assert [m.ref for m in first.mails] == backlog[:3]
    assert hid(first.cursor) == records[2]  # the last record taken whole, not the mailbox's newest id
    assert len(raw_fetches(google_fake)) == 3

    google_fake.fail_next(429, times=1, path_contains="/history")  # a backlog still moves on under rate limits
    second = source.read(first.cursor, NOW + timedelta(minutes=2))
    assert [m.ref for m in second.mails] == backlog[3:6] and hid(second.cursor) == records[5]
    third = source.read(second.cursor, NOW + timedelta(minutes=3))
    assert [m.ref for m in third.mails] == backlog[6:] and hid(third.cursor) == google_fake.box.history_id


def test_an_expired_history_id_rereads_the_inbox_since_the_last_read_seen_or_not(google_fake, inbox):
    google_fake.deliver(mail("opened long before"), received_at=NOW - timedelta(days=2), label_ids=("INBOX",))
    old = inbox.read(None, NOW).cursor
    waiting = google_fake.deliver(mail("unread meanwhile"), received_at=NOW + timedelta(minutes=1))
    opened = google_fake.deliver(mail("read meanwhile"), received_at=NOW + timedelta(minutes=2), label_ids=("INBOX",))
    google_fake.deliver(mail("archived meanwhile"), received_at=NOW + timedelta(minutes=2), label_ids=())
    google_fake.expire_history()
    page = inbox.read(old, NOW + timedelta(minutes=3))
    assert [m.ref for m in page.mails] == [waiting, opened]  # a client's reply the practitioner opened is not lost
    assert page.cursor == f"{google_fake.box.history_id}:{int((NOW + timedelta(minutes=3)).timestamp())}"
    statuses = [(r.path.rsplit("/", 1)[1], r.status) for r in google_fake.gmail_requests() if r.path.endswith(("/history", "/profile"))]
    assert statuses == [("profile", 200), ("history", 404), ("profile", 200)]


def test_an_expired_cursor_without_a_time_reads_the_unread_only(google_fake, inbox):
    inbox.read(None, NOW)
    old = str(google_fake.box.history_id)  # a cursor written before the time was kept in it
    waiting = google_fake.deliver(mail("unread meanwhile"), received_at=NOW + timedelta(minutes=1))
    google_fake.deliver(mail("read meanwhile"), received_at=NOW + timedelta(minutes=2), label_ids=("INBOX",))
    google_fake.expire_history()
    assert [m.ref for m in inbox.read(old, NOW + timedelta(minutes=3)).mails] == [waiting]


def test_received_at_is_gmails_receipt_time_even_when_the_date_header_lies(google_fake, inbox):
    received = datetime(2026, 3, 1, 22, 15, 7, 250000, tzinfo=UTC)
    google_fake.deliver(mail("backdated", date="Thu, 01 Jan 2026 08:00:00 +0000"), received_at=received)
    [got] = inbox.read(None, NOW).mails
    assert got.received_at == received and got.received_at.tzinfo is not None


def test_mail_not_addressed_to_the_inbox_is_never_downloaded(google_fake, inbox):
    cursor = inbox.read(None, NOW).cursor
    private = google_fake.deliver(mail("Your lab results", to="lena@example.com", body="very private"), received_at=NOW)
    lookalike = google_fake.deliver(mail("near miss", to="lena+slotguard@example.com.evil.test"), received_at=NOW)
    delivered = google_fake.deliver(mail("forwarded", to="list@example.org", Delivered_To=INBOX), received_at=NOW)
    original = google_fake.deliver(mail("aliased", to="alias@example.com", X_Original_To=INBOX), received_at=NOW)
    google_fake.reset_requests()

    page = inbox.read(cursor, NOW)

    assert [m.ref for m in page.mails] == [delivered, original]
    assert raw_fetches(google_fake) == [delivered, original]
    metadata = [r for r in google_fake.gmail_requests() if r.query.get("format") == ["metadata"]]
    assert {r.path.rsplit("/", 1)[1] for r in metadata} == {private, lookalike, delivered, original}
    assert all(set(r.query["metadataHeaders"]) == {"To", "Cc", "Delivered-To", "X-Original-To"} for r in metadata)
    for request in google_fake.requests:
        assert private not in request.path or request.query.get("format") == ["metadata"]


def test_only_the_receiving_servers_delivery_header_counts_when_there_is_one(google_fake, inbox):
    cursor = inbox.read(None, NOW).cursor
    forged = b"Delivered-To: lena@example.com\r\n" + mail("forged", Delivered_To=INBOX)
    google_fake.deliver(forged, received_at=NOW)
    google_fake.deliver(b"Delivered-To: lena@example.com\r\n" + mail("forged to"), received_at=NOW)
    ours = google_fake.deliver(f"Delivered-To: {INBOX}\r\n".encode() + mail("ours", to="lena@example.com"), received_at=NOW)
    plain = google_fake.deliver(mail("no delivery header"), received_at=NOW)
    google_fake.reset_requests()
    assert [m.ref for m in inbox.read(cursor, NOW).mails] == [ours, plain]
    assert raw_fetches(google_fake) == [ours, plain]


def test_a_message_deleted_between_the_listing_and_the_fetch_is_skipped(google_fake, inbox):
    gone = google_fake.deliver(mail("deleted"), received_at=NOW - timedelta(minutes=2))
    kept = google_fake.deliver(mail("kept"), received_at=NOW - timedelta(minutes=1))
    google_fake.before_next("GET", f"/messages/{gone}", lambda fake: fake.box.messages.pop(gone))
    assert [m.ref for m in inbox.read(None, NOW).mails] == [kept]


def test_a_message_gmail_answers_unreadably_stops_the_read_without_losing_it(google_fake, inbox):
    cursor = inbox.read(None, NOW).cursor
    broken = google_fake.deliver(mail("broken"), received_at=NOW)
    later = google_fake.deliver(mail("later"), received_at=NOW + timedelta(seconds=1))
    google_fake.box.messages[broken].internal_date = "soon"  # type: ignore[assignment]  # not what the API promises
    with pytest.raises(AdapterError, match=rf"Gmail inbox: Gmail answered message {broken} without .*will try again") as raised:
        inbox.read(cursor, NOW)
    assert raised.value.retryable is True  # a problem of the tick, which the practitioner sees; the cursor stays
    google_fake.box.messages[broken].internal_date = int(NOW.timestamp() * 1000)
    assert [m.ref for m in inbox.read(cursor, NOW).mails] == [broken, later]


# --- filing -------------------------------------------------------------------------------


def test_filing_a_handled_message_labels_it_and_takes_it_out_of_the_inbox_read(google_fake, inbox):
    first = google_fake.deliver(mail("one"), received_at=NOW)
    second = google_fake.deliver(mail("two"), received_at=NOW + timedelta(seconds=1))
    one, two = inbox.read(None, NOW + timedelta(minutes=1)).mails

    inbox.file(one, True)
    inbox.file(two, True)
    inbox.file(one, True)  # again: harmless

    label = google_fake.box.label_named("Processed by Slotguard")
    assert label is not None
    assert google_fake.box.messages[first].labels == [label["id"]] == google_fake.box.messages[second].labels
    creates = [r for r in google_fake.gmail_requests() if r.method == "POST" and r.path.endswith("/labels")]
    lists = [r for r in google_fake.gmail_requests() if r.method == "GET" and r.path.endswith("/labels")]
    assert len(creates) == 1 and len(lists) == 1  # found missing once, created once, remembered
    modify = [json.loads(r.body) for r in google_fake.gmail_requests() if r.path.endswith("/modify")]
    assert modify[0] == {"addLabelIds": [label["id"]], "removeLabelIds": ["UNREAD", "INBOX"]} and len(modify) == 3


def test_an_existing_label_is_used_and_a_new_run_finds_it(google_fake, inbox_settings, google_credentials):
    settings = inbox_settings(inbox={"gmail": {"api_endpoint": google_fake.gmail_api_endpoint, "processed_label": "Done by Slotguard"}})
    existing = google_fake.box._create_label({"name": "Done by Slotguard"})
    ref = google_fake.deliver(mail("one"), received_at=NOW)
    source = GmailInbox(settings, credentials=google_credentials([SCOPE_GMAIL_MODIFY]))
    [got] = source.read(None, NOW).mails
    source.file(got, True)
    assert google_fake.box.messages[ref].labels == [existing["id"]] and len(google_fake.box.labels) == 1


def test_a_message_not_handled_is_left_untouched_and_unread(google_fake, inbox):
    ref = google_fake.deliver(mail("a question"), received_at=NOW)
    [got] = inbox.read(None, NOW).mails
    before = len(google_fake.gmail_requests())
    inbox.file(got, False)
    assert len(google_fake.gmail_requests()) == before
    assert google_fake.box.messages[ref].labels == ["INBOX", "UNREAD"] and google_fake.box.labels == {}


def test_messages_over_the_size_limit_are_not_downloaded_left_unread_and_the_read_goes_on(google_fake, inbox_settings, google_credentials):
    source = GmailInbox(inbox_settings(inbox={"max_message_size": 2048}), credentials=google_credentials([SCOPE_GMAIL_MODIFY]))
    large = [google_fake.deliver(mail(f"huge {n}", body="x" * 4000), received_at=NOW - timedelta(minutes=10 - n)) for n in range(3)]
    small = google_fake.deliver(mail("Waive [sg1-waive-abc]"), received_at=NOW - timedelta(minutes=1))
    try:
        page = source.read(None, NOW)
        assert [(m.ref, m.raw, m.received_at) for m in page.mails[:3]] == [
            (ref, b"", NOW - timedelta(minutes=10 - n)) for n, ref in enumerate(large)]
        assert all(m.too_large > 4000 for m in page.mails[:3])
        assert [m.ref for m in page.mails[3:]] == [small] and not page.mails[3].too_large
        assert raw_fetches(google_fake) == [small]  # the large ones were never downloaded
        for m in page.mails:
            source.file(m, not m.too_large)
        for ref in large:
            assert google_fake.box.messages[ref].labels == ["INBOX", "UNREAD"]
        assert "UNREAD" not in google_fake.box.messages[small].labels
        assert source.read(page.cursor, NOW).mails == []
    finally:
        source.close()


def test_filing_a_message_deleted_meanwhile_is_harmless(google_fake, inbox):
    ref = google_fake.deliver(mail("one"), received_at=NOW)
    [got] = inbox.read(None, NOW).mails
    del google_fake.box.messages[ref]
    inbox.file(got, True)


def test_wait_returns_false_at_once(inbox):
    assert inbox.wait(30) is False


# --- errors ------------------------------------------------------------------------------


def test_rate_limits_and_server_errors_are_retried(google_fake, inbox):
    ref = google_fake.deliver(mail("one"), received_at=NOW)
    google_fake.fail_next(429, times=1, path_contains="/profile", retry_after="2")
    google_fake.fail_next(503, times=1, path_contains=f"/messages/{ref}")
    assert [m.ref for m in inbox.read(None, NOW).mails] == [ref]
    assert len(inbox.delays) == 2 and inbox.delays[0] >= 2


def test_persistent_rate_limiting_gives_up_as_retryable(google_fake, inbox_settings, google_credentials):
    source = GmailInbox(inbox_settings(), credentials=google_credentials([SCOPE_GMAIL_MODIFY]), retry_budget=0.2, base_delay=0.05)
    google_fake.fail_next(429, times=10_000, path_contains="/gmail/")
    with pytest.raises(AdapterError, match=r"Gmail inbox: reading the mailbox's state failed .* HTTP 429") as raised:
        source.read(None, NOW)
    assert raised.value.retryable is True and not isinstance(raised.value, ReauthorizationNeeded)


def test_a_gmail_api_not_enabled_says_so(google_fake, inbox):
    google_fake.fail_next(403, reason="accessNotConfigured", path_contains="/gmail/")
    with pytest.raises(AdapterError, match="Gmail API is not enabled") as raised:
        inbox.read(None, NOW)
    assert raised.value.retryable is False


def test_a_revoked_token_asks_for_the_auth_command(google_fake, inbox_settings, google_credentials, caplog):
    settings = inbox_settings()
    credentials = google_credentials([SCOPE_GMAIL_MODIFY], expired=True)
    save_credentials(credentials, token_path(settings))
    google_fake.deliver(mail("one", body="secret words"), received_at=NOW)
    source = open_inbox(settings)
    assert len(source.read(None, NOW).mails) == 1  # refreshed, then read
    caplog.set_level(logging.DEBUG, logger="slotguard")  # ours too: an earlier in-process CLI test may have left "slotguard" at WARNING
    google_fake.revoke_refresh_token(credentials.refresh_token)
    google_fake.expire_access_tokens()
    with pytest.raises(ReauthorizationNeeded, match=r"Gmail inbox: Google no longer accepts .*Run `python main\.py auth google`") as raised:
        source.read(None, NOW)
    saved = json.loads(token_path(settings).read_text())
    for secret in (credentials.refresh_token, saved["token"], google_fake.client_secret, "secret words", "ana@example.com"):
        assert secret not in caplog.text + str(raised.value)
    save_credentials(google_credentials([SCOPE_GMAIL_MODIFY]), token_path(settings))  # the user ran the auth command
    assert len(source.read(None, NOW).mails) == 1


def test_a_stored_token_without_gmail_modify_asks_for_the_auth_command_before_any_request(google_fake, inbox_settings, google_credentials):
    settings = inbox_settings(mail={"transport": "gmail", "gmail_api_endpoint": google_fake.gmail_api_endpoint})
    save_credentials(google_credentials([SCOPE_GMAIL_SEND]), token_path(settings))  # connected before the inbox was on
    with pytest.raises(ReauthorizationNeeded, match=r"gmail\.modify permission\)\. Run `python main\.py auth google` to connect Slotguard to Gmail again") as raised:
        open_inbox(settings).read(None, NOW)
    assert raised.value.retryable is False and google_fake.gmail_requests() == []


def test_a_token_google_says_lacks_the_scope_asks_for_the_auth_command(google_fake, inbox_settings, google_credentials):
    credentials = google_credentials([SCOPE_GMAIL_MODIFY])
    credentials.token = google_fake.issue_access_token([SCOPE_GMAIL_SEND])  # unticked on the consent page
    with pytest.raises(ReauthorizationNeeded, match=r"gmail\.modify permission"):
        GmailInbox(inbox_settings(), credentials=credentials).read(None, NOW)
    assert len(google_fake.gmail_requests()) == 1


def test_auth_google_asks_for_gmail_modify_only_with_the_gmail_inbox(inbox_settings):
    assert google_auth.scopes_for(inbox_settings()) == [SCOPE_GMAIL_MODIFY]
    assert google_auth.scopes_for(inbox_settings(calendar={"source": "google"})) == [SCOPE_OWNED, SCOPE_GMAIL_MODIFY]
    both = inbox_settings(calendar={"source": "google", "write_back": False}, mail={"transport": "gmail"})
    assert google_auth.scopes_for(both) == [SCOPE_READONLY, SCOPE_GMAIL_SEND, SCOPE_GMAIL_MODIFY]
    for source in ("none", "memory"):
        assert SCOPE_GMAIL_MODIFY not in google_auth.scopes_for(inbox_settings(calendar={"source": "google"}, inbox={"source": source}))
    imap = {"source": "imap", "imap": {"host": "imap.example.com", "username": "u", "password": {"env": "X"}}}
    assert google_auth.scopes_for(inbox_settings(calendar={"source": "google"}, inbox=imap)) == [SCOPE_OWNED]


def test_an_endpoint_given_with_the_api_path_still_reaches_the_method(google_fake, inbox_settings, google_credentials):
    settings = inbox_settings(inbox={"gmail": {"api_endpoint": google_fake.gmail_api_endpoint + "gmail/v1/"}})
    GmailInbox(settings, credentials=google_credentials([SCOPE_GMAIL_MODIFY])).read(None, NOW)
    assert [r.path for r in google_fake.gmail_requests()][:1] == ["/gmail/v1/users/me/profile"]
