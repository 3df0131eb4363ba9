"""One received message read into an `Incoming` (docs/inbox.md, "Security model").

Everything in a message is the sender's, and untrusted, but the Authentication-Results header
the receiving server adds: `authenticated` is read only from that one (the topmost, or those
of `inbox.authserv_id` when set), since lower ones may be forged by the sender. The sender is
"" when the message does not name exactly one From address, or names a Sender of another
domain (someone sending on behalf of someone else is not that someone).
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
_METHOD = re.compile(r"\b(dkim|spf|dmarc)\s*=\s*([a-z]+)((?:\s+[a-z]+(?:\.[a-z-]+)?\s*=\s*(?:\"[^\"]*\"|[^\s;]+))*)", re.IGNORECASE)
_PROPERTY = re.compile(r"([a-z]+(?:\.[a-z-]+)?)\s*=\s*(\"[^\"]*\"|[^\s;]+)", re.IGNORECASE)
_COMMENTS = re.compile(r"\([^()]*\)")


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


def _sender(message: Message) -> str:
    froms = message.get_all("From") or []
    if len(froms) != 1:
        return ""
    addresses = [address for _, address in getaddresses([_header_text(message, "From")]) if address]
    if len(addresses) != 1 or addresses[0].count("@") != 1:
        return ""
    address = addresses[0].strip().lower()
    if not address.partition("@")[0] or not _domain(address) or any(c.isspace() or c in "<>,;\"" for c in address):
        return ""
    senders = message.get_all("Sender") or []
    if senders:
        named = [value for _, value in getaddresses([str(value) for value in senders]) if value]
        if len(named) != 1 or _domain(named[0]) != _domain(address):
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


def _parent_or_same(domain: str, of: str) -> bool:
    domain, of = domain.strip().lower().rstrip("."), of.strip().lower().rstrip(".")
    return bool(domain) and (of == domain or of.endswith("." + domain))


def _verdicts(header: str, from_domain: str) -> tuple[bool, bool]:
    """(a pass for the From domain, every method present failed) of one header. A pass for
    another domain vouches for that domain only: it counts as a fail for this one."""
    text = _COMMENTS.sub(" ", header)
    results: list[str] = []
    for method, result, rest in ((m.group(1).lower(), m.group(2).lower(), m.group(3)) for m in _METHOD.finditer(text)):
        props = {name.lower(): value.strip('"').lower() for name, value in _PROPERTY.findall(rest)}
        if result == "pass":
            aligned = bool(from_domain) and (
                method == "dkim" and _parent_or_same(props.get("header.d", ""), from_domain)
                or method == "spf" and _domain(props.get("smtp.mailfrom", "")) == from_domain  # an address or a bare domain
                or method == "dmarc" and props.get("header.from", "") == from_domain
            )
            result = "pass" if aligned else "fail"
        results.append(result)
    failed = bool(results) and all(result in ("fail", "softfail", "permerror") for result in results)
    return "pass" in results, failed


def _authserv(header: str) -> str:
    return _COMMENTS.sub(" ", header).split(";", 1)[0].strip().split()[0].lower() if header.strip() else ""


def _authenticated(message: Message, sender: str, authserv_id: str) -> bool | None:
    headers = [_one_line(str(value)) for value in message.get_all("Authentication-Results") or []]
    if authserv_id:
        headers = [header for header in headers if _authserv(header) == authserv_id.strip().lower()]
        if not headers:
            return False
    elif not headers:
        return None
    else:
        headers = headers[:1]  # the topmost: the receiving server's own; lower ones came with the message
    from_domain = _domain(sender) if sender else ""
    verdicts = [_verdicts(header, from_domain) for header in headers]
    if any(passed for passed, _ in verdicts):
        return True
    if any(failed for _, failed in verdicts):
        return False
    return False if authserv_id else None


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
