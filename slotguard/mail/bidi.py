"""Left-to-right runs kept whole in right-to-left emails (Hebrew).

In a right-to-left paragraph the Unicode bidi algorithm reorders the pieces of a run of
numbers and Latin words separated by spaces and punctuation: "+47 400 00 000" shows as
"000 00 400 47+", "10:00–11:00" as "11:00–10:00". Each such run (a phone number, an amount,
a time, a name of two words, payment instructions, an error text; one word or number keeps
its order by itself) is isolated:
in the HTML with `<bdi>` (outside elements that already isolate left-to-right text: `<bdi>`,
`<code>`, anything with `dir="ltr"` or `dir="auto"`), in the text part with the Unicode isolates LRI ... PDI (U+2066, U+2069), except
web and email addresses, which mail programs turn into links and the algorithm keeps whole.
Done on the rendered email, so every template (and a practice's own) gets it without writing
`| bdi` at each value; left-to-right locales are not touched.
"""

from __future__ import annotations

import html
import re

HEBREW = "\u0590-\u05ff\ufb1d-\ufb4f"
# A run starts at a Latin letter, a digit or "+" (a phone number) and takes everything that
# is not right-to-left (a Hebrew letter, the RLM Babel puts in amounts), a line break or a
# middle dot (the separator of the footer's contact line).
_RUN = re.compile(rf"[A-Za-z0-9+][^{HEBREW}\u200f\n·<>]*")
_TRAILING = " \t\u00a0\u202f,.;:!?(–—-"
_TAG = re.compile(r"(<[^>]*>)")
_ISOLATING = re.compile(r"^<(bdi|code)\b|\bdir\s*=\s*[\"']?(ltr|auto)", re.IGNORECASE)
_VOID = {"br", "img", "hr", "meta", "input", "link", "wbr"}
LRI, PDI = "\u2066", "\u2069"


def _runs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each left-to-right run in `text`, trailing punctuation and an
    unmatched closing parenthesis left out (they take the paragraph's direction)."""
    found = []
    for match in _RUN.finditer(text):
        run = match.group().rstrip(_TRAILING)
        while run.endswith(")") and run.count(")") > run.count("("):
            run = run[:-1].rstrip(_TRAILING)
        if run:
            found.append((match.start(), match.start() + len(run)))
    return found


def _wrap(text: str, before: str, after: str, escape, skip=lambda run: False) -> str:
    out, last = [], 0
    for start, end in _runs(text):
        run = text[start:end]
        out.append(escape(text[last:start]))
        out.append(escape(run) if skip(run) else f"{before}{escape(run)}{after}")
        last = end
    out.append(escape(text[last:]))
    return "".join(out)


def _one_word(run: str) -> bool:
    """A run the bidi algorithm keeps in order without help: one word or number ("Ana",
    "450.00", "50%", "5")."""
    return not (run[0] == "+" or re.search(r"[^A-Za-z0-9.,:%_]", run))


def _whole_already(run: str) -> bool:
    """One word, or a web or email address (which mail programs turn into links: an isolate
    beside one could end up in the link)."""
    return _one_word(run) or "://" in run or "@" in run or run.startswith("www.")


def isolate_text(text: str) -> str:
    """The text part with each left-to-right run that the bidi algorithm would reorder (words
    or numbers with spaces or dashes between them: "+47 400 00 000", "10:00–11:00",
    "Storgata 1, Oslo") between LRI and PDI."""
    return _wrap(text, LRI, PDI, lambda part: part, _whole_already)


def isolate_html(document: str) -> str:
    """The HTML with each left-to-right run of text in `<bdi>`; tags, attributes, the head and
    text already isolated are left as they are."""
    start = document.find("<body")
    start = document.find(">", start) + 1 if start >= 0 else 0
    head, body = document[:start], document[start:]
    out: list[str] = []
    stack: list[bool] = []
    for piece in _TAG.split(body):
        if piece.startswith("<"):
            name = re.match(r"</?\s*([a-zA-Z0-9]+)", piece)
            tag = name.group(1).lower() if name else ""
            if piece.startswith("</"):
                if stack:
                    stack.pop()
            elif tag and tag not in _VOID and not piece.endswith("/>"):
                stack.append(bool(_ISOLATING.search(piece)))
            out.append(piece)
        elif piece and not any(stack) and re.search("[A-Za-z0-9]", piece):
            out.append(_wrap(html.unescape(piece), "<bdi>", "</bdi>", lambda part: html.escape(part, quote=False), _one_word))
        else:
            out.append(piece)
    return head + "".join(out)
