"""The configuration schema, loading and validation.

Schema first: every key has a description, a default (where it can have one) and an
example; unknown keys are errors; all errors are reported at once, each with its path, e.g.
`policies.no_show.fee: "abc" is not a fee`. Secrets are referenced, never written in.

Relative paths are resolved against the working directory Slotguard is started in.
"""

from __future__ import annotations

import os
import re
import ssl
import stat
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from slotguard.config.limits import at_most, within_max_amount, within_max_duration
from slotguard.domain.durations import DurationError, format_duration, parse_duration
from slotguard.domain.money import Fee, Money, MoneyError
from slotguard.intake.untrusted import email_address


class ConfigError(Exception):
    """The configuration cannot be used. `problems` lists "path: message" lines."""

    def __init__(self, problems: list[str], source: str = ""):
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(
            f"{len(problems)} problem(s){where}:\n" + "\n".join(f"  - {p}" for p in problems)
        )


# --- value types ----------------------------------------------------------------------


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return within_max_duration(parse_duration(value))
    except DurationError as error:
        raise ValueError(str(error)) from None


def _money(value: Any) -> Money:
    if isinstance(value, Money):
        return value
    if isinstance(value, float):
        raise ValueError("write amounts as text with a currency, like \"900 NOK\" (not a float)")
    try:
        money = Money.parse(value)
    except MoneyError as error:
        raise ValueError(str(error)) from None
    within_max_amount(money.minor, value)
    return money


def _positive_money(value: Money) -> Money:
    if value.minor <= 0:
        raise ValueError(f"must be a positive amount, got {value}")
    return value


def _fee(value: Any) -> Fee:
    if isinstance(value, Fee):
        return value
    if isinstance(value, float):
        raise ValueError("write fees as text, like \"50%\" or \"450 NOK\" (not a float)")
    try:
        fee = Fee.parse(value)
    except MoneyError as error:
        raise ValueError(str(error)) from None
    if fee.fixed is not None:
        within_max_amount(fee.fixed.minor, value)
    return fee


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known time zone; use an IANA name like Europe/Oslo") from None
    return value


Duration = Annotated[
    timedelta, BeforeValidator(_duration), PlainSerializer(format_duration, return_type=str)
]
def _positive_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_positive_duration)]
Amount = Annotated[Money, BeforeValidator(_money), PlainSerializer(str, return_type=str)]
PositiveAmount = Annotated[Amount, AfterValidator(_positive_money)]
FeeRule = Annotated[Fee, BeforeValidator(_fee), PlainSerializer(str, return_type=str)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]


def _bounded(limit: timedelta, why: str):
    """A positive duration no longer than `limit` (config_limits.at_most)."""
    return Annotated[PositiveDuration, AfterValidator(at_most(limit, why))]


DAY = timedelta(days=1)


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors; values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class SecretRef(Strict):
    """A reference to a secret: an environment variable or a file readable only by its owner."""

    env: str | None = Field(None, description="Name of an environment variable.", examples=["STRIPE_SECRET_KEY"])
    file: str | None = Field(None, description="Path of a file with 0600 permissions.", examples=["/etc/slotguard/stripe.key"])

    @model_validator(mode="after")
    def _one_of(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of env = "NAME" or file = "PATH"')
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def resolve(self) -> str:
        """Return the secret. Raises ConfigError naming the reference (never the value)."""
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError([f"the {self.describe()} is not set or empty"])
            return value.strip()
        path = Path(self.file or "")
        try:
            mode = path.stat().st_mode
        except OSError:
            raise ConfigError([f"the secret {self.describe()} cannot be read"]) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                [f"the secret {self.describe()} is readable by others; run: chmod 600 {path}"]
            )
        return path.read_text(encoding="utf-8").strip()


# --- sections ---------------------------------------------------------------------------


class Practice(Strict):
    name: str = Field(description="The practice's name, shown in every email.", examples=["Lena Berg Massage"])
    email: str = Field(description="The practitioner's address: sender and Reply-To of every email, and the digest recipient.", examples=["lena@example.com"])
    phone: str = Field("", description="A phone number clients can call.", examples=["+47 400 00 000"])
    address: str = Field("", description="Where sessions take place, if in person.", examples=["Storgata 1, Oslo"])
    timezone: TimeZoneName = Field(description="IANA time zone of the practice.", examples=["Europe/Oslo"])
    locale: str = Field("en", description="Default language for emails (en, nb, da, de, pl, he).", examples=["nb"])
    currency: str = Field(description="ISO currency code of all prices and fees.", examples=["NOK"])
    booking_link: str = Field("", description="Where clients book a new time.", examples=["https://example.com/book"])
    payment_instructions: str = Field(
        "",
        description="How clients pay a fee when no card provider is used (bank account, payment link).",
        examples=["Vipps 400 00 000 or account 1234.56.78901"],
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError(f"{value!r} is not a three-letter currency code like NOK")
        return value.upper()


class MarkRule(Strict):
    color: str | None = Field(None, description="Google Calendar colour name or colorId that means this mark (private to your calendar).", examples=["tomato"])
    tags: list[str] = Field(default_factory=list, description="Words in the title or description that mean this mark (read by anyone invited to the event).", examples=[["#noshow"]])


class Marks(Strict):
    no_show: MarkRule = Field(default_factory=lambda: MarkRule(color="tomato", tags=["#noshow"]), description="How a no-show is marked.")
    late_cancel: MarkRule = Field(default_factory=lambda: MarkRule(tags=["#latecancel"]), description="How a client's cancellation is marked on an event kept in the calendar.")
    waive: MarkRule = Field(default_factory=lambda: MarkRule(tags=["#waive", "#emergency", "#mistake"]), description="How a fee is waived (emergency, goodwill, mistaken booking).")
    attended: MarkRule = Field(default_factory=lambda: MarkRule(tags=["#attended"]), description="How attendance is marked explicitly.")
    wants_earlier: MarkRule = Field(default_factory=lambda: MarkRule(tags=["#earlier"]), description="How a booking is marked whose client would like an earlier time: they are offered slots freed before it.")
    unmarked_after_end: Literal["attended", "unknown"] = Field(
        "attended",
        description='What an unmarked appointment counts as once `settle_after_end` has passed: "attended", or "unknown" (no history, no fee).',
    )
    settle_after_end: Annotated[Duration, AfterValidator(at_most(30 * DAY, "a month is past any time to mark a no-show"))] = Field(
        timedelta(hours=2),
        description="How long after the end an unmarked appointment is taken as `unmarked_after_end` (time for the practitioner to mark a no-show; at most 30d).",
        examples=["2h"],
    )


def _write_note(value: Any) -> Any:
    """`write_note` was a boolean: false keeps its meaning; true wrote the line on every
    event, where invited clients read it, so the practitioner chooses again."""
    if value is False:
        return "never"
    if value is True:
        raise ValueError(
            'true is no longer a choice: the line would be read by clients invited to the event; write "no_attendees" '
            '(the line only on events no one else is invited to, the default), "always" (also on events your clients '
            'are invited to: they read it) or "never"'
        )
    return value


WriteNote = Annotated[Literal["never", "no_attendees", "always"], BeforeValidator(_write_note)]


class Calendar(Strict):
    source: Literal["ics", "google", "memory"] = Field("ics", description='"ics" (a file or secret iCal URL, read-only) or "google" (OAuth, read and write).')
    url: str = Field("", description="ics: path or https URL of the calendar feed.", examples=["config/sample-week.ics"])
    calendar_ids: list[str] = Field(default_factory=lambda: ["primary"], description="google: calendars to watch.", examples=[["primary", "clinic@group.calendar.google.com"]])
    poll_interval: _bounded(DAY, "a calendar read less than daily misses the day's marks") = Field(
        timedelta(minutes=2), description="How often to look at the calendar (at most 24h).", examples=["2m"]
    )
    window_past: Annotated[Duration, AfterValidator(at_most(1830 * DAY, "five years back is past any fee"))] = Field(
        timedelta(days=30), description="How far back the first full sync reads (at most 1830d, five years).", examples=["30d"]
    )
    window_future: Annotated[Duration, AfterValidator(at_most(1830 * DAY, "no practice books five years ahead"))] = Field(
        timedelta(days=180), description="How far ahead the first full sync reads (at most 1830d, five years).", examples=["180d"]
    )
    full_resync: _bounded(30 * DAY, "a month without a full listing misses bookings made far ahead") = Field(
        timedelta(hours=24),
        description="How often a calendar is listed in full instead of incrementally, so bookings that were beyond window_future when first listed (and never edited since) are seen (at most 30d).",
        examples=["24h"],
    )
    max_instances_per_series: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="ics: a recurring series with more instances than this between window_past and window_future is not read, and is reported as a problem naming it (a daily series has about 210 in the default window; more is a mistake or a flood of invitations such as RRULE:FREQ=MINUTELY).",
        examples=[1000],
    )
    max_events: int = Field(
        20000,
        ge=1,
        le=10_000_000,
        description="ics: the most events (series instances included) read from one feed; past it the largest series are left out and reported, and no event counts as deleted until the feed is back under it (a full practice has a few thousand in the default window).",
        examples=[20000],
    )
    exclude_addresses: list[str] = Field(default_factory=list, description="Attendee addresses that are never the client (assistants, rooms).", examples=[["assistant@example.com"]])
    practitioner_addresses: list[str] = Field(
        default_factory=list,
        description="Other addresses that are you, besides practice.email (e.g. the Google account that owns the calendar when it differs). Only events organised by you (one of these addresses, practice.email, the calendar itself, or with no organizer) can carry marks, `price:` lines and fees; an event someone else organised is ignored and shown in `status`.",
        examples=[["lena.berg@gmail.com"]],
    )
    write_back: bool = Field(True, description="google: write status notes onto events (needs the calendar.events.owned scope).")
    write_note: WriteNote = Field(
        "no_attendees",
        description='google: where the one-line status note goes in the event description (Google shows the description to everyone invited): "no_attendees" only on events no one but you is invited to, "always" also on events your clients are invited to (they read it), "never" (false means "never"). The private status keys are written either way.',
        examples=["always"],
    )
    client_secrets: str = Field("", description="google: path of the OAuth client secrets JSON (used by `auth google`).", examples=["config/client_secret.json"])
    token_uri: str = Field("", description="google: override the OAuth token endpoint (tests).", examples=["http://127.0.0.1:8080/token"])
    api_endpoint: str = Field("", description="google: override the API endpoint (tests, proxies).", examples=["http://127.0.0.1:8080/calendar/v3/"])
    marks: Marks = Field(default_factory=Marks, description="How the practitioner marks no-shows, late cancellations and waivers.")

    @field_validator("practitioner_addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        found = []
        for text in value:
            address = email_address(text)
            if address is None:
                raise ValueError(f"{text!r} is not an email address like lena@example.com")
            found.append(address)
        return found

    @model_validator(mode="after")
    def _source_needs(self) -> Calendar:
        if self.source == "ics" and not self.url:
            raise ValueError('calendar.source = "ics" needs calendar.url (a file path or https URL)')
        return self


class Service(Strict):
    """One priced service, a table named after it: `[services.default]` (required),
    `[services.intro]`, ... Any name but `max_price`."""

    price: PositiveAmount = Field(description="Price of one session.", examples=["900 NOK"])
    duration: PositiveDuration = Field(timedelta(minutes=60), description="Usual length; also used to match events.", examples=["60m"])
    match: list[str] = Field(default_factory=list, description="Words in the event title that select this service.", examples=[["intro", "discovery"]])
    label: str = Field("", description="What clients read in emails; the event title is never shown to them (it may hold private notes).", examples=["60-minute massage"])


class Services(Strict):
    """The priced services, each a table named after it (`[services.default]`, `[services.intro]`),
    and `max_price`, the most a `price:` line on an event may say. "max_price" is therefore not
    a service name. Reads like a mapping of name -> Service."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, Service] = Field(init=False)

    max_price: PositiveAmount | None = Field(
        None,
        description="The highest price a `price:` line on an event may set; an event whose line says more is not read (shown in `status`) and never billed. Default: three times the highest service price.",
        examples=["3000 NOK"],
    )

    @property
    def _named(self) -> dict[str, Service]:
        return self.__pydantic_extra__ or {}

    def __getitem__(self, name: str) -> Service:
        return self._named[name]

    def __contains__(self, name: object) -> bool:
        return name in self._named

    def __iter__(self):  # type: ignore[override]  # the service names, as a dict would
        return iter(self._named)

    def __len__(self) -> int:
        return len(self._named)

    def get(self, name: str, default: Service | None = None) -> Service | None:
        return self._named.get(name, default)

    def items(self):
        return self._named.items()

    def values(self):
        return self._named.values()

    @property
    def price_ceiling(self) -> Money:
        """`max_price`, or three times the highest service price when it is not set."""
        if self.max_price is not None:
            return self.max_price
        highest = max(service.price.minor for service in self._named.values())
        currency = next(iter(self._named.values())).price.currency
        return Money(highest * 3, currency)


class Payments(Strict):
    provider: Literal["record-only", "stripe"] = Field("record-only", description='"record-only" (fees become receivables; the client pays you directly) or "stripe".')
    review_window: Annotated[Duration, AfterValidator(at_most(30 * DAY, "a fee asked for a month late surprises the client"))] = Field(
        timedelta(hours=12),
        description='How long a fee waits as pending review, so you can waive it, before it is charged (at most 30d; "0s" is allowed, and check-config warns: fees are then carried out at the next tick).',
        examples=["12h"],
    )
    max_single_charge: PositiveAmount | None = Field(None, description='No single fee is larger than this; larger ones are capped. Required with provider = "stripe".', examples=["2000 NOK"])
    daily_cap: PositiveAmount | None = Field(None, description="stripe: most money charged per day, in the practice currency; past it, fees wait for the next day.", examples=["5000 NOK"])
    mode: Literal["test", "live"] = Field("test", description="stripe: must match the key (sk_test_ or sk_live_).")
    charge_from: AwareDatetime | None = Field(
        None,
        description="Fees only for appointments starting at or after this time; earlier ones are recorded, never charged. Default: when Slotguard first ran on this ledger.",
        examples=["2026-11-23T00:00:00+01:00"],
    )
    dry_run: bool = Field(False, description="Plan and log money actions but move no money.")
    retry_for: PositiveDuration = Field(
        timedelta(hours=24),
        description="How long a money action (fee, refund, hold...) keeps being tried again while the payment provider cannot be reached or answers with a temporary error, counted from its first failure; then it fails and the daily digest lists it with the `main.py retry` command. Separate from mail.max_attempts.",
        examples=["24h"],
    )
    retry_max_wait: PositiveDuration = Field(
        timedelta(hours=1),
        description="The longest wait between two tries of a money action during an outage: the wait doubles from 2 minutes up to this (never shorter than a Retry-After the provider asked for).",
        examples=["1h"],
    )
    secret_key: SecretRef | None = Field(None, description="stripe: the secret key, by reference.", examples=[{"env": "STRIPE_SECRET_KEY"}])
    webhook_secret: SecretRef | None = Field(None, description="stripe: webhook signing secret, by reference.", examples=[{"env": "STRIPE_WEBHOOK_SECRET"}])
    api_base: str = Field("", description="stripe: override the API base URL (tests).", examples=["http://127.0.0.1:8420"])


class Smtp(Strict):
    host: str = Field(description="SMTP server.", examples=["smtp.example.com"])
    port: int = Field(587, ge=1, le=65535, description="SMTP port.", examples=[587])
    security: Literal["starttls", "tls", "none"] = Field("starttls", description="STARTTLS, implicit TLS, or none (local relays only).")
    username: str = Field("", description="Login name, if the server needs AUTH.")
    password: SecretRef | None = Field(None, description="Login password, by reference.", examples=[{"env": "SMTP_PASSWORD"}])
    timeout: _bounded(timedelta(minutes=10), "a server silent for longer is gone") = Field(
        timedelta(seconds=30), description="Network timeout (at most 10m).", examples=["30s"]
    )
    ca_file: str = Field(
        "",
        description="A PEM file of the certificate authorities to trust instead of the system's, for a relay whose certificate a private authority signed (the host name is still checked); empty: the system's trusted authorities.",
        examples=["/etc/slotguard/office-ca.pem"],
    )

    @field_validator("ca_file")
    @classmethod
    def _usable_ca_file(cls, value: str, info: ValidationInfo) -> str:
        if value and info.data.get("security") == "none":
            raise ValueError(
                'security = "none" sends without TLS, so no certificate is checked; '
                'set mail.smtp.security to "starttls" or "tls", or remove ca_file'
            )
        if value:
            _trust_context(value)  # the file is read now, so check-config reports what is wrong
        return value

    def tls_context(self) -> ssl.SSLContext:
        """The client TLS context: certificates verified against the authorities in ca_file
        (or the system's when it is empty), host names checked. Raises ConfigError naming
        mail.smtp.ca_file when the file cannot be used (it may have changed since loading)."""
        try:
            return _trust_context(self.ca_file)
        except ValueError as error:
            raise ConfigError([f"mail.smtp.ca_file: {error}"]) from None


def _trust_context(ca_file: str) -> ssl.SSLContext:
    """A client TLS context trusting the certificate authorities in the PEM file `ca_file`
    (only those), or the system's when `ca_file` is empty; host names are checked. A
    relative path is taken from the working directory. Raises ValueError saying what is
    wrong with the file and what to do."""
    if not ca_file:
        return ssl.create_default_context()
    path = Path(ca_file)
    shown = str(path) if path.is_absolute() else str(Path.cwd() / path)
    try:
        return ssl.create_default_context(cafile=ca_file)
    except FileNotFoundError:
        relative = "" if path.is_absolute() else " (a relative path starts from the folder Slotguard is started in)"
        raise ValueError(
            f"no file {shown}{relative}; give the path of the PEM file with the certificate authority that signed "
            "your mail server's certificate, or leave ca_file out to trust the system's certificate authorities"
        ) from None
    except IsADirectoryError:
        raise ValueError(f"{shown} is a folder; give the PEM file in it that holds your mail server's certificate authority") from None
    except ssl.SSLError as error:
        detail = re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(error))
        raise ValueError(
            f"{shown} is not a PEM file of certificates (OpenSSL: {detail}); it should hold one or more "
            "-----BEGIN CERTIFICATE----- blocks: ask for the certificate authority in PEM form, or convert "
            "a binary (DER) one with: openssl x509 -inform der -in FILE -out FILE.pem"
        ) from None
    except OSError as error:
        raise ValueError(
            f"{shown} cannot be read ({error.strerror or error}); check the path, and that the user Slotguard runs as "
            "may read the file (a certificate authority is public: chmod 644 is fine)"
        ) from None


class Mail(Strict):
    transport: Literal["outbox-dir", "smtp", "gmail"] = Field("outbox-dir", description='"outbox-dir" writes .eml files; "smtp" sends; "gmail" sends through the Gmail API.')
    outbox_dir: str = Field("var/outbox", description="outbox-dir: where .eml files are written.", examples=["var/outbox"])
    from_address: str = Field("", description="Sender address; defaults to practice.email.", examples=["bookings@example.com"])
    smtp: Smtp | None = Field(None, description="smtp: server settings.")
    gmail_api_endpoint: str = Field("", description="gmail: override the Gmail API root (tests, proxies); messages go to ENDPOINT/gmail/v1/users/me/messages/send.", examples=["http://127.0.0.1:8080/"])
    templates_dir: str = Field("", description="A folder of your own templates (NAME.txt.j2 and .html.j2 for every locale, LOCALE/NAME.txt.j2 for one) and messages (locale/LANG/LC_MESSAGES/messages.po) that take precedence over the bundled ones.", examples=["config/templates"])
    max_attempts: int = Field(5, ge=1, description="Sending attempts before the practitioner is told a message failed.")
    client_locales: dict[str, str] = Field(
        default_factory=dict,
        description="The language of each client who does not read practice.locale, by email address (a `lang:` line in the event wins).",
        examples=[{"ana@example.com": "pl", "david@example.com": "he"}],
    )
    digest_hour: int = Field(7, ge=-1, le=23, description="Local hour (0-23) of the practitioner's daily digest email to practice.email; -1 turns it off.", examples=[7])
    waitlist: list[str] = Field(default_factory=list, description="Clients offered a slot freed at short notice (first come first served through practice.booking_link).", examples=[["bo@example.com", "cy@example.com"]])
    slot_freed_within: _bounded(30 * DAY, "a slot freed a month ahead is not short notice") = Field(
        timedelta(hours=48), description="A client cancellation this close to the start offers the slot to the waitlist (at most 30d).", examples=["48h"]
    )

    @field_validator("templates_dir")
    @classmethod
    def _templates_folder(cls, value: str) -> str:
        if value and not Path(value).is_dir():
            path = Path(value)
            shown = str(path) if path.is_absolute() else f"{path} (from the folder Slotguard is started in, {Path.cwd()})"
            raise ValueError(f"no folder {shown}; give the folder that holds your NAME.txt.j2 or LOCALE/NAME.txt.j2 templates, or leave templates_dir out")
        return value

    @field_validator("client_locales")
    @classmethod
    def _locales(cls, value: dict[str, str]) -> dict[str, str]:
        found = {}
        for address, locale in value.items():
            code = locale.strip().lower().replace("_", "-")
            if "@" not in address or not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", code):
                raise ValueError(f'{address} = "{locale}": give an email address and a language code like "pl" or "de-AT"')
            found[address.strip().lower()] = code
        return found


class Reminders(Strict):
    offsets: list[_bounded(365 * DAY, "a reminder a year ahead reminds no one")] = Field(
        default_factory=lambda: [timedelta(hours=48), timedelta(hours=24)], description="When reminders go out, before the start (each at most 365d).", examples=[["48h", "24h"]]
    )


class Storage(Strict):
    data_dir: str = Field("var", description="Where Slotguard keeps its ledger and tokens.", examples=["var"])
    ledger: str = Field("", description="SQLite ledger path; defaults to DATA_DIR/ledger.sqlite3.", examples=["var/ledger.sqlite3"])

    @property
    def ledger_path(self) -> str:
        return self.ledger or str(Path(self.data_dir) / "ledger.sqlite3")


def _percent(value: Any) -> Decimal:
    """A percent written "20%" (or "20"), between 0 and 100; floats are refused."""
    if isinstance(value, Decimal):
        percent = value
    elif isinstance(value, (float, bool)):
        raise ValueError('write the percent as text, like "20%" (not a float)')
    else:
        try:
            percent = Decimal(str(value).strip().removesuffix("%").strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a percent like \"20%\"") from None
    if not percent.is_finite() or percent < 0 or percent > 100:
        raise ValueError("must be between 0% and 100%")
    return percent


Percent = Annotated[Decimal, BeforeValidator(_percent), PlainSerializer(lambda value: f"{value.normalize():f}%", return_type=str)]
COLLECTION_TEMPLATES = ("payment_reminder_1", "payment_reminder_2", "payment_final_notice")


class CollectionStep(Strict):
    """One step of the ladder for an unpaid fee: an email (and optionally a card retry and an
    offer), or the final decision to write the debt off or refer it."""

    after: PositiveDuration = Field(description="How long after the fee became unpaid the step comes (the gap to the previous step is kept when a step comes late).", examples=["14d"])
    template: str = Field("", description=f"The email sent at this step: {', '.join(COLLECTION_TEMPLATES)} or a template of your own (mail.templates_dir). Not with `action`.", examples=["payment_reminder_2"])
    retry_charge: bool = Field(False, description="stripe: try the saved card again (off-session, once for this step) before the email goes; ignored with record-only.", examples=[True])
    offer: Literal["plan", "settlement"] | None = Field(None, description='Offer a payment plan ([collections.plan]) or a settlement ([collections.settlement]) in this email.', examples=["plan"])
    action: Literal["writeoff_or_refer"] | None = Field(None, description="The last step: write the debt off (below `writeoff_below`, or when collecting would not be worth `collection_cost`) or mark it for referral and tell you.", examples=["writeoff_or_refer"])


class CollectionPlan(Strict):
    installments: int = Field(3, ge=2, description="Into how many installments the balance is split (fewer when an installment would be below `min_installment`).", examples=[3])
    every: PositiveDuration = Field(timedelta(days=30), description="Time between installments; an installment unpaid this long after it was due ends the plan, and the reminders resume for the rest.", examples=["30d"])
    min_installment: PositiveAmount | None = Field(None, description="No installment is smaller than this; a balance too small for two is not offered a plan.", examples=["200 NOK"])


class CollectionSettlement(Strict):
    discount: Percent = Field(Decimal(20), description="How much less the client pays when settling within `valid_for`; the rest is written off when they pay.", examples=["20%"])
    valid_for: PositiveDuration = Field(timedelta(days=14), description="How long the settlement offer stands.", examples=["14d"])


class Collections(Strict):
    """The polite ladder for unpaid fees (docs/collections.md). Off while `steps` is empty."""

    steps: list[CollectionStep] = Field(
        default_factory=list,
        description="The ladder, ordered by `after`; empty turns collections off.",
        examples=[[
            {"after": "3d", "template": "payment_reminder_1"},
            {"after": "14d", "template": "payment_reminder_2", "retry_charge": True},
            {"after": "30d", "template": "payment_final_notice", "offer": "plan"},
            {"after": "45d", "action": "writeoff_or_refer"},
        ]],
    )
    plan: CollectionPlan = Field(default_factory=CollectionPlan, description="The payment plan a step with `offer = \"plan\"` proposes.")
    settlement: CollectionSettlement = Field(default_factory=CollectionSettlement, description="The settlement a step with `offer = \"settlement\"` proposes.")
    writeoff_below: PositiveAmount | None = Field(None, description="The last step writes off a balance below this, and one whose expected recovery after `collection_cost` is below it; never chase less.", examples=["150 NOK"])
    collection_cost: FeeRule = Field(Fee(percent=Decimal(30)), description="What referring a debt to an agency would cost: a percent of the balance or a fixed amount.", examples=["30%"])

    @property
    def enabled(self) -> bool:
        return bool(self.steps)

    def problems(self, currency: str, templates_dir: str) -> list[str]:
        """What is wrong with the ladder, each with its path (amounts in `currency`)."""
        problems = []
        previous = None
        for index, step in enumerate(self.steps):
            path = f"collections.steps.{index}"
            if previous is not None and step.after <= previous:
                problems.append(f"{path}.after: {format_duration(step.after)} is not after the previous step ({format_duration(previous)}): order the steps by `after`")
            previous = step.after
            if step.action:
                if step.template or step.retry_charge or step.offer:
                    problems.append(f"{path}: a step with action = \"{step.action}\" sends nothing, so leave out template, retry_charge and offer")
                if index != len(self.steps) - 1:
                    problems.append(f"{path}.action: \"{step.action}\" ends the ladder, so make it the last step")
            elif not step.template:
                problems.append(f"{path}.template: required (one of {', '.join(COLLECTION_TEMPLATES)}) unless the step has an action")
            elif not _template_exists(step.template, templates_dir):
                problems.append(f"{path}.template: no template {step.template!r} ({step.template}.txt.j2 or LOCALE/{step.template}.txt.j2) in the bundled templates or mail.templates_dir (known: {', '.join(COLLECTION_TEMPLATES)})")
        amounts = (("plan.min_installment", self.plan.min_installment), ("writeoff_below", self.writeoff_below), ("collection_cost", self.collection_cost.fixed))
        for path, amount in amounts:
            if amount is not None and amount.currency != currency:
                problems.append(f"collections.{path}: {amount} is not in the practice currency {currency}")
        if not Decimal(0) < self.settlement.discount < Decimal(100):
            problems.append("collections.settlement.discount: must be more than 0% and less than 100%")
        return problems


def _template_exists(name: str, templates_dir: str) -> bool:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        return False
    bundled = Path(__file__).resolve().parents[2] / "templates"
    folders = [Path(templates_dir)] if templates_dir else []
    folders.append(bundled)
    # NAME.txt.j2 serves every locale; LOCALE/NAME.txt.j2 is a practice's template for one.
    return any(folder.is_dir() and ((folder / f"{name}.txt.j2").is_file() or any(folder.glob(f"*/{name}.txt.j2"))) for folder in folders)


class Policies(BaseModel):
    """`enabled` lists active policies in order; each may have its own table of settings."""

    model_config = ConfigDict(extra="allow", frozen=True)
    enabled: list[str] = Field(default_factory=list, description="Active policies, fee policies first, then modifiers in the order they apply.", examples=[["late_cancel", "no_show"]])


class Settings(Strict):
    practice: Practice
    calendar: Calendar
    services: Services = Field(description='Priced services by name (`[services.NAME]`; "default" is required) and the price ceiling `max_price`.')
    payments: Payments = Field(default_factory=Payments)
    mail: Mail = Field(default_factory=Mail)
    reminders: Reminders = Field(default_factory=Reminders)
    storage: Storage = Field(default_factory=Storage)
    policies: Policies = Field(default_factory=Policies)
    collections: Collections = Field(default_factory=Collections, description="Unpaid fees: a polite ladder of reminders, payment plans, settlement and write-off (docs/collections.md). Off unless `steps` is set.")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems = []
        if "default" not in self.services:
            problems.append('services: add a "default" service with a price')
        for name, service in self.services.items():
            if service.price.currency != self.practice.currency:
                problems.append(
                    f"services.{name}.price: {service.price} is not in the practice currency {self.practice.currency}"
                )
        for key in ("max_single_charge", "daily_cap"):
            cap = getattr(self.payments, key)
            if cap and cap.currency != self.practice.currency:
                problems.append(f"payments.{key}: {cap} is not in {self.practice.currency}")
        cap = self.payments.max_single_charge
        if cap is None and self.payments.provider == "stripe":
            problems.append(
                'payments.max_single_charge: required with provider = "stripe": the most one fee may take '
                f'from a card, e.g. max_single_charge = "2000 {self.practice.currency}"'
            )
        ceiling = self.services.max_price
        if ceiling is not None:
            if ceiling.currency != self.practice.currency:
                problems.append(f"services.max_price: {ceiling} is not in the practice currency {self.practice.currency}")
            else:
                problems += [
                    f"services.max_price: {ceiling} is below the price of service {name} ({service.price}); raise it or lower that price"
                    for name, service in self.services.items()
                    if service.price.currency == ceiling.currency and service.price > ceiling
                ]
        if self.mail.transport == "smtp" and self.mail.smtp is None:
            problems.append('mail.smtp: mail.transport = "smtp" needs a [mail.smtp] table with host')
        if self.payments.provider == "stripe" and self.payments.secret_key is None:
            problems.append('payments.secret_key: the stripe provider needs secret_key = { env = "STRIPE_SECRET_KEY" }')
        problems += self.collections.problems(self.practice.currency, self.mail.templates_dir)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.practice.timezone)

    @property
    def sender(self) -> str:
        return self.mail.from_address or self.practice.email

    def policy_settings(self, name: str) -> dict[str, Any]:
        """The raw table [policies.NAME] (empty when absent)."""
        extra = self.policies.model_extra or {}
        value = extra.get(name, {})
        return value if isinstance(value, dict) else {}


# --- loading --------------------------------------------------------------------------


def _format_location(loc: tuple) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    return ".".join(parts) or "(top level)"


def format_validation_error(error: ValidationError, prefix: str = "") -> list[str]:
    """Turn pydantic's errors into "path: message" lines the user can act on."""
    problems = []
    for item in error.errors(include_url=False):
        path = _format_location(item["loc"])
        if prefix:
            path = f"{prefix}.{path}" if path != "(top level)" else prefix
        message = item["msg"]
        for lead in ("Value error, ", "Assertion failed, "):
            if message.startswith(lead):
                message = message[len(lead):]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see config/example.toml)"
        elif item["type"] == "missing":
            message = "required key is missing"
        if path in ("(top level)", prefix):
            # Cross-field checks report several problems, each already starting with its path.
            problems.extend(message.split("; "))
        else:
            problems.append(f"{path}: {message}")
    return problems


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    policy_settings: dict[str, Any]
    source: str


def parse_settings(data: dict[str, Any], source: str = "") -> Settings:
    """Validate a config mapping (as read from TOML or a scenario). Raises ConfigError."""
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error), source) from None


MAX_CONFIG_BYTES = 1024 * 1024


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file. Raises ConfigError naming the file: missing, a folder, unreadable,
    larger than a config can be, not UTF-8, or not TOML (with the line)."""
    path = Path(path)

    def problem(text: str) -> ConfigError:
        return ConfigError([f"{path}: {text}"], str(path))

    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise problem("no such file; copy config/example.toml and edit it") from None
    except IsADirectoryError:
        raise problem("is a folder; give the path of the TOML file (e.g. config/example.toml)") from None
    except OSError as error:
        raise problem(f"cannot be read ({error.strerror or error}); check that the user Slotguard runs as may read it") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise problem(f"is larger than {MAX_CONFIG_BYTES // 1024} KB; a configuration is a few KB of TOML: check the path")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise problem(f"is not UTF-8 text (byte {error.start} cannot be read); save it as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise problem(f"not valid TOML: {error}") from None
    except RecursionError:
        raise problem("not valid TOML: arrays or tables are nested too deeply") from None
