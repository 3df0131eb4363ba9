"""One received message read into an `Incoming` (docs/inbox.md, "Security model").

Everything in a message is the sender's, and untrusted, but the Authentication-Results header
the receiving server adds: `authenticated` is read only from that one (the topmost, or the
topmost of `inbox.authserv_id`'s when set), since lower ones may be forged by the sender, and
it is True only with a pass aligned with the From domain in it (False without one; None when
the message has no such header at all). The sender is read from the raw From header (an
encoded word is never an address) and is "" when the message does not name exactly one From
address, or names a Sender of another domain (someone sending on behalf of someone else is
not that someone).
"""

from __future__ import annotations

import hashlib
import html
import re
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses

from slotguard.domain.interfaces import ReceivedMail
from slotguard.inbox.incoming import Incoming
from slotguard.mail.links import find_token

NOTE_CHARS = 500
_WROTE = re.compile(r"^\s*(on\b.*\bwrote:|.*\bskrev\b.*:|am\b.*\bschrieb\b.*:|.*\bnapisał\b.*:)\s*$", re.IGNORECASE)
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_BREAKS = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>", re.IGNORECASE)


def incoming(mail: ReceivedMail, settings) -> Incoming:
    """The message as the commands see it. Never raises for a message it cannot make sense of
    beyond what the email package raises (the caller contains it)."""
    message = message_from_bytes(mail.raw, policy=policy.compat32)
    sender = _sender(message)
    subject = _one_line(_header_text(message, "Subject"))
    return Incoming(
        mail=mail,
        message_key=_message_key(message, mail.raw),
        sender=sender,
        subject=subject,
        token=find_token(subject),
        note=_note(message),
        authenticated=_authenticated(message, sender, settings.inbox.authserv_id),
        automatic=_automatic(message),
    )


def _header_text(message: Message, name: str) -> str:
    value = message.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (UnicodeError, LookupError, ValueError):
        return str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _message_key(message: Message, raw: bytes) -> str:
    value = _one_line(str(message.get("Message-ID") or ""))
    if value and len(value) <= 250:
        return value
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _addresses(values: list) -> list[str]:
    """The addresses of raw (undecoded) header values, lower case. An encoded word is only
    ever a display name (RFC 2047): one where an address should be makes that no address."""
    found = []
    for _, address in getaddresses([str(value) for value in values]):
        address = address.strip().lower()
        if not address:
            continue
        if address.count("@") != 1 or "=?" in address or not address.partition("@")[0] or not _domain(address) \
                or any(c.isspace() or c in "<>,;\"()" for c in address):
            address = ""
        found.append(address)
    return found


def _sender(message: Message) -> str:
    froms = message.get_all("From") or []
    if len(froms) != 1:
        return ""
    addresses = _addresses(froms)
    if len(addresses) != 1 or not addresses[0]:
        return ""
    address = addresses[0]
    senders = message.get_all("Sender") or []
    if senders:
        named = _addresses(senders)
        if len(named) != 1 or not named[0] or _domain(named[0]) != _domain(address):
            return ""
    return address


def _automatic(message: Message) -> bool:
    auto = str(message.get("Auto-Submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return True
    if str(message.get("Precedence") or "").strip().lower() in ("bulk", "list", "junk"):
        return True
    return_path = message.get("Return-Path")
    return return_path is not None and str(return_path).strip() in ("<>", "")


_SPECIALS = ";="
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")


class _Malformed(ValueError):
    """An Authentication-Results header that does not read as RFC 8601 says: no pass in it."""


def _lex(header: str) -> list[tuple[str, str]]:
    """The header as words and specials (RFC 8601 over RFC 5322): comments (nested, with
    quoted pairs; a quoted string inside a comment is kept whole, since servers copy the
    sender's quoted local part into them) are white space; a word is a run of atoms and
    quoted strings with no space between, given as (atom text, quoted text) where the atom
    text marks each quoted piece with a NUL so no "@" or "." inside quotes can count."""
    tokens: list[tuple[str, str]] = []
    atom: list[str] = []
    quoted: list[str] = []
    index, length = 0, len(header)

    def flush() -> None:
        if atom or quoted:
            tokens.append(("".join(atom), "".join(quoted)))
            atom.clear()
            quoted.clear()

    def quoted_string(start: int) -> tuple[str, int]:
        text, at = [], start + 1
        while at < length:
            char = header[at]
            if char == "\\" and at + 1 < length:
                text.append(header[at + 1])
                at += 2
                continue
            if char == '"':
                return "".join(text), at + 1
            text.append(char)
            at += 1
        raise _Malformed("unterminated quoted string")

    while index < length:
        char = header[index]
        if char == "(":
            flush()
            depth, index = 1, index + 1
            while depth:
                if index >= length:
                    raise _Malformed("unterminated comment")
                char = header[index]
                if char == "\\":
                    index += 2
                elif char == '"':
                    index = quoted_string(index)[1]
                else:
                    depth += {"(": 1, ")": -1}.get(char, 0)
                    index += 1
        elif char == ")":
            raise _Malformed("unbalanced comment")
        elif char == '"':
            text, index = quoted_string(index)
            atom.append("\0")
            quoted.append(text)
        elif char.isspace():
            flush()
            index += 1
        elif char in _SPECIALS:
            flush()
            tokens.append((char, ""))
            index += 1
        else:
            atom.append(char)
            index += 1
    flush()
    return tokens


def _is_word(token: tuple[str, str]) -> bool:
    return token[0] not in ("", *_SPECIALS) or bool(token[1])


def _plain(token: tuple[str, str]) -> str:
    """A word's value when it is one atom or one quoted string; "" when it mixes them."""
    text, quoted = token
    if text == "\0":
        return quoted
    return "" if "\0" in text else text


def _read_header(header: str) -> tuple[str, list[tuple[str, str, dict[str, tuple[str, str]]]]]:
    """(authserv-id, [(method, result, properties)]) of one header, read as RFC 8601 says: the
    authserv-id, then resinfo split at ";" outside quotes and comments, each starting with
    method=result, followed by ptype.property=value pairs (a reason=value is kept as one).
    A resinfo that does not read so makes the header malformed."""
    tokens = _lex(header)
    parts: list[list[tuple[str, str]]] = [[]]
    for token in tokens:
        if token == (";", ""):
            parts.append([])
        else:
            parts[-1].append(token)
    head = parts[0]
    if not head or not _is_word(head[0]) or len(head) > 2 or (len(head) == 2 and not _plain(head[1]).isdigit()):
        raise _Malformed("no authserv-id")
    authserv = _plain(head[0]).lower()
    results = []
    for part in parts[1:]:
        if [_plain(token).lower() for token in part] == ["none"]:
            continue  # no-result
        if len(part) < 3 or len(part) % 3 or not all(
                _is_word(part[i]) and part[i + 1] == ("=", "") and _is_word(part[i + 2]) for i in range(0, len(part), 3)):
            raise _Malformed("a resinfo that is not method=result [name=value ...]")
        method = _plain(part[0]).lower().partition("/")[0].strip()
        result = _plain(part[2]).lower()
        properties = {_plain(part[i]).lower(): part[i + 2] for i in range(3, len(part), 3)}
        results.append((method, result, properties))
    return authserv, results


def _bare_domain(token: tuple[str, str] | None) -> str:
    """A property's value as a domain name: one unquoted atom of dotted labels (two or more,
    so never a bare top-level domain), else ""."""
    if token is None or token[1]:
        return ""
    value = token[0].lower().rstrip(".")
    return value if _DOMAIN.match(value) else ""


def _address_domain(token: tuple[str, str] | None) -> str:
    """The domain of an address (or bare domain) value such as smtp.mailfrom: what follows
    the last "@" outside quotes; a quoted local part is never looked into."""
    if token is None:
        return ""
    text, _ = token
    domain = text.rpartition("@")[2] if "@" in text else ("" if "\0" in text else text)
    return _bare_domain((domain, ""))


def _aligned(method: str, properties: dict[str, tuple[str, str]], from_domain: str) -> bool:
    """A pass that vouches for the From domain (docs/inbox.md, "Security model")."""
    if method == "dkim":
        signer = _bare_domain(properties.get("header.d"))
        if not signer and "header.d" not in properties:
            signer = _address_domain(properties.get("header.i"))  # Gmail names the signer by header.i=@domain
        return bool(signer) and (from_domain == signer or from_domain.endswith("." + signer))
    if method == "spf":
        return _address_domain(properties.get("smtp.mailfrom")) == from_domain
    if method == "dmarc":
        return _bare_domain(properties.get("header.from")) == from_domain
    return False


def _passes(header: str, from_domain: str) -> bool:
    """Whether one trusted header shows an aligned pass for `from_domain`. A malformed header,
    SPF or DMARC given more than once, or a DKIM pass beside dkim=none (text that can only
    have come from the sender) show none."""
    if not from_domain:
        return False
    try:
        _, results = _read_header(header)
    except _Malformed:
        return False
    methods = [method for method, _, _ in results]
    if methods.count("spf") > 1 or methods.count("dmarc") > 1:
        results = [entry for entry in results if entry[0] not in ("spf", "dmarc")]
    if any(method == "dkim" and result == "none" for method, result, _ in results):
        results = [entry for entry in results if entry[0] != "dkim"]
    return any(result == "pass" and _aligned(method, properties, from_domain) for method, result, properties in results)


def _authserv(header: str) -> str:
    try:
        return _read_header(header)[0]
    except _Malformed:
        return ""


def _authenticated(message: Message, sender: str, authserv_id: str) -> bool | None:
    """True: the trusted header shows an aligned pass; False: it does not (or authserv_id is
    set and no header of that server is there); None: no Authentication-Results at all."""
    headers = [_one_line(str(value)) for value in message.get_all("Authentication-Results") or []]
    if authserv_id:
        headers = [header for header in headers if _authserv(header) == authserv_id.strip().lower()]
        if not headers:
            return False
    elif not headers:
        return None
    # the topmost (of those of authserv_id): the receiving server's own; lower ones came with the message
    return _passes(headers[0], _domain(sender) if sender else "")


def _text_part(message: Message) -> str:
    plain = html_part = None
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            plain = part
        elif kind == "text/html" and html_part is None:
            html_part = part
    chosen = plain or html_part
    if chosen is None:
        return ""
    payload = chosen.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = chosen.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, errors="replace")
    except LookupError:
        text = payload.decode("utf-8", errors="replace")
    if chosen is html_part:
        text = html.unescape(_TAGS.sub("", _BREAKS.sub("\n", text)))
    return text


def _note(message: Message) -> str:
    kept: list[str] = []
    for line in _text_part(message).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line in ("-- ", "--") or _WROTE.match(line):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    text = "\n".join(kept).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = "".join(c for c in text if c == "\n" or c.isprintable())
    return text[:NOTE_CHARS]
