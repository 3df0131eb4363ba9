"""Text from a calendar, made safe to keep, show and send.

Anyone who can invite the practitioner can put text into their calendar: the title, the
description, the place, their own display name and address. Before any of it is stored,
logged or written into an email to a client, it passes through here: folded onto one line,
cut to a length, links accepted only as https addresses, email addresses checked strictly.

Descriptions are read as text first (`description_text`): Google Calendar's web editor
stores them as HTML, where a line break is `<br>` or a paragraph, not a newline.

Pure: no I/O. Every function takes any string and never raises for its content.
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import urlsplit

ADDRESS_LIMIT = 254  # RFC 5321: the longest forward path
LOCAL_PART_LIMIT = 64
LINK_LIMIT = 2000
SHOWN_LIMIT = 80

# Runs of whitespace and control characters (C0, DEL, C1, and the Unicode line and
# paragraph separators that some mail clients and terminals break lines on).
_FOLD = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-")
# RFC 5322 dot-atom in ASCII: atoms never contain ".", so this matches in one pass.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_LINK_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029\"'<>\\`{}|^]")
# An HTML tag (opening, closing or empty) of a name HTML knows; anything else between angle
# brackets ("<ana@example.com>", "a < b") is text. [^<>]* stops at the next bracket, so a
# failed match costs only the stretch to it: the whole scan stays linear.
_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9]{0,9})(?=[\s/>])[^<>]*>")
# Tags that end a line (blocks, list items, rows, breaks); other known tags are just dropped.
_BREAKING_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "footer", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "ul",
})
_INLINE_TAGS = frozenset({
    "a", "abbr", "b", "big", "body", "cite", "code", "del", "em", "font", "head", "html", "i", "img", "ins", "kbd",
    "mark", "meta", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "u", "var", "wbr",
})


def one_line(text: str, limit: int) -> str:
    """`text` with every run of whitespace and control characters folded into one space,
    trimmed, and cut to at most `limit` characters (the cut marked with "…")."""
    if len(text) <= limit and text.isprintable() and "  " not in text and text == text.strip():
        return text  # nothing to fold (the usual case: isprintable is False for every break)
    folded = _FOLD.sub(" ", text or "").strip()
    if len(folded) > limit:
        folded = folded[: max(limit - 1, 0)].rstrip() + "…"
    return folded


def shown(text: object, limit: int = SHOWN_LIMIT) -> str:
    """`text` for a message or a log line: one line, escapes visible (repr), at most about
    `limit` characters. Use it for values that may hold line breaks or junk."""
    text = str(text)
    cut = text[:limit]
    return repr(cut) + ("…" if len(text) > limit else "")


def email_address(text: str) -> str | None:
    """The address in lower case when `text` is exactly one plain email address
    (local@domain.tld, no display name, no spaces, no control characters), else None."""
    candidate = (text or "").strip()
    if not candidate or len(candidate) > ADDRESS_LIMIT or candidate.count("@") != 1:
        return None
    local, domain = candidate.split("@")
    if not _local_part_ok(local) or _ascii_domain(domain) is None:
        return None
    return candidate.lower()


def _local_part_ok(local: str) -> bool:
    if len(local) > LOCAL_PART_LIMIT:
        return False
    if local.isascii():
        return _DOT_ATOM.fullmatch(local) is not None
    if not local or local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    # RFC 5322 dot-atom, plus the letters and digits of other scripts (RFC 6531).
    return all(ch == "." or ch in _ATEXT or (ord(ch) > 127 and ch.isalnum()) for ch in local)


def _ascii_domain(domain: str) -> str | None:
    """The domain in ASCII (international names in their xn-- form), or None when it is
    not a domain name with at least two labels."""
    if not domain or len(domain) > 253:
        return None
    if not domain.isascii():
        if not all(ch == "." or ch == "-" or ch.isalnum() for ch in domain):
            return None
        try:
            domain = unicodedata.normalize("NFC", domain).encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = domain.lower().split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if labels[-1].isdigit():
        return None  # an IP address is not a mail domain here
    return domain.lower()


def https_link(text: str) -> str:
    """`text` (trimmed) when it is an https:// URL with a host and nothing a mail client or
    browser could read as markup or a second line; "" otherwise (javascript:, http:, data:,
    quotes, spaces, control characters)."""
    candidate = (text or "").strip()
    if candidate[:8].lower() != "https://" or len(candidate) > LINK_LIMIT or _LINK_FORBIDDEN.search(candidate):
        return ""
    try:
        parts = urlsplit(candidate)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return ""
    if parts.scheme.lower() != "https" or not host:
        return ""
    return candidate


def description_text(text: str, limit: int) -> str:
    """The first `limit` characters of an event description, read as text: when it holds
    HTML (Google Calendar's web editor writes `lang: de<br>price: 450 NOK`), a line break for
    each `<br>`, paragraph, `<div>`, list item or table row, other known tags removed, HTML
    comments removed; then entities unescaped (`&nbsp;`, `&amp;`, `&#35;`). Text that only
    looks like a tag (`<ana@example.com>`, `a < b`) is kept as written. One pass: time
    linear in `limit`."""
    text = (text or "")[:limit]
    if "<" not in text:
        return html.unescape(text) if "&" in text else text
    parts: list[str] = []
    at, end = 0, len(text)
    unclosed_comment = False  # once no "-->" follows a "<!--", none follows a later one either
    while at < end:
        bracket = text.find("<", at)
        if bracket < 0:
            parts.append(text[at:])
            break
        parts.append(text[at:bracket])
        if text.startswith("<!--", bracket):
            closing = -1 if unclosed_comment else text.find("-->", bracket + 4)
            if closing >= 0:
                at = closing + 3
                continue
            unclosed_comment = True
        else:
            tag = _TAG.match(text, bracket)
            name = tag.group(1).lower() if tag else ""
            if name in _BREAKING_TAGS or name in _INLINE_TAGS:
                if name in _BREAKING_TAGS:
                    parts.append("\n")
                assert tag is not None  # a known tag name came from a match
                at = tag.end()
                continue
        parts.append("<")
        at = bracket + 1
    return html.unescape("".join(parts))


# An email address in free text (a message listing possible clients, a provider's error).
ADDRESS_IN_TEXT = re.compile(r"[^\s@<>(),;:'\"\[\]]+@[^\s@<>(),;:'\"\[\]]+\.[^\s@<>(),;:'\"\[\]]+")
# Calendar text quoted in a message by `shown`: a Python repr, single-quoted, or double-quoted
# when it holds an apostrophe. Slotguard's own hints are double-quoted without one
# ("email: ana@example.com"), so they stay.
QUOTED_IN_TEXT = re.compile(r"""'(?:[^'\\]|\\.)*'…?|"(?:[^"\\]|\\.)*'(?:[^"\\]|\\.)*"…?""")
NO_ADDRESS = "(address)"
NO_CALENDAR_TEXT = "(calendar text)"


def without_clients(text: str, keep: frozenset[str] = frozenset(), address: str = NO_ADDRESS, quoted: str = NO_CALENDAR_TEXT) -> str:
    """`text` (a problem's message, an error) with every email address but those in `keep`
    (lower case) replaced by `address`, and every text `shown` quoted from a calendar (a
    title, a line's value: it may name anyone) by `quoted`. For log lines, and for what a
    client is given about events that name others. Ids, times and amounts stay."""
    text = QUOTED_IN_TEXT.sub(quoted, str(text))
    return ADDRESS_IN_TEXT.sub(lambda found: found.group(0) if found.group(0).lower() in keep else address, text)

