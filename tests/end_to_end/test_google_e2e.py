"""A week of practice through `main.py run --once` against the fake Google Calendar server.

The real google-api-python-client in the main.py process talks HTTP to the fake, which
stamps `updated` with the wall clock; so the timeline is built around the real time now, and
`--now` moves the engine's clock forward between runs.
"""

import email
import email.policy
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.fake_google_calendar import FakeGoogleCalendar
from tests.support.practices import save_token

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def google_practice(tmp_path):
    fake = FakeGoogleCalendar(require_auth=True).start()
    data = tmp_path / "var"
    save_token(fake, data)
    (tmp_path / "slotguard.toml").write_text(f"""
[practice]
name = "Lena Berg Massage"
email = "lena@example.com"
timezone = "Europe/Oslo"
currency = "NOK"
booking_link = "https://example.com/book"
payment_instructions = "Vipps 400 00 000"

[calendar]
source = "google"
calendar_ids = ["primary"]
api_endpoint = "{fake.api_endpoint}"
token_uri = "{fake.token_uri}"

[services]
default = {{ price = "900 NOK", duration = "60m", label = "massage" }}

[payments]
review_window = "12h"

[mail]
outbox_dir = "var/outbox"
digest_hour = -1  # this test counts the clients' mail; the practitioner's digest is tested elsewhere
monthly_report = false  # nor the monthly report
quiet_hours = ""  # on the real clock, quiet hours would make when fees and emails go depend on the hour the tests run

[storage]
data_dir = "var"

[policies]
enabled = ["late_cancel", "no_show"]
""")
    yield fake, tmp_path
    fake.stop()


def run(folder, now):
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "run", "--once", "--config", "slotguard.toml", "--now", now.isoformat()],
        cwd=folder, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def ledger(folder):
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "ledger", "--json", "--config", "slotguard.toml"],
        cwd=folder, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(result.stdout)["actions"]


def mails(folder):
    found = []
    for path in sorted((folder / "var/outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found.append((message["To"].addresses[0].addr_spec, message["Subject"]))
    return found


def booking(event_id, start, who, name, **extra):
    return {
        "id": event_id,
        "summary": f"Massage – {name}",
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Oslo"},
        "attendees": [
            {"email": "lena@example.com", "organizer": True, "self": True, "responseStatus": "accepted"},
            {"email": who, "displayName": name, "responseStatus": "accepted"},
        ],
        **extra,
    }


def test_a_week_of_bookings_marks_declines_moves_and_deletions(google_practice):
    fake, folder = google_practice
    t0 = datetime.now(UTC).replace(microsecond=0)
    fake.put_event("primary", booking("ana", t0 + timedelta(hours=5), "ana@example.com", "Ana Silva"))
    fake.put_event("primary", booking("bo", t0 + timedelta(hours=26), "bo@example.com", "Bo Ek"))
    fake.put_event("primary", booking("dee", t0 + timedelta(days=3), "dee@example.com", "Dee Moss"))
    fake.put_event("primary", booking("eve", t0 + timedelta(days=4), "eve@example.com", "Eve Lund"))
    fake.put_event("primary", booking("fay", t0 + timedelta(days=2, hours=1), "fay@example.com", "Fay Orr"))
    fake.put_recurring("primary", booking("cy", t0 + timedelta(days=2, hours=3), "cy@example.com", "Cy Dahl"), count=3)
    fake.put_event("primary", {"id": "lunch", "summary": "Lunch",
                               "start": {"dateTime": (t0 + timedelta(hours=2)).isoformat()},
                               "end": {"dateTime": (t0 + timedelta(hours=3)).isoformat()}})

    # At t0: the fake stamps each change with the real clock, so Ana's cancellation below comes
    # after the confirmation this run sends her (a fee stands only for a client told the policy).
    out = run(folder, t0)
    assert "booked 8" in out
    confirmed = sorted(to for to, subject in mails(folder))
    # One confirmation per client; Cy's weekly series is confirmed once.
    assert confirmed == ["ana@example.com", "bo@example.com", "cy@example.com", "dee@example.com",
                         "eve@example.com", "fay@example.com"]

    fake.modify_event("primary", "ana", summary="Massage – Ana Silva #latecancel")
    fake.delete_event("primary", "dee")
    moved = t0 + timedelta(days=5)
    fake.modify_event("primary", "eve", start={"dateTime": moved.isoformat(), "timeZone": "Europe/Oslo"},
                      end={"dateTime": (moved + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Oslo"})
    attendees = fake.get_event("primary", "fay")["attendees"]
    attendees[1]["responseStatus"] = "declined"
    fake.modify_event("primary", "fay", attendees=attendees)
    out = run(folder, t0 + timedelta(minutes=2))
    assert "cancelled_by_client 2" in out and "cancelled_by_practitioner 1" in out and "rescheduled 1" in out

    actions = ledger(folder)
    [ana_fee] = [a for a in actions if a["kind"] == "charge"]
    assert ana_fee["client"] == "ana@example.com" and ana_fee["amount"] == {"minor": 45000, "currency": "NOK"}
    assert ana_fee["state"] == "pending_review"
    ana = fake.get_event("primary", "ana")
    # Ana is invited, so she would read the description: the status stays private.
    assert "Slotguard" not in ana.get("description", "")
    assert ana["extendedProperties"]["private"]["slotguard_state"] == "pending_review"
    assert ana["summary"] == "Massage – Ana Silva #latecancel"  # nothing else touched
    assert ("eve@example.com", next(s for to, s in mails(folder) if to == "eve@example.com" and "new time" in s)) in mails(folder)

    fake.modify_event("primary", "bo", colorId="11")
    out = run(folder, t0 + timedelta(hours=28))
    assert "no_show 1" in out
    actions = ledger(folder)
    fees = {a["client"]: a for a in actions if a["kind"] == "charge"}
    assert fees["ana@example.com"]["state"] == "done" and fees["ana@example.com"]["payment_status"] == "receivable"
    assert fees["bo@example.com"]["state"] == "pending_review"
    assert fake.get_event("primary", "bo")["extendedProperties"]["private"]["slotguard_state"] == "pending_review"
    subjects = mails(folder)
    assert any(to == "ana@example.com" and "cancelled" in s.lower() for to, s in subjects)
    # The 24 h reminder for Cy's first session went out; the 48 h one was already past when booked.
    cy_reminders = [a for a in actions if a["client"] == "cy@example.com" and a["template"] == "reminder"]
    assert [a["state"] for a in cy_reminders] == ["done"]
    assert not any(a["client"] in ("dee@example.com", "fay@example.com") and a["template"] == "reminder" for a in actions)

    # Our own notes changed `updated` on the events: the next look finds nothing new.
    before = ledger(folder)
    fake.reset_requests()
    out = run(folder, t0 + timedelta(hours=28, minutes=2))
    assert "happenings: none" in out and "actions planned: none" in out
    assert ledger(folder) == before
    assert len([r for r in fake.api_requests() if r.method == "GET"]) == 1


def test_a_far_booking_beyond_the_window_is_found_by_the_daily_full_listing(google_practice):
    fake, folder = google_practice
    config = folder / "slotguard.toml"
    config.write_text(config.read_text().replace('token_uri =', 'window_future = "10d"\ntoken_uri ='))
    t0 = datetime.now(UTC).replace(microsecond=0)
    fake.put_event("primary", booking("far", t0 + timedelta(days=15), "far@example.com", "Far Away"))
    assert "booked" not in run(folder, t0 + timedelta(minutes=1)).split("happenings:")[1].splitlines()[0]
    # Incremental ticks within the day see nothing (the event has not changed).
    assert "happenings: none" in run(folder, t0 + timedelta(hours=3))
    # Six days later the event is inside the window, and the daily full listing finds it.
    assert "booked 1" in run(folder, t0 + timedelta(days=6))


def cli(folder, *args, now=None):
    extra = ["--now", now.isoformat()] if now else []
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args, "--config", "slotguard.toml", *extra],
        cwd=folder, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def own_booking(event_id, start, who):
    """An event on the practitioner's calendar naming the client in an `email:` line."""
    return {"id": event_id, "summary": "Massage", "description": f"email: {who}",
            "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Oslo"}}


def test_a_fee_waived_or_paid_by_command_is_shown_on_the_event_at_the_next_tick(google_practice):
    fake, folder = google_practice
    t0 = datetime.now(UTC).replace(microsecond=0)
    fake.put_event("primary", own_booking("gus", t0 + timedelta(hours=1), "gus@example.com"))
    fake.put_event("primary", own_booking("hal", t0 + timedelta(hours=1), "hal@example.com"))
    run(folder, t0)
    fake.modify_event("primary", "gus", colorId="11")
    fake.modify_event("primary", "hal", colorId="11")
    run(folder, t0 + timedelta(hours=2))
    fees = {a["client"]: a for a in ledger(folder) if a["kind"] == "charge"}
    assert "pending review" in fake.get_event("primary", "gus")["description"]

    cli(folder, "waive", fees["gus@example.com"]["id"], "--reason", "sick child", now=t0 + timedelta(hours=3))
    run(folder, t0 + timedelta(hours=3, minutes=2))
    gus = fake.get_event("primary", "gus")["description"]
    assert "Slotguard: no-show fee 900.00 NOK waived" in gus and "pending review" not in gus

    # The end of hal's review window, or of the quiet hours it ends in (on the real clock, either).
    due = datetime.fromisoformat(fees["hal@example.com"]["due_at"].replace("Z", "+00:00"))
    assert t0 + timedelta(hours=14) <= due <= t0 + timedelta(hours=26)
    run(folder, due)  # hal's fee is carried out: a receivable (record-only)
    assert "not paid yet" in fake.get_event("primary", "hal")["description"]
    cli(folder, "mark-paid", fees["hal@example.com"]["id"], now=due + timedelta(hours=1))
    run(folder, due + timedelta(hours=1, minutes=2))
    hal = fake.get_event("primary", "hal")["description"]
    assert "Slotguard: no-show fee 900.00 NOK charged" in hal and "not paid yet" not in hal
