"""Build the engine's parts from the settings: which calendar, provider and mailer to use.

Each adapter is imported inside the function that picks it: only the one the settings name is
loaded (a practice on an .ics feed with record-only payments never loads Google's or
Stripe's client libraries). No import cycle is hidden by this (tests/unit/test_layers.py).

`gates` (slotguard/domain/interfaces.py Gates) is given by a deployment's worker: the limits
shared by all workers (slotguard/store/shared_limits.py SharedLimits.practice_gates). None,
for one practice: an in-process limiter for Stripe and no gate of our own for Google."""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from pathlib import Path

from slotguard.config.schema import ConfigError, Settings
from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.interfaces import CalendarSource, CalendarWriteBack, Gates, InboxSource, Mailer, NullWriteBack, PaymentProvider
from slotguard.mail.messages import Renderer
from slotguard.mail.samples import sample_context
from slotguard.policies.info import Policy
from slotguard.policies.loading import load_enabled
from slotguard.run.engine import Engine
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard")


def open_calendars(settings: Settings, gates: Gates | None = None) -> list[tuple[CalendarSource, CalendarWriteBack]]:
    if settings.calendar.source == "ics":
        from integration.ics_source import IcsSource

        return [(IcsSource(settings), NullWriteBack())]
    if settings.calendar.source == "google":
        from integration.google_calendar import open_calendars as open_google

        return list(open_google(settings, gates=gates.google if gates else ()))  # as the protocols' pairs (a list of Google's pairs is not one: lists are invariant)
    if settings.calendar.source == "microsoft":
        from integration.microsoft_graph import open_calendars as open_microsoft

        return list(open_microsoft(settings))
    if settings.calendar.source == "caldav":
        from integration.caldav_source import open_calendar as open_caldav

        return [open_caldav(settings)]
    raise ConfigError([f'calendar.source: "{settings.calendar.source}" cannot be used by the daemon; use "ics", "google", "microsoft" or "caldav"'])


def open_provider(settings: Settings, gates: Gates | None = None) -> PaymentProvider:
    if settings.payments.provider == "stripe":
        from integration.stripe_provider import open_provider as open_stripe

        return open_stripe(settings, account_gate=gates.stripe if gates else None)
    from integration.record_only import RecordOnlyProvider

    return RecordOnlyProvider()


def open_mailer(settings: Settings) -> Mailer:
    if settings.mail.transport == "smtp":
        from integration.smtp_mailer import open_mailer as open_smtp

        return open_smtp(settings)
    if settings.mail.transport == "gmail":
        from integration.gmail_mailer import open_mailer as open_gmail

        return open_gmail(settings)
    from integration.outbox_dir import OutboxDirMailer

    return OutboxDirMailer(settings.mail.outbox_dir)


def make_renderer(settings: Settings, policies: list[Policy], template_dir: str | None = None, *, check: bool = True) -> Renderer:
    """A renderer whose templates all render with sample data; raises ConfigError otherwise.
    `check` False skips that proof (a third of a second): for a worker building again the
    engine of a practice whose unchanged config it has already checked."""
    renderer = Renderer(settings.practice.locale, settings.practice.timezone, template_dir or settings.mail.templates_dir or None)
    if not check:
        return renderer
    problems = renderer.check_all(lambda name: sample_context(settings, policies, name))
    if problems:
        raise ConfigError([f"templates: {problem}" for problem in problems])
    return renderer


def charge_from(settings: Settings, ledger: Ledger, now: datetime) -> datetime:
    """The configured charge_from, else the time this ledger first ran (recorded once)."""
    if settings.payments.charge_from is not None:
        return settings.payments.charge_from
    stored = ledger.meta("first_run_at")
    if stored is None:
        stored = to_utc_text(now)
        ledger.set_meta("first_run_at", stored)
    return from_utc_text(stored)


def open_inbox(settings: Settings) -> InboxSource | None:
    """The mailbox of commands by email (`inbox.source`, docs/inbox.md); None for "none". A
    transport's module is imported only when it is chosen."""
    source = settings.inbox.source
    if source == "none":
        return None
    if source == "memory":
        from integration.memory import MemoryInbox

        return MemoryInbox()
    module = importlib.import_module({"imap": "integration.imap_inbox", "gmail": "integration.gmail_inbox"}[source])
    return module.open_inbox(settings)


def build_engine(
    settings: Settings,
    now: datetime,
    *,
    ledger: Ledger | None = None,
    calendars: list[tuple[CalendarSource, CalendarWriteBack]] | None = None,
    provider: PaymentProvider | None = None,
    mailer: Mailer | None = None,
    stop_requested=lambda: False,
    gates: Gates | None = None,
    check_templates: bool = True,
    inbox: InboxSource | None = None,
) -> Engine:
    """Everything wired from the settings, parts given as arguments taking precedence;
    `gates`, from a deployment's worker, pace the Google and Stripe adapters it opens.
    `check_templates` False: the templates are not proven to render first (make_renderer)."""
    policies = load_enabled(settings)
    renderer = make_renderer(settings, policies, check=check_templates)
    ledger = ledger or Ledger(settings.storage.location, settings.storage.schema_name)
    return Engine(
        settings=settings,
        ledger=ledger,
        calendars=calendars if calendars is not None else open_calendars(settings, gates),
        provider=provider or open_provider(settings, gates),
        mailer=mailer or open_mailer(settings),
        renderer=renderer,
        policies=policies,
        charge_from=charge_from(settings, ledger, now),
        stop_requested=stop_requested,
        inbox=inbox if inbox is not None else open_inbox(settings),
    )


def data_dir(settings: Settings) -> Path:
    return Path(settings.storage.data_dir)
