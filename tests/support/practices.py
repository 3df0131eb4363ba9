"""A deployment of many practices, for the tests and benches of `main.py worker` (issue 16).

`write_deployment(root, count, ...)` writes what a host running Slotguard for `count`
practices would have: the deployment file (root/deployment.toml: storage.url the test
PostgreSQL server, the practices folder, the data_dir) and one ordinary Slotguard config per
practice (root/practices/ID.toml). Every practice has its own calendar on ONE shared Google
wire fake (tests/support/fake_google_calendar.py), its OAuth token in its own data_dir
(DATA_DIR/ID/google-token.json, as `main.py auth` leaves it), its bookings, the outbox-dir
mailer, and the no-show policy with its waiver mark:

- `[calendar.marks]`: `#noshow` marks a no-show, `#waive` waives its fee (config/example.toml);
- `payments.review_window = "0m"`: a fee is due as soon as its mark is seen, as in
  tests/end_to_end/test_crash_anywhere.py, so a test on the real clock sees money move;
- `payments.require_policy_notice = false`: these clients were never sent a confirmation
  before their no-show (the bookings predate the first sync: a first sync introduces, it does
  not confirm), and the tests are about workers and crashes, not about telling the policy
  first (tests/unit/planning/test_fee_stands.py tests that);
- money through Stripe (`stripe_api_base`: localstripe behind the fault proxy,
  tests/support/stripe_fixtures.py) or, without it, the record-only provider (the bench).

Each practice config also names its own ledger (storage.url, storage.schema = practice_ID,
storage.data_dir = DATA_DIR/ID), the same one the deployment gives it, so that one-practice
commands (`main.py reconcile --config practices/ID.toml`, `run --once --now ...`) read and
write the ledger the workers use.

Practice ids carry a random prefix (`w1a2b3c_0007`) and the deployment its own work queue
schema (`workers.queue_schema = "q_w1a2b3c"`): the test server is shared, so two runs never
meet in a schema (a worker makes the queue hold exactly its deployment's practices, it would
remove another run's); `GeneratedDeployment.drop()` drops the schemas of its practices and its
queue.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from google.oauth2.credentials import Credentials

from integration.google_auth import SCOPE_OWNED, save_credentials
from tests.support.fake_google_calendar import FakeGoogleCalendar
from tests.support.stripe_fixtures import KEY_ENV

NO_SHOW, WAIVE = "#noshow", "#waive"
FEE = "900 NOK"
FEE_MINOR = 90000
FIRST_NAMES = ("Ana", "Bo", "Cy", "Di", "Ed", "Fi", "Gus", "Hal", "Ida", "Jo")


@dataclass
class Client:
    email: str
    name: str


@dataclass
class Booking:
    """One appointment on a practice's calendar (the fake's event id) and the tags it carries."""

    practice: GeneratedPractice
    event_id: str
    client: Client
    start: datetime
    minutes: int = 30
    tags: list[str] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        """The event as Google returns it: the practitioner organises, the client is invited."""
        title = " ".join(["Massage", *self.tags])
        return {
            "id": self.event_id,
            "summary": title,
            "start": {"dateTime": self.start.isoformat(), "timeZone": "Europe/Oslo"},
            "end": {"dateTime": (self.start + timedelta(minutes=self.minutes)).isoformat(), "timeZone": "Europe/Oslo"},
            "organizer": {"email": self.practice.email, "self": True},
            "attendees": [
                {"email": self.practice.email, "organizer": True, "self": True, "responseStatus": "accepted"},
                {"email": self.client.email, "displayName": self.client.name, "responseStatus": "accepted"},
            ],
        }

    @property
    def noshow(self) -> bool:
        return NO_SHOW in self.tags

    @property
    def waived(self) -> bool:
        return WAIVE in self.tags


@dataclass
class GeneratedPractice:
    """One practice of a generated deployment: its id, calendar, files, clients and bookings."""

    id: str
    calendar_id: str
    config: Path
    data_dir: Path
    clients: list[Client]
    bookings: list[Booking] = field(default_factory=list)

    @property
    def schema(self) -> str:
        return f"practice_{self.id}"

    @property
    def email(self) -> str:
        return f"desk.{self.id}@example.com"

    @property
    def outbox(self) -> Path:
        return self.data_dir / "outbox"


@dataclass
class GeneratedDeployment:
    """The files written by `write_deployment`, the shared fake, and the test server's URL."""

    root: Path
    file: Path
    url: str
    google: FakeGoogleCalendar
    practices: list[GeneratedPractice]
    queue_schema: str

    def bookings(self) -> list[Booking]:
        return [booking for practice in self.practices for booking in practice.bookings]

    def tag(self, booking: Booking, tag: str) -> None:
        """Add `tag` to the booking's title in the fake (as the practitioner would): a
        changed event with a new `updated`, which the next incremental sync reads."""
        if tag not in booking.tags:
            booking.tags.append(tag)
        self.google.modify_event(booking.practice.calendar_id, booking.event_id, summary=booking.resource()["summary"])

    def add_booking(self, practice: GeneratedPractice, start: datetime) -> Booking:
        """A new booking on the practice's calendar (the next client in turn), put in the fake."""
        number = len(practice.bookings)
        booking = Booking(practice, f"b{number:05d}", practice.clients[number % len(practice.clients)], start)
        practice.bookings.append(booking)
        self.google.put_event(practice.calendar_id, booking.resource())
        return booking

    def drop(self) -> None:
        """Drop the practices' schemas and the queue's (made by the workers; only ours: the names are random)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            for schema in [practice.schema for practice in self.practices] + [self.queue_schema]:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def practice_ids(count: int, prefix: str | None = None) -> list[str]:
    """`count` practice ids under one random prefix (`[a-z0-9_]{1,40}`, as a practice id must be)."""
    prefix = prefix or f"w{secrets.token_hex(3)}"
    return [f"{prefix}_{number:04d}" for number in range(count)]


def save_token(google: FakeGoogleCalendar, data_dir: Path) -> None:
    """The practice's OAuth token, as `main.py auth` would have left it (0600)."""
    credentials = Credentials(
        token=google.issue_access_token([SCOPE_OWNED], lifetime=7 * 86400),
        refresh_token=google.issue_refresh_token([SCOPE_OWNED]),
        token_uri=google.token_uri,
        client_id=google.client_id,
        client_secret=google.client_secret,
        scopes=[SCOPE_OWNED],
        expiry=datetime.now(UTC).replace(tzinfo=None) + timedelta(days=7),
    )
    save_credentials(credentials, data_dir / "google-token.json")


def practice_config(practice: GeneratedPractice, *, url: str, google: FakeGoogleCalendar, stripe_api_base: str | None,
                    poll_interval: str, charge_from: datetime, write_back: bool) -> str:
    """The text of one practice's Slotguard config (absolute paths inside)."""
    if stripe_api_base:
        payments = (f'provider = "stripe"\nsecret_key = {{ env = "{KEY_ENV}" }}\napi_base = "{stripe_api_base}"\n'
                    'max_single_charge = "2000 NOK"\n')
    else:
        payments = 'provider = "record-only"\n'
    return f"""# Generated by tests/support/practices.py: practice {practice.id} of a test deployment.
[practice]
name = "Practice {practice.id}"
email = "{practice.email}"
timezone = "Europe/Oslo"
currency = "NOK"
booking_link = "https://example.com/book/{practice.id}"

[calendar]
source = "google"
calendar_ids = ["{practice.calendar_id}"]
api_endpoint = "{google.api_endpoint}"
token_uri = "{google.token_uri}"
poll_interval = "{poll_interval}"
write_back = {"true" if write_back else "false"}

[calendar.marks]
no_show = {{ tags = ["{NO_SHOW}"] }}
waive = {{ tags = ["{WAIVE}"] }}

[services]
default = {{ price = "{FEE}", duration = "30m" }}

[payments]
{payments}review_window = "0m"
charge_from = {charge_from.isoformat()}
require_policy_notice = false  # about workers and crashes: fees stand as planned (see the module's docstring)

[mail]
outbox_dir = "{practice.outbox}"
digest_hour = -1
monthly_report = false
quiet_hours = ""  # on the real clock, quiet hours would make when fees go depend on the hour the tests run

[storage]
data_dir = "{practice.data_dir}"
url = "{url}"
schema = "{practice.schema}"

[policies]
enabled = ["no_show"]

[policies.no_show]
fee = "100%"
"""


def write_deployment(root: Path, count: int, *, url: str, google: FakeGoogleCalendar, stripe_api_base: str | None = None,
                     bookings: int = 4, clients: int = 3, past_hours: float = 6.0, spread: timedelta | None = None,
                     poll_interval: str = "1s", write_back: bool = False, prefix: str | None = None,
                     workers: str = "", sections: str = "") -> GeneratedDeployment:
    """Write a deployment of `count` practices under `root`; put each practice's bookings on
    its own calendar of `google` and its token in its data_dir. Returns what was written.

    `url` is the test PostgreSQL server (tests/support/pg.py require_pg). Bookings: `bookings`
    per practice, their clients taken in turn from `clients` per practice (own addresses per
    practice), starting `past_hours` ago, 30 minutes each, one after another, or spread evenly
    over `spread` from then (the bench's 200 events, past and future). `workers` adds lines to
    the deployment file's [workers] section, `sections` more sections at its end (e.g. [push]).
    Raises OSError when the disk refuses.
    """
    root.mkdir(parents=True, exist_ok=True)
    folder, data = root / "practices", root / "var"
    folder.mkdir(exist_ok=True)
    ids = practice_ids(count, prefix)
    queue_schema = f"q_{ids[0].rsplit('_', 1)[0]}" if ids else "q_empty"
    first = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=past_hours)
    step = (spread / max(bookings, 1)) if spread else timedelta(minutes=30)
    practices = []
    for practice_id in ids:
        people = [Client(f"{FIRST_NAMES[n % len(FIRST_NAMES)].lower()}{n}.{practice_id}@example.com",
                         f"{FIRST_NAMES[n % len(FIRST_NAMES)]} Client{n}") for n in range(clients)]
        practice = GeneratedPractice(practice_id, f"{practice_id}@group.calendar.google.com", folder / f"{practice_id}.toml",
                                     data / practice_id, people)
        practice.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        save_token(google, practice.data_dir)
        for number in range(bookings):
            booking = Booking(practice, f"b{number:05d}", people[number % len(people)], first + step * number)
            practice.bookings.append(booking)
            google.put_event(practice.calendar_id, booking.resource())
        practice.config.write_text(practice_config(practice, url=url, google=google, stripe_api_base=stripe_api_base,
                                                   poll_interval=poll_interval, charge_from=first - timedelta(days=1),
                                                   write_back=write_back))
        practices.append(practice)
    file = root / "deployment.toml"
    file.write_text(f"""# Generated by tests/support/practices.py: {count} practices on the test PostgreSQL server.
[deployment]
practices = "{folder}"
data_dir = "{data}"

[storage]
url = "{url}"

[workers]
queue_schema = "{queue_schema}"
{workers}
[metrics]
listen = ""
{sections}""")
    return GeneratedDeployment(root, file, url, google, practices, queue_schema)
