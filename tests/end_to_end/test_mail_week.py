"""A week of a practice through `replay`: the expected messages reach the expected people at
the expected times, in their language: reminders 48 h and 24 h before, none for a cancelled
or moved slot, none twice; a short-notice cancellation offered to the waitlist; the
practitioner's digest every morning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from slotguard.what_if.replay import load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests/end_to_end/scenarios/mail_week.json"


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    """(actions from `main.py replay --json` in a separate process, the in-process result)."""
    folder = tmp_path_factory.mktemp("replay")
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "replay", str(SCENARIO), "--json"], cwd=folder,
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert not list(folder.iterdir()), "replay sends no mail and writes no file"
    return json.loads(result.stdout), run_scenario(load_scenario(SCENARIO))


def sent(actions, template=None):
    return [a for a in actions if a["kind"] == "email" and a["state"] == "done" and (template is None or a["template"] == template)]


def test_reminders_go_48_and_24_hours_before_and_never_for_a_cancelled_or_moved_slot(week):
    replayed, _ = week
    assert replayed["problems"] == []
    reminders = sorted((a["client"], a["at"]) for a in sent(replayed["actions"], "reminder"))
    assert reminders == [
        ("ana@example.com", "2026-03-02T10:00:00+01:00"),  # Wednesday 10:00, booked Monday 08:00
        ("ana@example.com", "2026-03-03T10:00:00+01:00"),
        ("bo@example.com", "2026-03-03T14:00:00+01:00"),   # Thursday 14:00; cancels Wednesday 20:00, after both
        ("bo@example.com", "2026-03-04T14:00:00+01:00"),
        ("dee@example.com", "2026-03-05T11:00:00+01:00"),  # Saturday 11:00, booked Tuesday
        ("dee@example.com", "2026-03-06T11:00:00+01:00"),
        ("fay@example.com", "2026-03-02T16:00:00+01:00"),  # Tuesday 16:00, booked 32 h ahead: the 24 h one only
        ("ola@example.com", "2026-03-05T15:00:00+01:00"),  # moved Wednesday from Friday 15:00 to Saturday 15:00
        ("ola@example.com", "2026-03-06T15:00:00+01:00"),
    ]
    clients = {a["client"] for a in sent(replayed["actions"], "reminder")}
    assert "cy@example.com" not in clients, "Cy's appointment was cancelled before any reminder was due"
    assert "eve@example.com" not in clients, "Eve booked 20 hours ahead: both reminder times had passed"


def test_no_message_is_sent_twice(week):
    replayed, in_process = week
    emails = sent(replayed["actions"])
    assert len({a["id"] for a in emails}) == len(emails) == len(in_process["emails"])
    per_slot = Counter((a["client"], a["event_id"], a["template"], a["at"]) for a in emails)
    assert max(per_slot.values()) == 1
    per_day = Counter(a["at"][:10] for a in emails if a["template"] == "practitioner_digest")
    assert set(per_day.values()) == {1}


def test_each_client_gets_the_right_messages_in_their_language(week):
    _, in_process = week
    by_client: dict[str, list[str]] = {}
    for message in in_process["emails"].values():
        address = message["to"].addresses[0].addr_spec
        by_client.setdefault(address, []).append(message["subject"])
    assert by_client["dee@example.com"] == [
        "Ihr Termin ist gebucht: Samstag, 7. März 2026",
        "Erinnerung: Ihr Termin am Samstag, 7. März 2026 um 11:00 Uhr",
        "Erinnerung: Ihr Termin am Samstag, 7. März 2026 um 11:00 Uhr",
    ]  # `lang: de` in the event
    assert by_client["ola@example.com"] == [
        "Timen din er bekreftet: fredag 6. mars 2026",
        "Timen din er flyttet: lørdag 7. mars 2026",
        "Påminnelse: timen din lørdag 7. mars 2026 kl. 15:00",
        "Påminnelse: timen din lørdag 7. mars 2026 kl. 15:00",
    ]  # mail.client_locales
    assert by_client["fay@example.com"][-1] == "We missed you on Tuesday, March 3"  # sent the next morning: the day, not "today"
    assert by_client["bo@example.com"][-1] == "Your cancelled massage on Thursday, March 5, 2026"
    assert by_client["cy@example.com"] == ["Your massage is booked: Friday, March 6, 2026"]
    assert by_client["eve@example.com"] == ["Your massage is booked: Friday, March 6, 2026"]


def test_a_short_notice_cancellation_is_offered_to_the_waitlist_at_once_and_once(week):
    replayed, _ = week
    offers = sent(replayed["actions"], "slot_freed")
    assert [(a["client"], a["event_id"], a["at"]) for a in offers] == [
        ("wait@example.com", "bo-thu", "2026-03-04T20:00:00+01:00")
    ]  # Cy's slot was cancelled by the practice (deleted): no offer


def test_the_practitioner_gets_a_digest_every_morning_at_seven(week):
    replayed, _ = week
    digests = sent(replayed["actions"], "practitioner_digest")
    assert {a["client"] for a in digests} == {"lena@example.com"}
    assert [a["at"] for a in digests] == [
        "2026-03-02T08:00:00+01:00",  # the replay starts at 08:00 on Monday
        *(f"2026-03-0{day}T07:00:00+01:00" for day in range(3, 10)),
    ]
