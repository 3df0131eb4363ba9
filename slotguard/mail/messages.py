"""Rendering client emails from Jinja2 templates into MIME messages.

Each message is two templates, `LOCALE/NAME.txt.j2` (which sets `subject` with
`{% set subject %}...{% endset %}`) and `LOCALE/NAME.html.j2`, looked up first in the admin's
template folder, then in the bundled `templates/`. The locale asked for is tried as given
("de-AT"), then as its language ("de"), then the practice's locale, then English. HTML is
autoescaped; every template uses StrictUndefined, and all of them are rendered with sample
data at start-up so a broken template fails at once, not at 3 a.m.

Money and dates are formatted by Babel for the template's locale (filters `money`, `date`,
`time`, `datetime`); `text_direction` ("ltr" or "rtl") comes from Babel too, so Hebrew HTML
is written right to left. See docs/templates.md for what each template is given.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.numbers import format_currency
from jinja2 import (
    BytecodeCache,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
)

from slotguard.domain.money import Money

BUNDLED_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
LOCALES = ("en", "nb", "da", "de", "pl", "he")
CLIENT_TEMPLATES = (
    "booking_confirmation",
    "reminder",
    "late_cancel_notice",
    "no_show_followup",
    "grace_warning",
    "fee_charged",
    "refund_notice",
    "payment_failed",
    "deposit_request",
    "slot_freed",
    "payment_reminder_1",
    "payment_reminder_2",
    "payment_final_notice",
    "payment_plan_installment",
    "payment_receipt",
    "payment_referral",
)
DIGEST_TEMPLATE = "practitioner_digest"
TEMPLATE_NAMES = (*CLIENT_TEMPLATES, DIGEST_TEMPLATE)
# Templates whose message carries the appointment as an .ics file.
ICS_TEMPLATES = frozenset({"booking_confirmation", "reminder"})
# Language codes people write that have a bundled neighbour under another name.
LOCALE_ALIASES = {"no": "nb", "nn": "nb", "iw": "he"}
_SEQUENCE_EPOCH = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))
_HEADER_UNSAFE = re.compile(r"[\r\n\x00-\x1f\x7f]+")
_LOCALE_SHAPE = re.compile(r"^[a-z]{2,3}(?:[-_][a-z0-9]{2,8})*$")
# CLDR's currency spacing: a symbol made of letters ("NOK") is set apart from the digits.
_LETTER_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")


class _MemoryBytecodeCache(BytecodeCache):
    """Compiled templates shared by every Renderer of the process (tests and `replay` build
    many). Jinja checks each entry against its source's checksum, so an edited template is
    compiled again."""

    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        code = self._store.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket) -> None:
        self._store[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _MemoryBytecodeCache()


class TemplateProblem(Exception):
    """A template is missing or fails to render; the message names it and the cause."""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    maintype: str
    subtype: str
    data: bytes
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    locale: str


def header_safe(value: str) -> str:
    """Fold control characters (CR, LF...) into a space so data cannot add headers."""
    return _HEADER_UNSAFE.sub(" ", value or "").strip()


def normalize_locale(value: str | None) -> str | None:
    """A locale code as written in an event or the config ("de-AT", "NB"), lower-cased with
    "-", or None when it is empty or not shaped like a locale (it never reaches a file path)."""
    text = (value or "").strip().lower().replace("_", "-")
    if not text or not _LOCALE_SHAPE.match(text):
        return None
    language, _, rest = text.partition("-")
    language = LOCALE_ALIASES.get(language, language)
    return f"{language}-{rest}" if rest else language


def _as_money(value: Any) -> Money:
    if isinstance(value, Money):
        return value
    if isinstance(value, Mapping) and "minor" in value and "currency" in value:
        return Money(int(value["minor"]), str(value["currency"]))
    raise TypeError(f"money: {value!r} is not an amount (Money or {{'minor', 'currency'}})")


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            return parsed
    raise TypeError(f"date: {value!r} is not a timezone-aware date and time")


class Renderer:
    """Renders the named templates for a locale, with Babel formatting filters."""

    def __init__(self, default_locale: str, timezone: str, override_dir: str | Path | None = None):
        folders = [str(override_dir)] if override_dir else []
        folders.append(str(BUNDLED_TEMPLATES))
        self.override_dir = Path(override_dir) if override_dir else None
        self.default_locale = normalize_locale(default_locale) or "en"
        self.timezone = timezone
        self.loader = ChoiceLoader([FileSystemLoader(folder) for folder in folders])
        self.env = self._environment()
        self._by_locale: dict[str, Environment] = {}

    def _environment(self) -> Environment:
        return Environment(
            loader=self.loader,
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            bytecode_cache=_COMPILED,
        )

    def env_for(self, locale: str) -> Environment:
        """An environment whose filters format money and dates for `locale`."""
        env = self._by_locale.get(locale)
        if env is None:
            env = self._environment()
            env.filters.update(self._filters(locale))
            self._by_locale[locale] = env
        return env

    def locales_for(self, name: str) -> list[str]:
        found = []
        for template_name in self.env.list_templates(extensions=["j2"]):
            locale, _, file_name = template_name.partition("/")
            if file_name == f"{name}.txt.j2":
                found.append(locale)
        return sorted(found)

    def pick_locale(self, name: str, wanted: str | None) -> str:
        """The locale folder template `name` is rendered from, for a client who reads `wanted`."""
        wanted = normalize_locale(wanted)
        candidates = [wanted, wanted.partition("-")[0] if wanted else None, self.default_locale,
                      self.default_locale.partition("-")[0], "en"]
        for candidate in candidates:
            if not candidate:
                continue
            try:
                self.loader.get_source(self.env, f"{candidate}/{name}.txt.j2")
                return candidate
            except TemplateNotFound:
                continue
        raise TemplateProblem(f"template {name!r}: no en/{name}.txt.j2 found in the template folders")

    @staticmethod
    def babel_locale(locale: str) -> Locale:
        try:
            return Locale.parse(locale.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            return Locale.parse("en")

    def _filters(self, locale: str) -> dict[str, Callable[..., Any]]:
        babel_locale = self.babel_locale(locale)

        def zone_of(value: Any, zone: str | None) -> datetime:
            return _as_datetime(value).astimezone(ZoneInfo(zone or self.timezone))

        def money(value: Any) -> str:
            amount = _as_money(value)
            text = format_currency(amount.to_decimal(), amount.currency, locale=babel_locale)
            return _LETTER_DIGIT.sub("\u00a0", text)

        def date(value: Any, zone: str | None = None, format: str = "full") -> str:
            return format_date(zone_of(value, zone), format=format, locale=babel_locale)

        def time(value: Any, zone: str | None = None) -> str:
            return format_time(zone_of(value, zone), format="short", locale=babel_locale)

        def date_time(value: Any, zone: str | None = None, format: str = "medium") -> str:
            local = zone_of(value, zone)
            return f"{format_date(local, format=format, locale=babel_locale)} {format_time(local, format='short', locale=babel_locale)}"

        def hours(value: timedelta | int) -> int:
            return int(value.total_seconds() // 3600) if isinstance(value, timedelta) else int(value)

        return {"money": money, "date": date, "time": time, "datetime": date_time, "hours": hours}

    def render(self, name: str, context: dict[str, Any], locale: str | None = None) -> Rendered:
        """Render template `name` in `locale` (falling back to the practice's, then English).

        Raises TemplateProblem naming the template and the cause.
        """
        chosen = self.pick_locale(name, locale)
        env = self.env_for(chosen)
        try:
            text_template = env.get_template(f"{chosen}/{name}.txt.j2")
            html_template = env.get_template(f"{chosen}/{name}.html.j2")
            full = {**context, "locale": chosen, "text_direction": self.babel_locale(chosen).text_direction}
            # The text template sets `subject` at top level: the module exposes it.
            module = text_template.make_module(full)
            subject = str(getattr(module, "subject", ""))
            text = str(module)
            html = html_template.render(full)
        except TemplateNotFound as error:
            raise TemplateProblem(f"template {name!r} ({chosen}): missing file {error.name}") from None
        except TemplateError as error:
            where = f" line {error.lineno}" if getattr(error, "lineno", None) else ""
            raise TemplateProblem(f"template {name!r} ({chosen}){where}: {error.message or error}") from None
        except Exception as error:  # a filter or data error in a template is still the template's problem
            raise TemplateProblem(f"template {name!r} ({chosen}): {type(error).__name__}: {error}") from None
        subject = header_safe(subject)
        if not subject:
            raise TemplateProblem(f"template {name!r} ({chosen}): the subject block is empty")
        return Rendered(subject=subject, text=_tidy(text), html=html, locale=chosen)

    def locales_to_check(self) -> set[str]:
        """The locales checked at start-up: the practice's, English, and every locale the
        admin's folder has templates for. The other bundled translations are checked by the
        test suite and compiled when a client first needs one."""
        wanted = {self.default_locale, self.default_locale.partition("-")[0], "en"}
        if self.override_dir and self.override_dir.is_dir():
            wanted |= {entry.name for entry in self.override_dir.iterdir() if entry.is_dir()}
        return wanted

    def check_all(
        self,
        sample_context: dict[str, Any] | Callable[[str], dict[str, Any]],
        names: tuple[str, ...] = TEMPLATE_NAMES,
        locales: set[str] | None = None,
    ) -> list[str]:
        """Render every template in each of `locales` it exists in (default:
        `locales_to_check()`), with the fee in each state it can be in; return the problems
        found. `sample_context` is one context for all templates or a function giving the
        context for a template name."""
        locales = self.locales_to_check() if locales is None else locales
        problems = []
        for name in names:
            base = sample_context(name) if callable(sample_context) else sample_context
            existing = self.locales_for(name)
            for locale in [found for found in existing if found in locales] or [self.default_locale]:
                for context in fee_variants(base):
                    try:
                        self.render(name, context, locale)
                    except TemplateProblem as error:
                        problems.append(str(error))
                        break
        return problems


def fee_variants(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The sample context with its fee in every state a template must handle."""
    fee = context.get("fee")
    if not fee:
        return [context]
    variants = []
    for state, payment_status, link in (
        ("pending_review", "", ""),
        ("done", "paid", ""),
        ("done", "receivable", ""),
        ("done", "unpaid", "https://pay.example.com/p/sample"),
        ("done", "nothing_taken", ""),  # a refund of a fee never paid: the request withdrawn
        ("waived", "", ""),
    ):
        variants.append({**context, "fee": {**fee, "state": state, "payment_status": payment_status, "payment_link": link}})
    variants.append({**context, "fee": None})
    return variants


def _tidy(text: str) -> str:
    """At most one blank line in a row, no trailing spaces: templates may leave gaps."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    tidy: list[str] = []
    for line in lines:
        if not line and tidy and not tidy[-1]:
            continue
        tidy.append(line)
    return "\n".join(tidy) + "\n"


def build_email(
    rendered: Rendered,
    *,
    sender_name: str,
    sender_email: str,
    reply_to: str,
    to_name: str,
    to_email: str,
    message_id: str,
    date: datetime,
    attachments: tuple[Attachment, ...] | list[Attachment] = (),
) -> EmailMessage:
    """A multipart/alternative message (plain text + HTML), mixed with attachments, with
    safe headers.

    Names are folded to one line so event data cannot inject headers; addresses are checked
    by the email package. Raises ValueError on an address that cannot be used.
    """
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = Address(display_name=header_safe(sender_name), addr_spec=header_safe(sender_email))
    message["To"] = Address(display_name=header_safe(to_name), addr_spec=header_safe(to_email))
    message["Reply-To"] = Address(display_name=header_safe(sender_name), addr_spec=header_safe(reply_to))
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    for attachment in attachments:
        message.add_attachment(
            attachment.data,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
            params=dict(attachment.params),
        )
    # Set last: set_content() drops Content-* headers set before it.
    message["Content-Language"] = rendered.locale
    return message


def message_id_for(action_id: str, sender_email: str) -> str:
    """Stable per action, so a resend after a crash is recognisable as the same message."""
    domain = sender_email.rpartition("@")[2] or "slotguard.invalid"
    return f"<{action_id}@{header_safe(domain)}>"


def appointment_uid(calendar_id: str, event_id: str, sender_email: str) -> str:
    """The .ics UID of an appointment: the same for every message about it (so a calendar
    app updates its entry instead of adding a second one), and no internal id in clear."""
    digest = hashlib.sha256(f"{calendar_id}/{event_id}".encode()).hexdigest()[:24]
    domain = sender_email.rpartition("@")[2] or "slotguard.invalid"
    return f"slotguard-{digest}@{header_safe(domain)}"


def appointment_ics(
    *,
    uid: str,
    summary: str,
    start: datetime,
    end: datetime,
    stamp: datetime,
    location: str = "",
    description: str = "",
    url: str = "",
) -> Attachment:
    """An iCalendar file (METHOD:PUBLISH: information, not an invitation to answer) for one
    appointment. Times are written in UTC; the client's calendar shows them in its own zone."""
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//Slotguard//appointment//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(ZoneInfo("UTC")))
    event.add("dtstart", start.astimezone(ZoneInfo("UTC")))
    event.add("dtend", end.astimezone(ZoneInfo("UTC")))
    # A message sent later describes a newer version of the appointment (it may have moved).
    event.add("sequence", max(0, int((stamp - _SEQUENCE_EPOCH).total_seconds() // 60)))
    event.add("summary", header_safe(summary))
    event.add("status", "CONFIRMED")
    if location:
        event.add("location", header_safe(location))
    if description:
        event.add("description", description)
    if url:
        event.add("url", url)
    calendar.add_component(event)
    return Attachment(
        filename="appointment.ics",
        maintype="text",
        subtype="calendar",
        data=calendar.to_ical(),
        params={"method": "PUBLISH", "charset": "utf-8"},
    )
