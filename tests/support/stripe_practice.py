"""A practice folder for running `main.py` as a process with the Stripe provider: a config
pointing at the test proxy, past no-shows in an .ics file, and
helpers to run commands as subprocesses or in this process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from slotguard.cli.main import build_parser
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-26T12:00:00+01:00"
WEBHOOK_ENV = "SLOTGUARD_TEST_WEBHOOK_SECRET"

CLIENTS = (("ana@example.com", "Ana Silva"), ("bo@example.com", "Bo Lind"), ("cy@example.com", "Cy Berg"))


def no_show_ics(clients: tuple[tuple[str, str], ...]) -> str:
    """A calendar with one past no-show (tag #noshow) per client, an hour apart."""
    events = []
    for hour, (email, name) in enumerate(clients, start=9):
        events.append(f"""BEGIN:VEVENT
UID:stripe-noshow-{hour}@slotguard
DTSTAMP:20261126T110000Z
LAST-MODIFIED:20261124T160000Z
DTSTART;TZID=Europe/Oslo:20261124T{hour:02d}0000
DTEND;TZID=Europe/Oslo:20261124T{hour + 1:02d}0000
SUMMARY:Massage #noshow
ORGANIZER:mailto:lena@example.com
ATTENDEE;CN={name};PARTSTAT=ACCEPTED:mailto:{email}
END:VEVENT
""")
    return "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Slotguard//Stripe tests//EN\n" + "".join(events) + "END:VCALENDAR\n"


def write_practice(folder: Path, api_base: str, payments: str = "", clients: tuple[tuple[str, str], ...] = CLIENTS[:1]) -> Path:
    """Write week.ics (a no-show per client) and slotguard.toml (absolute paths inside)
    into `folder`; return the config path. `payments` adds lines to [payments]."""
    (folder / "week.ics").write_text(no_show_ics(clients))
    if "max_single_charge" not in payments:  # required with the stripe provider
        payments = f'max_single_charge = "5000 NOK"\n{payments}'
    config = folder / "slotguard.toml"
    config.write_text(f"""
[practice]
name = "Lena Berg Massage"
email = "lena@example.com"
timezone = "Europe/Oslo"
currency = "NOK"
booking_link = "https://example.com/book"

[calendar]
source = "ics"
url = "{folder / 'week.ics'}"

[calendar.marks]
no_show = {{ tags = ["#noshow"] }}

[services]
default = {{ price = "900 NOK", duration = "60m" }}

[payments]
provider = "stripe"
secret_key = {{ env = "{KEY_ENV}" }}
api_base = "{api_base}"
review_window = "0m"
charge_from = 2026-11-23T00:00:00+01:00
# The week's no-shows are first seen marked, with no confirmation sent before: these tests are
# about charging through Stripe, not about telling the policy first (its default is true).
require_policy_notice = false
{payments}

[mail]
outbox_dir = "{folder / 'outbox'}"

[storage]
data_dir = "{folder / 'var'}"

[policies]
enabled = ["no_show"]

[policies.no_show]
fee = "100%"
""")
    return config


def process_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), KEY_ENV: TEST_KEY, **extra}
    if "SLOTGUARD_CRASH_AT" not in extra:
        env.pop("SLOTGUARD_CRASH_AT", None)
    return env


def main_process(config: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    """`python main.py COMMAND --config CONFIG ARGS...` as a separate process."""
    return subprocess.run([sys.executable, str(ROOT / "main.py"), argv[0], "--config", str(config), *argv[1:]],
                          cwd=config.parent, env=process_env(**env), capture_output=True, text=True, timeout=60)


def command(config: Path, *argv: str) -> int:
    """A command in this process (its handler, without main()'s logging set-up)."""
    args = build_parser().parse_args([argv[0], "--config", str(config), *argv[1:]])
    return args.handler(args)
