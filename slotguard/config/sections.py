"""The configuration sections a practice fills in: practice, calendar and marks, services,
payments, mail (with SMTP) and reminders, storage. The top-level Settings and the
collections and policy sections are in slotguard/config/schema.py."""

from __future__ import annotations

import re
import ssl
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from slotguard.config.caldav import CalDav
from slotguard.config.limits import at_most
from slotguard.config.microsoft import Microsoft
from slotguard.config.reports import MonthlyReportMail
from slotguard.config.types import (
    DAY,
    ConfigError,
    Duration,
    LocalizedText,
    PositiveAmount,
    PositiveDuration,
    SecretRef,
    Strict,
    TimeZoneName,
)
from slotguard.domain.money import Money
from slotguard.domain.quiet_hours import QuietHours
from slotguard.domain.untrusted import email_address

# --- sections ---------------------------------------------------------------------------


def addresses(value: list[str], like: str) -> list[str]:
    """Each of `value` as a checked email address; ValueError naming the first that is not one."""
    found = []
    for text in value:
        address = email_address(text)
        if address is None:
            raise ValueError(f"{text!r} is not an email address like {like}")
        found.append(address)
    return found

class Practice(Strict):
    name: str = Field(description="The practice's name, shown in every email.", examples=["Lena Berg Massage"])
    email: str = Field(description="The practitioner's address: sender and Reply-To of every email, and the digest recipient.", examples=["lena@example.com"])
    phone: str = Field("", description="A phone number clients can call.", examples=["+47 400 00 000"])
    address: str = Field("", description="Where sessions take place, if in person.", examples=["Storgata 1, Oslo"])
    timezone: TimeZoneName = Field(description="IANA time zone of the practice.", examples=["Europe/Oslo"])
    locale: str = Field("en", description="Default language for emails (en, nb, da, de, pl, he).", examples=["nb"])
    currency: str = Field(description="ISO currency code of all prices and fees.", examples=["NOK"])
    booking_link: str = Field("", description="Where clients book a new time.", examples=["https://example.com/book"])
    payment_instructions: LocalizedText = Field(
        "",
        description="How clients pay a fee when no card provider is used (bank account, payment link): one text, or a table by language that each client reads in theirs (falling back to practice.locale's, then English).",
        examples=["Vipps 400 00 000 or account 1234.56.78901", {"nb": "Vipps til 400 00 000 (merk med navnet ditt)", "en": "Vipps to 400 00 000 (mark it with your name)"}],
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
    knows_policy: MarkRule = Field(
        default_factory=lambda: MarkRule(tags=["#knowspolicy"]),
        description="How you say a client knows the fee policy (told in person, signed terms) although Slotguard sent them no confirmation or reminder before the incident: with `payments.require_policy_notice`, a fee on a marked event stands.",
    )
    honour_for: Annotated[Duration, AfterValidator(at_most(30 * DAY, "a mark a month late is a new decision: charge it by hand"))] = Field(
        timedelta(days=3),
        description="How long after the end of an appointment a no-show or late-cancel mark still plans a fee, counted to when Slotguard first saw the mark (not a time the calendar gives). A later mark plans no fee; the digest shows it with the `main.py charge-now` command, if you mean it (at most 30d).",
        examples=["3d"],
    )
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
    source: Literal["ics", "google", "microsoft", "caldav", "memory"] = Field("ics", description='"ics" (a file or secret iCal URL, read-only), "google" (OAuth, read and write), "microsoft" (Microsoft 365 / Outlook through Graph, read and write; see calendar.microsoft) or "caldav" (iCloud, Fastmail, Nextcloud and other CalDAV servers, read and write: [calendar.caldav]).')
    url: str = Field("", description="ics: path or https URL of the calendar feed.", examples=["config/sample-week.ics"])
    calendar_ids: list[str] = Field(default_factory=lambda: ["primary"], description="google: calendars to watch.", examples=[["primary", "clinic@group.calendar.google.com"]])
    poll_interval: Annotated[PositiveDuration, AfterValidator(at_most(DAY, "a calendar read less than daily misses the day's marks"))] = Field(
        timedelta(minutes=2), description="How often to look at the calendar (at most 24h).", examples=["2m"]
    )
    window_past: Annotated[Duration, AfterValidator(at_most(1830 * DAY, "five years back is past any fee"))] = Field(
        timedelta(days=30), description="How far back the first full sync reads (at most 1830d, five years).", examples=["30d"]
    )
    window_future: Annotated[Duration, AfterValidator(at_most(1830 * DAY, "no practice books five years ahead"))] = Field(
        timedelta(days=180), description="How far ahead the first full sync reads (at most 1830d, five years).", examples=["180d"]
    )
    full_resync: Annotated[PositiveDuration, AfterValidator(at_most(30 * DAY, "a month without a full listing misses bookings made far ahead"))] = Field(
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
    client_organised: Literal["remind", "ignore"] = Field(
        "ignore",
        description='An event a client organised (they invited you; no one else but rooms or excluded addresses): "ignore" leaves it out, "remind" sends that client the reminders (reminders.offsets) once you have accepted the invitation (not tentative), and only when the organizer is already your client (an appointment you organised names them): anyone can put an invitation into your calendar. Reminders greet them by the name your own events give them (never the invitation\'s display name) and name no service and no place. Either way it never carries a fee: its title, description, colour and lines are the client\'s, so no mark or `price:` line on it is read, and no other email is sent for it.',
        examples=["remind"],
    )
    write_back: bool = Field(True, description="google, caldav: write status notes onto events (google needs the calendar.events.owned scope; docs/caldav.md says what CalDAV writes).")
    write_note: WriteNote = Field(
        "no_attendees",
        description='google: where the one-line status note goes in the event description (Google shows the description to everyone invited): "no_attendees" only on events no one but you is invited to, "always" also on events your clients are invited to (they read it), "never" (false means "never"). The private status keys are written either way.',
        examples=["always"],
    )
    client_secrets: str = Field("", description="google: path of the OAuth client secrets JSON (used by `auth google`).", examples=["config/client_secret.json"])
    token_uri: str = Field("", description="google: override the OAuth token endpoint (tests).", examples=["http://127.0.0.1:8080/token"])
    api_endpoint: str = Field("", description="google: override the API endpoint (tests, proxies).", examples=["http://127.0.0.1:8080/calendar/v3/"])
    marks: Marks = Field(default_factory=Marks, description="How the practitioner marks no-shows, late cancellations and waivers.")
    microsoft: Microsoft | None = Field(None, description='microsoft: the app registration, calendar and categories (slotguard/config/microsoft.py; docs/microsoft.md).')
    caldav: CalDav | None = Field(None, description="caldav: the server, account and calendar ([calendar.caldav]).")

    @field_validator("practitioner_addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return addresses(value, "lena@example.com")

    @model_validator(mode="after")
    def _source_needs(self) -> Calendar:
        if self.source == "ics" and not self.url:
            raise ValueError('calendar.source = "ics" needs calendar.url (a file path or https URL)')
        if self.source == "microsoft" and self.microsoft is None:
            raise ValueError('calendar.source = "microsoft" needs a [calendar.microsoft] table with client_id (docs/microsoft.md)')
        if self.source == "microsoft" and self.microsoft is not None and self.microsoft.category_problems(self.marks):
            raise ValueError("; ".join(self.microsoft.category_problems(self.marks)))
        if self.source == "caldav" and self.caldav is None:
            raise ValueError('calendar.source = "caldav" needs a [calendar.caldav] table with url, username and password')
        return self


class Service(Strict):
    """One priced service, a table named after it: `[services.default]` (required),
    `[services.intro]`, ... Any name but `max_price`."""

    price: PositiveAmount = Field(description="Price of one session.", examples=["900 NOK"])
    duration: PositiveDuration = Field(timedelta(minutes=60), description="Usual length; also used to match events.", examples=["60m"])
    match: list[str] = Field(default_factory=list, description="Words in the event title that select this service.", examples=[["intro", "discovery"]])
    label: LocalizedText = Field(
        "",
        description="What clients read in emails; the event title is never shown to them (it may hold private notes). One text, or a table by language that each client reads in theirs (falling back to practice.locale's, then English).",
        examples=["60-minute massage", {"nb": "massasje", "en": "massage", "de": "Massage"}],
    )


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

    def __iter__(self):  # the service names, as a dict would
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
    require_policy_notice: bool = Field(
        True,
        description="A fee stands only when the client was sent the policy before the incident (a booking confirmation, reminder, deposit request or earlier warning that Slotguard sent), or you said they know it (`calendar.marks.knows_policy` on the event, or `policy_known_by`). Otherwise the incident becomes a kind warning that quotes the policy, with no fee, and the next incident counts. false: fees stand without it.",
        examples=[True],
    )
    policy_known_by: list[str] = Field(
        default_factory=list,
        description="Clients who know the fee policy without a confirmation from Slotguard (regulars who signed your terms, clients from before Slotguard), by email address: their fees stand under `require_policy_notice`.",
        examples=[["ana@example.com"]],
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

    @field_validator("policy_known_by")
    @classmethod
    def _known_by(cls, value: list[str]) -> list[str]:
        return addresses(value, "ana@example.com")


class Smtp(Strict):
    host: str = Field(description="SMTP server.", examples=["smtp.example.com"])
    port: int = Field(587, ge=1, le=65535, description="SMTP port.", examples=[587])
    security: Literal["starttls", "tls", "none"] = Field("starttls", description="STARTTLS, implicit TLS, or none (local relays only).")
    username: str = Field("", description="Login name, if the server needs AUTH.")
    password: SecretRef | None = Field(None, description="Login password, by reference.", examples=[{"env": "SMTP_PASSWORD"}])
    timeout: Annotated[PositiveDuration, AfterValidator(at_most(timedelta(minutes=10), "a server silent for longer is gone"))] = Field(
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


class Mail(MonthlyReportMail):
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
    waiver_note: bool = Field(
        True,
        description="When you waive a fee (the waive mark, or `main.py waive`) before its notice went out, the client still gets "
        "that notice, without the fee (a no-show's \"we missed you\" offering a new time); false sends nothing about the "
        "fee. Taking a no-show or late-cancellation mark off always cancels every email about the fee: the client came.",
        examples=[False],
    )
    slot_freed_within: Annotated[PositiveDuration, AfterValidator(at_most(30 * DAY, "a slot freed a month ahead is not short notice"))] = Field(
        timedelta(hours=48), description="A client cancellation this close to the start offers the slot to the waitlist (at most 30d).", examples=["48h"]
    )

    quiet_hours: str = Field(
        "21:00-08:00",
        description=(
            "Local hours (HH:MM-HH:MM, in the client's time zone: the appointment's, else practice.timezone) when no "
            "email reaches a client: one due then goes at their end, and so does the charge it explains (a fee whose "
            "review window ends at night is charged in the morning with its notice). A confirmation of a booking made or "
            "moved within the last hour, and mail about a session that starts before they end, go at once; mail to the "
            "practitioner (digest, referral) is not held. \"\" turns them off."
        ),
        examples=["21:00-08:00", "22:30-07:00", ""],
    )

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        quiet = QuietHours.parse(value)
        return str(quiet) if quiet else ""

    @property
    def quiet(self) -> QuietHours | None:
        """`quiet_hours` read (None: off)."""
        return QuietHours.parse(self.quiet_hours)

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
    offsets: list[Annotated[PositiveDuration, AfterValidator(at_most(365 * DAY, "a reminder a year ahead reminds no one"))]] = Field(
        default_factory=lambda: [timedelta(hours=48), timedelta(hours=24)], description="When reminders go out, before the start (each at most 365d).", examples=[["48h", "24h"]]
    )


class Storage(Strict):
    data_dir: str = Field("var", description="Where Slotguard keeps its ledger and tokens.", examples=["var"])
    ledger: str = Field("", description="SQLite ledger path; defaults to DATA_DIR/ledger.sqlite3. Not used when storage.url is set.", examples=["var/ledger.sqlite3"])
    url: str = Field("", description='A PostgreSQL server for the ledger instead of the SQLite file, "postgresql://user@host:5432/db" (the password by PGPASSWORD or ~/.pgpass, never here).', examples=["postgresql://slotguard@127.0.0.1:5432/slotguard"])
    schema_name: str = Field("slotguard", alias="schema", description="With storage.url: the schema holding this practice's ledger tables (created when missing).", examples=["slotguard"])

    @property
    def ledger_path(self) -> str:
        return self.ledger or str(Path(self.data_dir) / "ledger.sqlite3")

    @property
    def location(self) -> str:
        """Where the ledger is: storage.url when set, else the SQLite file's path."""
        return self.url or self.ledger_path
