"""`main.py charge-now ID` as a process on the example practice: it charges the fee asked
for (and sends that fee's notice), nothing else; everything else waits for `run`, which
reads the calendar first."""

from __future__ import annotations

import email
import email.policy
import json
import shutil

from tests.support.cli import NOW, ROOT, clara_knows_the_policy, main

NEXT_MORNING = "2026-11-27T09:00:00+01:00"  # both fees' review windows (12h) have ended


def sent_to(folder) -> dict[str, list[str]]:
    """Plain text of every message in the outbox, by recipient."""
    found: dict[str, list[str]] = {}
    for path in sorted((folder / "var/outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found.setdefault(message["To"].addresses[0].addr_spec, []).append(message.get_body(("plain",)).get_content())
    return found


def test_charge_now_charges_only_the_fee_asked_for_and_leaves_a_fee_waived_on_its_event_to_run(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    clara_knows_the_policy(tmp_path)  # so that her late cancellation's fee stands beside Bjørn's
    main(tmp_path, "run", "--once", "--now", NOW)
    fees = {a["client"]: a["id"] for a in json.loads(main(tmp_path, "status", "--json", "--now", NOW).stdout)["pending_review"]}
    assert set(fees) == {"bjorn@example.com", "clara@example.com"}
    before = sent_to(tmp_path)
    # The daemon is stopped. Lena adds #waive to Clara's event, then charges Bjørn's fee now.
    week = tmp_path / "config/sample-week.ics"
    text = week.read_text()
    assert "SUMMARY:Massage – Clara Nowak #latecancel\n" in text
    week.write_text(text.replace("SUMMARY:Massage – Clara Nowak #latecancel\n", "SUMMARY:Massage – Clara Nowak #latecancel #waive\n")
                    .replace("LAST-MODIFIED:20261125T043000Z", "LAST-MODIFIED:20261126T200000Z"))

    charged = main(tmp_path, "charge-now", fees["bjorn@example.com"], "--now", NEXT_MORNING)
    assert charged.stdout.startswith(f"{fees['bjorn@example.com']}: done")

    ledger = {a["id"]: a for a in json.loads(main(tmp_path, "ledger", "--json").stdout)["actions"]}
    assert ledger[fees["bjorn@example.com"]]["state"] == "done"
    assert ledger[fees["clara@example.com"]]["state"] == "pending_review", "charge-now charged another client's fee, waived on its event"
    after = sent_to(tmp_path)
    assert len(after.get("bjorn@example.com", [])) == len(before.get("bjorn@example.com", [])) + 1, "Bjørn's fee notice goes with his fee"
    assert "900" in after["bjorn@example.com"][-1]
    assert after.get("clara@example.com", []) == before.get("clara@example.com", []), "nothing is sent to Clara by charge-now"

    main(tmp_path, "run", "--once", "--now", NEXT_MORNING)  # reads the calendar first: Clara's waiver counts
    ledger = {a["id"]: a for a in json.loads(main(tmp_path, "ledger", "--json").stdout)["actions"]}
    assert ledger[fees["clara@example.com"]]["state"] == "waived"
    assert "ingen avgift" in sent_to(tmp_path)["clara@example.com"][-1].lower()  # practice.locale = "nb": no fee this time


def test_a_mark_seen_too_late_plans_no_fee_the_digest_names_charge_now_and_charge_now_charges_it(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    # Lena marks Ana's Monday session (ended 23 Nov 11:00) a no-show; Slotguard first sees the
    # mark on Thursday noon, 73 hours after the end: past calendar.marks.honour_for (3d).
    week = tmp_path / "config/sample-week.ics"
    text = week.read_text()
    assert "SUMMARY:Massage – Ana Silva\n" in text
    week.write_text(text.replace("SUMMARY:Massage – Ana Silva\n", "SUMMARY:Massage – Ana Silva #noshow\n"))
    main(tmp_path, "run", "--once", "--now", NOW)
    ledger = json.loads(main(tmp_path, "ledger", "--json").stdout)["actions"]
    [late] = [a for a in ledger if a["client"] == "ana@example.com" and a["kind"] == "charge"]
    assert late["state"] == "cancelled" and "not charged: marked 3 days after the session" in late["reason"]
    assert "ana@example.com" not in sent_to(tmp_path), "Ana hears nothing about a mark made too late"
    digest = sent_to(tmp_path)["lena@example.com"][-1]
    assert "markert 3 dager etter timen" in digest and f"python main.py charge-now {late['id']}" in digest, digest

    charged = main(tmp_path, "charge-now", late["id"], "--now", NEXT_MORNING)
    assert charged.stdout.startswith(f"{late['id']}: done")
    ledger = {a["id"]: a for a in json.loads(main(tmp_path, "ledger", "--json").stdout)["actions"]}
    assert ledger[late["id"]]["payment_status"] == "receivable"
    [notice] = sent_to(tmp_path)["ana@example.com"]
    assert "900" in notice, "the notice kept with the fee goes with it"


LATE_EVENING = "2026-11-26T23:00:00+01:00"  # in the clients' quiet hours; the fees are due at 08:00


def test_charge_now_sends_the_notice_with_the_charge_in_the_same_moment_even_in_quiet_hours(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    clara_knows_the_policy(tmp_path)  # so that her late cancellation's fee stands beside Bjørn's
    main(tmp_path, "run", "--once", "--now", NOW)
    fees = {a["client"]: a["id"] for a in json.loads(main(tmp_path, "status", "--json", "--now", NOW).stdout)["pending_review"]}
    ledger = {a["id"]: a for a in json.loads(main(tmp_path, "ledger", "--json").stdout)["actions"]}
    assert ledger[fees["bjorn@example.com"]]["due_at"] == "2026-11-27T07:00:00Z", "the window ends at midnight: due at 08:00"
    before = sent_to(tmp_path)

    charged = main(tmp_path, "charge-now", fees["bjorn@example.com"], "--now", LATE_EVENING)
    assert charged.stdout.startswith(f"{fees['bjorn@example.com']}: done")

    actions = json.loads(main(tmp_path, "ledger", "--json").stdout)["actions"]
    fee = next(a for a in actions if a["id"] == fees["bjorn@example.com"])
    notices = [a for a in actions if a["client"] == "bjorn@example.com" and a["template"] == "no_show_followup"]
    assert [notice["state"] for notice in notices] == ["done"]
    assert fee["executed_at"] == notices[0]["executed_at"] == "2026-11-26T22:00:00Z", "the explanation goes with the charge"
    after = sent_to(tmp_path)
    assert len(after["bjorn@example.com"]) == len(before.get("bjorn@example.com", [])) + 1
    # The other fee was not asked for: it still waits for 08:00, its notice too.
    assert next(a for a in actions if a["id"] == fees["clara@example.com"])["state"] == "pending_review"
    assert after.get("clara@example.com", []) == before.get("clara@example.com", [])
