"""The `imap` inbox: the mailbox of command emails read over IMAP (docs/inbox.md#imap).

One connection (IMAPClient) is kept across calls and opened again when it broke. TLS as
inbox.imap.tls says: "imaps" from the first byte, "starttls" (refused, before any password is
sent, when the server does not offer it), "none" (only to this machine; the config checks).
Certificates are verified against inbox.imap.ca_file or the system's authorities.

Reading: the cursor is "UIDVALIDITY:LASTUID:EPOCH" (EPOCH: the time of the read; the older
"UIDVALIDITY:LASTUID" is still understood). The first read takes the unseen messages of
inbox.imap.folder of the last 30 days; later reads the UIDs after LASTUID. After a new
UIDVALIDITY (the folder was recreated, the server moved) a read takes every message since the
day of an hour before EPOCH, seen or not (at most 30 days; unseen only without EPOCH): a
client's reply the practitioner opened is not lost, and the ledger knows by Message-ID what
it handled before. Such a read cut at PAGE messages says so in its cursor
("V:UID:SINCE:unseen" or ":all") and the next reads go on with the same filter above UID; once
done, the cursor moves to the newest UID (UIDNEXT - 1, or the highest UID where SELECT gives
no UIDNEXT). The mailbox may be the practitioner's own (the address a +slotguard
sub-address of it), holding all their other mail, which Slotguard must not read: only the
address headers (To, Cc, Delivered-To, X-Original-To) are fetched first, the whole message
only when they address it to inbox.address (addressed_to: the topmost Delivered-To or
X-Original-To, the receiving server's, when there is one, else To or Cc), always with BODY.PEEK (nothing is marked read by
reading). Their sizes (RFC822.SIZE) come with those headers: a message of ours over
inbox.max_message_size is not downloaded but returned as too_large (its size, raw b""), and
is left unread where it is; the others are fetched one, or a few small ones, per FETCH, and
a read stops once it has downloaded READ_BUDGET times that size (the rest at the next read).
The cursor moves past every message looked at, ours or not, too large or not. `received_at` is the
server's INTERNALDATE, never the sender's Date header.

Filing: a handled message is marked read and moved to inbox.imap.processed_folder (created
when missing; MOVE, else COPY, \\Deleted and UID EXPUNGE of that message alone with UIDPLUS,
else COPY and \\Deleted only, the message then left flagged \\Deleted in the folder until the
practitioner's mail program expunges it); anything else stays unread where it is. Filing a
message that is gone already, or flagged \\Deleted (filed before), does nothing.

Waiting: IMAP IDLE when inbox.imap.idle and the server offers it, in rounds of 25 minutes;
new mail is an EXISTS seen while idling, before IDLE's "+" or in the answer to DONE, or a
UID SEARCH after each round finding a UID above the last read's. A failed or dropped
connection sleeps out the rest of the wait (False, never early: the daemon paces on it) and
the next read connects again and finds what arrived meanwhile.

Failures become AdapterError: retryable for what may pass (the network, a timeout, a server
saying try later), not for what will not (a refused login: ReauthorizationNeeded; no
STARTTLS; a certificate that does not verify; a folder that does not exist). The password is
never logged, put in a message or shown by repr.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from slotguard.config.inbox import Imap
from slotguard.config.types import ConfigError
from slotguard.domain.interfaces import AdapterError, InboxPage, ReauthorizationNeeded, ReceivedMail

log = logging.getLogger("slotguard.imap")
# IMAPClient logs the whole protocol at DEBUG (message bodies, and more than it redacts): never,
# even when Slotguard runs with --verbose (root logger at DEBUG).
logging.getLogger("imapclient").setLevel(logging.WARNING)

FIRST_READ_DAYS = 30
RESET_MARGIN = timedelta(hours=1)  # after a new UIDVALIDITY: read again from this long before the last read
PAGE = 200  # messages looked at per read; the cursor stops after them and the next read goes on
MAX_SIZE = 5 * 1024 * 1024  # inbox.max_message_size's default: a larger message is not downloaded
READ_BUDGET = 4  # one read downloads at most this many times max_size of bodies; the rest at the next read
IDLE_ROUND = 25 * 60.0  # IDLE is renewed before servers' 30-minute limit (RFC 2177)
ADDRESS_HEADERS = ("TO", "CC", "DELIVERED-TO", "X-ORIGINAL-TO")
HEADERS_ITEM = "BODY.PEEK[HEADER.FIELDS (" + " ".join(ADDRESS_HEADERS) + ")]"
TEMPORARY = ("[UNAVAILABLE]", "[INUSE]", "[LIMIT]", "[SERVERBUG]", "[OVERQUOTA]")


class ImapInbox:
    name = "imap"

    def __init__(self, config: Imap, address: str, *, ssl_context: ssl.SSLContext | None = None, max_size: int = MAX_SIZE):
        """`config` is [inbox.imap], `address` inbox.address, `max_size` inbox.max_message_size.
        The password is resolved here, so a missing secret stops start-up (ConfigError naming
        the reference, never the value)."""
        self.config = config
        self.max_size = max_size
        self.address = address.strip().lower()
        self._password = config.password.resolve()
        self._uses_ca_file = ssl_context is None and bool(config.ca_file)
        if ssl_context is None:
            try:
                ssl_context = ssl.create_default_context(cafile=config.ca_file or None)
            except (OSError, ssl.SSLError) as error:
                raise ConfigError([f"inbox.imap.ca_file: {config.ca_file} cannot be used as certificate authorities ({error})"]) from None
        self.ssl_context = ssl_context
        self._client: IMAPClient | None = None
        self._selected: str | None = None
        self._uidvalidity = 0
        self._last_uid = 0
        self._server_names: dict[str, str] = {}

    def __repr__(self) -> str:
        return (f"ImapInbox(host={self.config.host!r}, port={self.config.port_or_default}, tls={self.config.tls!r}, "
                f"username={self.config.username!r}, folder={self.config.folder!r})")

    @property
    def where(self) -> str:
        return f"inbox.imap: the IMAP server {self.config.host}:{self.config.port_or_default}"

    # -- InboxSource -----------------------------------------------------------------------

    def read(self, cursor: str | None, now: datetime) -> InboxPage:
        """The messages addressed to inbox.address after `cursor` (see the module doc)."""
        return self._retrying(lambda client: self._read(client, cursor, now))

    def file(self, mail: ReceivedMail, handled: bool) -> None:
        """Handled: read, into the processed folder. Not handled: left unread where it is."""
        if not handled:
            return
        self._retrying(lambda client: self._file(client, mail))

    def wait(self, seconds: float) -> bool:
        """IMAP IDLE on the folder up to `seconds`: True as soon as new mail arrived, else False
        at the end of the time; at once only without IDLE (idle = false, or a server without
        it). A failure (refused, dropped mid-IDLE, BYE) sleeps the rest of the time, so a loop
        pacing on wait() never spins; the next read reconnects and finds what arrived."""
        if not self.config.idle or seconds <= 0:
            return False
        deadline = time.monotonic() + seconds
        try:
            ready = self._retrying(self._before_idle)
        except AdapterError as error:  # a wait never raises: the next read reports what is wrong
            log.info("imap wait not possible: %s", error)
            return _sleep_until(deadline)
        if ready != "idle":
            return ready == "arrived"
        try:
            return self._idle(self._connection(), deadline - time.monotonic())
        except Exception as error:  # a dropped connection ends the wait; the next read reconnects
            log.info("imap wait ended: %s", self._classify(error))
            self._drop()
            return _sleep_until(deadline)

    def close(self) -> None:
        client, self._client = self._client, None
        self._selected = None
        if client is not None:
            try:
                client.logout()
            except Exception:  # closing a broken connection: nothing to save
                _shutdown(client)

    # -- reading ---------------------------------------------------------------------------

    def _read(self, client: IMAPClient, cursor: str | None, now: datetime) -> InboxPage:
        status = self._select(client, self.config.folder)
        uidvalidity = int(status[b"UIDVALIDITY"])
        validity, last, at, scan = _parse_cursor(cursor)
        oldest = now - timedelta(days=FIRST_READ_DAYS)
        if validity == uidvalidity and last is not None and not scan:  # the usual: what came after
            since, uids = at, self._uids_after(client, last)
            floor = last
        else:
            if validity != uidvalidity or last is None:  # the first read, or the folder is new
                last = None
                scan = "unseen" if at is None else "all"  # all: everything since the last read, seen or not
                since = oldest if at is None else max(oldest, at - RESET_MARGIN)
            else:  # a first read (or one after a reset) cut short goes on with its own filter
                since = at
            criteria: list[Any] = (["UNSEEN"] if scan == "unseen" else []) + ["SINCE", (since or oldest).date()]
            if last is not None:
                criteria += ["UID", f"{last + 1}:*"]
            uids = sorted(uid for uid in (int(found) for found in client.search(criteria)) if last is None or uid > last)
            floor = self._highest_uid(client, status)
        page = uids[:PAGE]
        mails, looked_at = self._fetch_ours(client, uidvalidity, page)
        page = page[:looked_at]
        cut = len(uids) > len(page)
        new_last = page[-1] if cut else max([floor, *page])
        if last is not None:
            new_last = max(new_last, last)
        self._uidvalidity, self._last_uid = uidvalidity, new_last
        mails.sort(key=lambda mail: (mail.received_at, _uid_of(mail.ref)))
        log.info("imap read folder=%s looked_at=%d ours=%d", self.config.folder, len(page), len(mails))
        if cut and scan:  # still in the first read: the next read keeps its filter and its start
            return InboxPage(mails, f"{uidvalidity}:{new_last}:{int((since or oldest).timestamp())}:{scan}")
        return InboxPage(mails, f"{uidvalidity}:{new_last}:{int(now.timestamp())}")

    def _highest_uid(self, client: IMAPClient, status: dict) -> int:
        """The UID of the newest message in the selected folder: UIDNEXT - 1, or, from a server
        whose SELECT gave no UIDNEXT, the highest UID there (0: empty)."""
        uid_next = int(status.get(b"UIDNEXT", 0) or 0)
        if uid_next:
            return uid_next - 1
        return max((int(uid) for uid in client.search(["UID", "*"])), default=0)

    def _uids_after(self, client: IMAPClient, last: int) -> list[int]:
        # "N:*" always includes the newest message, even when its UID is below N.
        return sorted(uid for uid in (int(found) for found in client.search(["UID", f"{last + 1}:*"])) if uid > last)

    def _fetch_ours(self, client: IMAPClient, uidvalidity: int, uids: list[int]) -> tuple[list[ReceivedMail], int]:
        """The messages of `uids` addressed to us, and how many of `uids` were looked at (all,
        unless the bodies reached READ_BUDGET sizes: the rest at the next read). Sizes come with
        the address headers; a message over max_size is not downloaded (too_large, raw b"");
        the others are fetched one, or a few small ones, per FETCH."""
        if not uids:
            return [], 0
        heads = client.fetch(uids, [HEADERS_ITEM, "INTERNALDATE", "RFC822.SIZE"])
        mails: list[ReceivedMail] = []
        batch: list[tuple[int, datetime]] = []
        batch_size = total = 0
        for index, uid in enumerate(uids):
            items = heads.get(uid)
            if items is None:  # expunged meanwhile
                continue
            header = next((value for key, value in items.items() if key.startswith(b"BODY[HEADER")), b"")
            if not self._addressed_to_us(header or b""):
                continue
            received_at, size = _aware(items[b"INTERNALDATE"]), int(items.get(b"RFC822.SIZE") or 0)
            if size > self.max_size:
                log.info("imap message=%s:%d too large (%d bytes): left unread, not downloaded", uidvalidity, uid, size)
                mails.append(ReceivedMail(f"{uidvalidity}:{uid}", b"", received_at, too_large=size))
                continue
            if total and total + size > self.max_size * READ_BUDGET:
                mails += self._bodies(client, uidvalidity, batch)
                return mails, index  # this one and the rest at the next read
            if batch and batch_size + size > self.max_size:
                mails += self._bodies(client, uidvalidity, batch)
                batch, batch_size = [], 0
            batch.append((uid, received_at))
            batch_size += size
            total += size
        return mails + self._bodies(client, uidvalidity, batch), len(uids)

    def _bodies(self, client: IMAPClient, uidvalidity: int, batch: list[tuple[int, datetime]]) -> list[ReceivedMail]:
        if not batch:
            return []
        bodies = client.fetch([uid for uid, _ in batch], ["BODY.PEEK[]"])
        return [ReceivedMail(f"{uidvalidity}:{uid}", bytes(bodies[uid][b"BODY[]"]), received_at)
                for uid, received_at in batch if uid in bodies and bodies[uid].get(b"BODY[]") is not None]

    def _addressed_to_us(self, header: bytes) -> bool:
        message = BytesHeaderParser().parsebytes(header)
        return addressed_to(self.address, [(str(name), str(value)) for name, value in message.items()])

    # -- filing ----------------------------------------------------------------------------

    def _file(self, client: IMAPClient, mail: ReceivedMail) -> None:
        uidvalidity, uid = (int(part) for part in mail.ref.split(":", 1))
        status = self._select(client, self.config.folder)
        # NOT DELETED: without MOVE and UIDPLUS a filed message stays in the folder flagged \Deleted;
        # filing it again must not copy it again
        if int(status[b"UIDVALIDITY"]) != uidvalidity or not client.search(["UID", str(uid), "NOT", "DELETED"]):
            log.info("imap file: message %s is no longer in %s (or filed already); nothing to do", mail.ref, self.config.folder)
            return
        target = self._ensure_folder(client, self.config.processed_folder)
        client.add_flags([uid], [b"\\Seen"], silent=True)
        if client.has_capability("MOVE"):
            client.move([uid], target)
        else:
            client.copy([uid], target)
            client.add_flags([uid], [b"\\Deleted"], silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge([uid])
            # without UIDPLUS an EXPUNGE would also remove the practitioner's own \Deleted mail
        log.info("imap filed message=%s into=%s", mail.ref, self.config.processed_folder)

    def _ensure_folder(self, client: IMAPClient, folder: str) -> str:
        name = self._server_name(client, folder)
        if not client.folder_exists(name):
            try:
                client.create_folder(name)
            except IMAPClientError:
                if not client.folder_exists(name):  # created meanwhile by someone else: fine
                    raise
            client.subscribe_folder(name)
        return name

    def _server_name(self, client: IMAPClient, folder: str) -> str:
        """`folder` as this server spells it: "/" as its hierarchy separator, under its personal
        namespace's prefix when it has one ("INBOX." on some servers)."""
        if folder not in self._server_names:
            prefix, separator = "", "/"
            try:
                personal = client.namespace().personal
                if personal:
                    prefix, separator = personal[0][0], personal[0][1] or "/"
            except IMAPClientError:
                pass
            name = folder.replace("/", separator) if separator != "/" else folder
            if prefix and not name.startswith(prefix) and name.upper() != "INBOX":
                name = prefix + name
            self._server_names[folder] = name
        return self._server_names[folder]

    # -- waiting ---------------------------------------------------------------------------

    def _before_idle(self, client: IMAPClient) -> str:
        """"none" (the server has no IDLE), "arrived" (new mail since the last read) or "idle"."""
        if not client.has_capability("IDLE"):
            return "none"
        self._select(client, self.config.folder)
        return "arrived" if self._new_since_read(client) else "idle"

    def _new_since_read(self, client: IMAPClient) -> bool:
        """Whether the selected folder has mail after the last read's UID (False before a read)."""
        return bool(self._uidvalidity) and bool(self._uids_after(client, self._last_uid))

    def _idle(self, client: IMAPClient, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            # an EXISTS sent before IDLE's "+" is kept by imaplib (with the SELECT's, dropped here), not seen by idle_check
            kept = getattr(client._imap, "untagged_responses", {})
            kept.pop("EXISTS", None)
            client.idle()
            round_end = time.monotonic() + min(left, IDLE_ROUND)
            arrived = bool(kept.pop("EXISTS", None))
            while not arrived and time.monotonic() < round_end:
                arrived = _notices(client.idle_check(timeout=max(0.1, min(round_end - time.monotonic(), 60.0))))
            _text, late = client.idle_done()  # an EXISTS can come in the answer to DONE, at the round's end
            if arrived or _notices(late) or self._new_since_read(client):
                return True

    # -- the connection --------------------------------------------------------------------

    def _retrying(self, work: Any) -> Any:
        """Run `work(client)`; a kept connection found broken is opened again once."""
        for retry in (False, True):
            reused = self._client is not None
            try:
                return work(self._connection())
            except AdapterError:
                self._drop()
                raise
            except Exception as error:
                self._drop()
                if retry or not (reused and _connection_broke(error)):
                    raise self._classify(error) from None
        raise AssertionError("unreachable: the second try returns or raises")

    def _connection(self) -> IMAPClient:
        if self._client is not None:
            return self._client
        config = self.config
        timeout = config.timeout.total_seconds()
        client = IMAPClient(config.host, config.port_or_default, ssl=config.tls == "imaps", ssl_context=self.ssl_context,
                            timeout=timeout)
        try:
            client.normalise_times = False
            if config.tls == "starttls":
                if not client.has_capability("STARTTLS"):
                    raise AdapterError(
                        f"{self.where} does not offer STARTTLS, so the password would go in clear; set inbox.imap.tls "
                        "to \"imaps\" (port 993)", retryable=False)
                client.starttls(self.ssl_context)
            client.login(config.username, self._password)
        except BaseException:
            _shutdown(client)
            raise
        self._client, self._selected = client, None
        return client

    def _select(self, client: IMAPClient, folder: str) -> dict:
        status = client.select_folder(self._server_name(client, folder) if folder.upper() != "INBOX" else folder)
        self._selected = folder
        return status

    def _drop(self) -> None:
        client, self._client = self._client, None
        self._selected = None
        if client is not None:
            _shutdown(client)

    def _classify(self, error: BaseException) -> AdapterError:
        where = self.where
        if isinstance(error, AdapterError):
            return error
        if isinstance(error, LoginError):
            return ReauthorizationNeeded(
                f"inbox.imap: the server refused the login for {self.config.username}; check inbox.imap.username and "
                f"the password (in the {self.config.password.describe()})")
        if isinstance(error, ssl.SSLCertVerificationError):
            advice = ("check that this file holds the authority that signed the server's certificate, and inbox.imap.host"
                      if self._uses_ca_file else
                      "check inbox.imap.host, or, for a certificate of a private authority, set inbox.imap.ca_file")
            return AdapterError(f"{where}: its certificate could not be verified: {str(error.verify_message).rstrip('.')}; "
                                f"{advice}", retryable=False)
        if isinstance(error, (socket.timeout, TimeoutError)):
            return AdapterError(f"{where} did not answer within {self.config.timeout}; will try again", retryable=True)
        # the server's own words never go into a message (they are untrusted text): only the
        # kind of error, a known response code, and fixed advice
        if isinstance(error, IMAPClientAbortError) or isinstance(error, (OSError, EOFError)):
            reason = (getattr(error, "strerror", None) if isinstance(error, OSError) else None) or type(error).__name__
            return AdapterError(f"cannot reach {where.removeprefix('inbox.imap: ')}: {reason}; will try again", retryable=True)
        if isinstance(error, IMAPClientError):
            text = str(error).upper()
            codes = [code for code in TEMPORARY if code in text]
            advice = "will try again" if codes else "check [inbox.imap] (folder, processed_folder)"
            return AdapterError(f"{where} refused a command ({type(error).__name__}{' ' + codes[0] if codes else ''}); {advice}",
                                retryable=bool(codes))
        return AdapterError(f"{where}: unexpected {type(error).__name__}", retryable=True)


def _connection_broke(error: BaseException) -> bool:
    return isinstance(error, (IMAPClientAbortError, OSError, EOFError)) and not isinstance(error, ssl.SSLCertVerificationError)


def _notices(responses: list) -> bool:
    """Whether IDLE responses tell of new mail (EXISTS); raises for the server's BYE."""
    arrived = False
    for response in responses:
        if len(response) >= 2 and response[1] == b"EXISTS" and isinstance(response[0], int):
            arrived = True
        elif response and response[0] == b"BYE":
            raise IMAPClientAbortError("the server closed the connection")
    return arrived


def addressed_to(address: str, headers: list[tuple[str, str]]) -> bool:
    """Whether a message with these headers (name, value; in the message's order) was
    delivered to `address` (lower case). When the receiving server wrote where it delivered
    (Delivered-To, X-Original-To, added on top), only the topmost of those counts: a sender
    can write To, Cc, or a Delivered-To of their own, below it, naming any address. Without
    one, To and Cc decide."""
    delivery = [value for name, value in headers if name.lower() in ("delivered-to", "x-original-to")]
    values = delivery[:1] or [value for name, value in headers if name.lower() in ("to", "cc")]
    return any(found.strip().lower() == address for _name, found in getaddresses(values))


def _sleep_until(deadline: float) -> bool:
    """Sleep until `deadline` (time.monotonic()); False, as a wait that saw no new mail."""
    time.sleep(max(0.0, deadline - time.monotonic()))
    return False


def _shutdown(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # already closed
        pass


def _parse_cursor(cursor: str | None) -> tuple[int | None, int | None, datetime | None, str]:
    """(UIDVALIDITY, LASTUID, time, scan) of a cursor: "V:UID:EPOCH" (EPOCH the time of that
    read), "V:UID:EPOCH:unseen" or "V:UID:EPOCH:all" (a first read, or one after a reset,
    cut short: EPOCH is its SINCE), or the older "V:UID" (no time). Nones for none or nonsense
    (read as the first time)."""
    parts = (cursor or "").split(":")
    try:
        validity, last = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return None, None, None, ""
    scan = parts[3] if len(parts) > 3 and parts[3] in ("unseen", "all") else ""
    try:
        return validity, last, datetime.fromtimestamp(int(parts[2]), UTC) if len(parts) > 2 else None, scan
    except (ValueError, OverflowError, OSError):
        return validity, last, None, scan


def _uid_of(ref: str) -> int:
    return int(ref.rsplit(":", 1)[1])


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def open_inbox(settings: Any) -> ImapInbox:
    """The IMAP inbox of `settings` (inbox.source = "imap", [inbox.imap] set)."""
    if settings.inbox.imap is None:
        raise ConfigError(['inbox.imap: inbox.source = "imap" needs an [inbox.imap] table with host, username and password'])
    return ImapInbox(settings.inbox.imap, settings.inbox.address, max_size=settings.inbox.max_message_size)
