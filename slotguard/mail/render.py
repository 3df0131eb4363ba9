"""Rendering an email: one Jinja2 template per email, its words from the locale's catalog.

Each message is two templates, `NAME.txt.j2` (which sets `subject` with
`{% set subject %}...{% endset %}`) and `NAME.html.j2`, written once with English words in
`{% trans %}` blocks and `_()`; the catalog of the locale (slotguard/mail/catalogs.py) gives
them in the client's language, plural forms included. Templates are looked up in the
admin's folder for the locale (`LOCALE/NAME.txt.j2`), then the admin's folder
(`NAME.txt.j2`), then the bundled `templates/`. The locale asked for is tried as given
("de-AT"), then as its language ("de"), then the practice's locale, then English. HTML is
autoescaped; every template uses StrictUndefined, and all of them are rendered with sample
data at start-up so a broken template or message fails at once, not at 3 a.m.

Money and dates are formatted by Babel for the template's locale (filters `money`, `date`,
`time`, `datetime`); `text_direction` ("ltr" or "rtl") comes from Babel too, so Hebrew HTML
is written right to left, and the `bdi` filter isolates a name or number in it. See
docs/templates.md for what each template is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_date, format_time
from jinja2 import (
    BaseLoader,
    BytecodeCache,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    pass_eval_context,
)
from markupsafe import Markup

from slotguard.config.localized import LOCALE_ALIASES
from slotguard.domain.money import Money, format_money
from slotguard.mail.bidi import isolate_html, isolate_text
from slotguard.mail.catalogs import (
    CatalogProblem,
    catalog_locales,
    translations_for,
    unused_overrides,
)
from slotguard.mail.links import command_mailto

BUNDLED_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# The shipped languages: English (the message ids) and every bundled catalog, so adding a
# language is adding its catalog (templates/locale/LANG/LC_MESSAGES/messages.po).
LOCALES = ("en", *sorted(catalog_locales(BUNDLED_TEMPLATES) - {"en"}))
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
    "inbox_receipt",
)
DIGEST_TEMPLATE = "practitioner_digest"
# Mail to the practice itself, in the practice's language: the daily digest, the alert
# that money asked ahead is not paid as the session comes near (slotguard/practitioner/money_ahead.py),
# the monthly report (slotguard/reports/mailing.py), and the inbox's replies and forwarded
# messages (slotguard/inbox/replies.py).
PRACTITIONER_TEMPLATES = (DIGEST_TEMPLATE, "money_ahead_unpaid", "monthly_report", "inbox_reply")
TEMPLATE_NAMES = (*CLIENT_TEMPLATES, *PRACTITIONER_TEMPLATES)
_HEADER_UNSAFE = re.compile(r"[\r\n\x00-\x1f\x7f]+")
_LOCALE_SHAPE = re.compile(r"^[a-z]{2,3}(?:[-_][a-z0-9]{2,8})*$")
# The year in a CLDR date pattern, with the comma or space before it (filter `day`).
_YEAR = re.compile(r",?\s*\by+\b\.?")


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
    """A template or message is missing or fails to render; the message names it and the cause."""


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    locale: str


def command_link(words: Any, address: str, token: str, body: Any = "") -> str:
    """The filter `{{ words | command_link(address, token, body) }}`: a signed command's
    `mailto:` link (slotguard/mail/links.py), its subject the rendered words and the token."""
    # An item with no date ("... for Ana ()") loses the empty brackets.
    return command_mailto(address, str(words).replace(" ()", ""), token, str(body))


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


class _LocalePrefixLoader(BaseLoader):
    """The template folders of one locale. A practice's own template written for the former
    layout imports `de/_policy.txt.j2`: a name under a locale folder that no folder has is
    looked up without that folder."""

    def __init__(self, folders: list[Path]):
        self.files = FileSystemLoader([str(folder) for folder in folders])

    def get_source(self, environment, template):
        try:
            return self.files.get_source(environment, template)
        except TemplateNotFound:
            first, _, rest = template.partition("/")
            if rest and _LOCALE_SHAPE.match(first):
                return self.files.get_source(environment, rest)
            raise

    def list_templates(self):
        return self.files.list_templates()


class Renderer:
    """Renders the named templates for a locale, with its catalog and Babel formatting filters."""

    def __init__(self, default_locale: str, timezone: str, override_dir: str | Path | None = None):
        self.override_dir = Path(override_dir) if override_dir else None
        self.default_locale = normalize_locale(default_locale) or "en"
        self.timezone = timezone
        self._by_locale: dict[str, Environment] = {}
        self._locales: set[str] | None = None

    @property
    def env(self) -> Environment:
        """An environment over every template folder (no locale's): for listing templates."""
        return self._environment(None)

    def folders(self, locale: str | None) -> list[Path]:
        """Where templates are looked for when rendering in `locale`, first match wins."""
        found = []
        if self.override_dir:
            if locale:
                found.append(self.override_dir / locale)
            found.append(self.override_dir)
        found.append(BUNDLED_TEMPLATES)
        return found

    def _environment(self, locale: str | None) -> Environment:
        return Environment(
            loader=_LocalePrefixLoader(self.folders(locale)),
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            bytecode_cache=_COMPILED,
            extensions=["jinja2.ext.i18n"],
        )

    def env_for(self, locale: str) -> Environment:
        """An environment for `locale`: its templates, its messages, filters that format money
        and dates for it. Raises TemplateProblem when its catalog cannot be read."""
        env = self._by_locale.get(locale)
        if env is None:
            env = self._environment(locale)
            try:
                translations = translations_for(locale, BUNDLED_TEMPLATES, self.override_dir)
            except CatalogProblem as error:
                raise TemplateProblem(f"messages ({locale}): {error}") from None
            env.install_gettext_translations(translations, newstyle=False)  # type: ignore[attr-defined]  # the i18n extension adds it
            env.filters.update(self._filters(locale))
            self._by_locale[locale] = env
        return env

    def available_locales(self) -> set[str]:
        """English, every locale with a bundled or own catalog, and every locale folder of the
        admin's templates."""
        if self._locales is None:
            found = {"en"} | catalog_locales(BUNDLED_TEMPLATES) | catalog_locales(self.override_dir)
            if self.override_dir and self.override_dir.is_dir():
                found |= {entry.name for entry in self.override_dir.iterdir()
                          if entry.is_dir() and any(entry.glob("*.txt.j2"))}
            self._locales = found
        return self._locales

    def has_template(self, name: str, locale: str) -> bool:
        return any((folder / f"{name}.txt.j2").is_file() for folder in self.folders(locale))

    def locales_for(self, name: str) -> list[str]:
        """The locales template `name` can be rendered in."""
        return sorted(locale for locale in self.available_locales() if self.has_template(name, locale))

    def pick_locale(self, name: str, wanted: str | None) -> str:
        """The locale template `name` is rendered in, for a client who reads `wanted`."""
        wanted = normalize_locale(wanted)
        candidates = [wanted, wanted.partition("-")[0] if wanted else None, self.default_locale,
                      self.default_locale.partition("-")[0], "en"]
        available = self.available_locales()
        for candidate in candidates:
            if candidate and candidate in available and self.has_template(name, candidate):
                return candidate
        raise TemplateProblem(f"template {name!r}: no {name}.txt.j2 found in the template folders")

    @staticmethod
    def babel_locale(locale: str) -> Locale:
        try:
            return Locale.parse(locale.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            return Locale.parse("en")

    def clock_locale(self, locale: str) -> Locale:
        """The locale whose conventions dates and times are written in, for an email in
        `locale`: English without a region is written as English is in the practice's region
        (a Norwegian practice writes "Wednesday, 4 March 2026, 14:00", not "March 4, 2:00 PM";
        a practice whose locale is "en" or "en-US" keeps the US forms); every other locale its own."""
        if locale != "en" or self.default_locale.partition("-")[0] == "en" and "-" not in self.default_locale:
            return self.babel_locale(locale)
        practice = self.babel_locale(self.default_locale)
        territory = practice.territory or (get_global("likely_subtags").get(practice.language, "").rpartition("_")[2])
        return self.babel_locale(f"en-{territory}") if territory and territory.isalpha() else self.babel_locale(locale)

    def _filters(self, locale: str) -> dict[str, Callable[..., Any]]:
        babel_locale = self.clock_locale(locale)
        right_to_left = babel_locale.text_direction == "rtl"

        def zone_of(value: Any, zone: str | None) -> datetime:
            return _as_datetime(value).astimezone(ZoneInfo(zone or self.timezone))

        def money(value: Any) -> str:
            return format_money(_as_money(value), locale)

        def date(value: Any, zone: str | None = None, format: str = "full") -> str:
            return format_date(zone_of(value, zone), format=format, locale=babel_locale)

        # The day without its year ("Tuesday 24 November", "tirsdag 24. november"): the
        # locale's full date pattern with the year taken out, so the words stay the locale's.
        day_pattern = _YEAR.sub("", babel_locale.date_formats["full"].pattern).strip(" ,")

        def day(value: Any, zone: str | None = None) -> str:
            return format_date(zone_of(value, zone), format=day_pattern, locale=babel_locale)

        def time(value: Any, zone: str | None = None) -> str:
            return format_time(zone_of(value, zone), format="short", locale=babel_locale)

        def date_time(value: Any, zone: str | None = None, format: str = "medium") -> str:
            local = zone_of(value, zone)
            return f"{format_date(local, format=format, locale=babel_locale)} {format_time(local, format='short', locale=babel_locale)}"

        def hours(value: timedelta | int) -> int:
            return int(value.total_seconds() // 3600) if isinstance(value, timedelta) else int(value)

        @pass_eval_context
        def bdi(eval_context, value: Any) -> Any:
            # In right-to-left HTML a Latin name, an amount or a number keeps its own direction
            # (the Unicode bidi isolate); plain text and left-to-right HTML are left as they are.
            if right_to_left and eval_context.autoescape and value not in (None, ""):
                return Markup("<bdi>{}</bdi>").format(value)
            return value

        return {"money": money, "date": date, "day": day, "time": time, "datetime": date_time, "hours": hours, "bdi": bdi,
                "command_link": command_link}

    def render(self, name: str, context: dict[str, Any], locale: str | None = None) -> Rendered:
        """Render template `name` in `locale` (falling back to the practice's, then English).

        Raises TemplateProblem naming the template and the cause.
        """
        chosen = self.pick_locale(name, locale)
        env = self.env_for(chosen)
        try:
            text_template = env.get_template(f"{name}.txt.j2")
            html_template = env.get_template(f"{name}.html.j2")
            full = {**context, "locale": chosen, "text_direction": self.babel_locale(chosen).text_direction}
            # The text template sets `subject` at top level: the module exposes it.
            module = text_template.make_module(full)
            subject = str(getattr(module, "subject", ""))
            text = str(module)
            html = html_template.render(full)
        except TemplateNotFound as error:
            raise TemplateProblem(f"template {name!r} ({chosen}): missing file {error.name}") from None
        except TemplateError as error:
            lineno = getattr(error, "lineno", None)
            where = f" line {lineno}" if lineno else ""
            raise TemplateProblem(f"template {name!r} ({chosen}){where}: {error.message or error}") from None
        except Exception as error:  # a filter, data or message error in a template is still the template's problem
            raise TemplateProblem(f"template {name!r} ({chosen}): {type(error).__name__}: {error}") from None
        subject = header_safe(subject)
        if not subject:
            raise TemplateProblem(f"template {name!r} ({chosen}): the subject block is empty")
        text = _tidy(text)
        if self.babel_locale(chosen).text_direction == "rtl":  # numbers and Latin text keep their order
            text, html = isolate_text(text), isolate_html(html)
        return Rendered(subject=subject, text=text, html=html, locale=chosen)

    def locales_to_check(self) -> set[str]:
        """The locales checked at start-up: the practice's, English, and every locale the
        admin's folder has templates or messages for. The other bundled translations are
        checked by the test suite and loaded when a client first needs one."""
        wanted = {self.default_locale, self.default_locale.partition("-")[0], "en"}
        if self.override_dir and self.override_dir.is_dir():
            wanted |= {entry.name for entry in self.override_dir.iterdir() if entry.is_dir()} - {"locale"}
            wanted |= catalog_locales(self.override_dir)
        return wanted

    def check_all(
        self,
        sample_context: dict[str, Any] | Callable[[str], dict[str, Any]],
        names: tuple[str, ...] = TEMPLATE_NAMES,
        locales: set[str] | None = None,
    ) -> list[str]:
        """Render every template in each of `locales` it exists in (default:
        `locales_to_check()`), with the fee in each state it can be in; return the problems
        found, with the admin's messages that no template uses. `sample_context` is one
        context for all templates or a function giving the context for a template name."""
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
        if self.override_dir:
            problems += unused_overrides(self.override_dir, [BUNDLED_TEMPLATES, self.override_dir])
        return problems


def fee_variants(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The sample context with its fee in every state a template must handle (and, for a
    collections reminder, listing several fees: `fee_list_variants`)."""
    fee = context.get("fee")
    if not fee:
        return fee_list_variants(context)
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
    return variants + fee_list_variants(context)[1:]


def fee_list_variants(context: dict[str, Any]) -> list[dict[str, Any]]:
    """For a collections reminder's sample (`details` with a balance and days overdue): the
    sample as it is, and as one reminder listing several open fees (`details.fees`, see
    slotguard/collections/together.py): two fees with payment links, two without, one left."""
    details = context.get("details") or {}
    if "days_overdue" not in details or "balance" not in details:
        return [context]
    balance = details["balance"]
    other = {"minor": balance["minor"] * 2, "currency": balance["currency"]}
    first = {"fee": details.get("collects", "act_sample_1"), "fee_policy": details.get("fee_policy", "late_cancel"), "balance": balance,
             "original": details.get("original", balance), "payable": "act_sample_1", "service": context["appointment"]["service"],
             "start": "2026-03-04T09:00:00Z", "timezone": context["appointment"]["timezone"], "payment_link": "https://pay.example.com/p/one"}
    second = {**first, "fee": "act_sample_2", "fee_policy": "no_show", "balance": other, "original": other, "payable": "act_sample_2",
              "start": "2026-03-18T09:00:00Z", "payment_link": "https://pay.example.com/p/two"}
    total = {"minor": balance["minor"] + other["minor"], "currency": balance["currency"]}
    unlinked = [{**entry, "payment_link": ""} for entry in (first, second)]
    return [
        context,
        {**context, "details": {**details, "fees": [first, second], "totals": [total], "total": total}},
        {**context, "details": {**details, "fees": unlinked, "totals": [total], "total": total}},
        {**context, "details": {**details, "fees": [second], "totals": [other], "total": other}},
    ]


def _tidy(text: str) -> str:
    """At most one blank line in a row, no trailing spaces: templates may leave gaps."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    tidy: list[str] = []
    for line in lines:
        if not line and tidy and not tidy[-1]:
            continue
        tidy.append(line)
    return "\n".join(tidy) + "\n"
