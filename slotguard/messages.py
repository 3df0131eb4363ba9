"""Rendering client emails from Jinja2 templates into MIME messages.

Each message is two templates, `LOCALE/NAME.txt.j2` (which sets `subject` with `{% set subject %}...{% endset %}`)
and `LOCALE/NAME.html.j2`, looked up first in the admin's template folder, then in the
bundled `templates/`; a locale without its own version falls back to English. HTML is
autoescaped; every template uses StrictUndefined, and all of them are rendered with sample
data at start-up so a broken template fails at once, not at 3 a.m.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.numbers import format_currency
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
)

from slotguard.money import Money

BUNDLED_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE_NAMES = ("booking_confirmation", "reminder", "late_cancel_notice", "no_show_followup")
_HEADER_UNSAFE = re.compile(r"[\r\n\x00-\x1f\x7f]+")


class TemplateProblem(Exception):
    """A template is missing or fails to render; the message names it and the cause."""


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    locale: str


def header_safe(value: str) -> str:
    """Fold control characters (CR, LF...) into a space so data cannot add headers."""
    return _HEADER_UNSAFE.sub(" ", value or "").strip()


class Renderer:
    """Renders the named templates for a locale, with Babel formatting filters."""

    def __init__(self, default_locale: str, timezone: str, override_dir: str | Path | None = None):
        folders = [str(override_dir)] if override_dir else []
        folders.append(str(BUNDLED_TEMPLATES))
        self.default_locale = default_locale
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

    def _pick_locale(self, name: str, wanted: str | None) -> str:
        for candidate in (wanted, self.default_locale, "en"):
            if not candidate:
                continue
            try:
                self.loader.get_source(self.env, f"{candidate}/{name}.txt.j2")
                return candidate
            except TemplateNotFound:
                continue
        raise TemplateProblem(f"template {name!r}: no en/{name}.txt.j2 found in the template folders")

    def _filters(self, locale: str) -> dict[str, Any]:
        try:
            babel_locale = Locale.parse(locale.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            babel_locale = Locale.parse("en")

        def zone_of(value: datetime, zone: str | None) -> datetime:
            return value.astimezone(ZoneInfo(zone or self.timezone))

        def money(value: Money) -> str:
            return format_currency(value.to_decimal(), value.currency, locale=babel_locale)

        def date(value: datetime, zone: str | None = None) -> str:
            return format_date(zone_of(value, zone), format="full", locale=babel_locale)

        def time(value: datetime, zone: str | None = None) -> str:
            return format_time(zone_of(value, zone), format="short", locale=babel_locale)

        def hours(value: timedelta | int) -> int:
            return int(value.total_seconds() // 3600) if isinstance(value, timedelta) else int(value)

        return {"money": money, "date": date, "time": time, "hours": hours}

    def render(self, name: str, context: dict[str, Any], locale: str | None = None) -> Rendered:
        """Render template `name` in `locale` (falling back to the practice's, then English).

        Raises TemplateProblem naming the template and the cause.
        """
        chosen = self._pick_locale(name, locale)
        env = self.env_for(chosen)
        try:
            text_template = env.get_template(f"{chosen}/{name}.txt.j2")
            html_template = env.get_template(f"{chosen}/{name}.html.j2")
            full = {**context, "locale": chosen}
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
        return Rendered(subject=subject, text=text.strip() + "\n", html=html, locale=chosen)

    def check_all(self, sample_context: dict[str, Any], names: tuple[str, ...] = TEMPLATE_NAMES) -> list[str]:
        """Render every template in every locale it exists in; return the problems found."""
        problems = []
        for name in names:
            locales = self.locales_for(name) or [self.default_locale]
            for locale in locales:
                for fee_state in ("pending_review", "done", "waived"):
                    context = dict(sample_context)
                    if context.get("fee"):
                        context["fee"] = {**context["fee"], "state": fee_state}
                    try:
                        self.render(name, context, locale)
                    except TemplateProblem as error:
                        problems.append(str(error))
                        break
        return problems


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
) -> EmailMessage:
    """A multipart/alternative message (plain text + HTML) with safe headers.

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
    message["Content-Language"] = rendered.locale
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def message_id_for(action_id: str, sender_email: str) -> str:
    """Stable per action, so a resend after a crash is recognisable as the same message."""
    domain = sender_email.rpartition("@")[2] or "slotguard.invalid"
    return f"<{action_id}@{header_safe(domain)}>"
