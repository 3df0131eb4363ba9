"""main.py as a separate process on real config files, in a scratch working folder."""

import email
import email.policy
import json
import shutil

import pytest

from tests.support.cli import NOW, ROOT, clara_knows_the_policy, main


@pytest.fixture()
def practice(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


def outbox(folder):
    messages = []
    for path in sorted((folder / "var/outbox").glob("*.eml")):
        messages.append(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
    return messages


def test_help_lists_the_commands():
    out = main(ROOT, "--help").stdout
    for command in ("run", "check-config", "status", "ledger", "waive", "charge-now", "replay"):
        assert command in out


def test_one_run_on_the_example_week_mails_and_records_fees_and_a_second_run_adds_nothing(practice):
    first = main(practice, "run", "--once", "--now", NOW)
    assert "no_show 1" in first.stdout and "cancelled_by_client 2" in first.stdout
    # Lena's monthly report of October (the first tick of the month sends last month's).
    [monthly] = [m for m in outbox(practice) if "Månedsrapport" in str(m["Subject"])]
    assert monthly["To"].addresses[0].addr_spec == "lena@example.com" and "oktober 2026" in str(monthly["Subject"])
    messages = {m["To"].addresses[0].addr_spec: m for m in outbox(practice) if m is not monthly and "Månedsrapport" not in str(m["Subject"])}
    # Greta's new booking and Frank's moved weekly session are confirmed; Clara, never sent the
    # policy before her late cancellation, gets a kind warning quoting it instead of a fee; no
    # other client is mailed yet; Lena gets her daily digest (the fee waiting for her review).
    assert sorted(messages) == ["clara@example.com", "frank@example.com", "greta@example.com", "lena@example.com"]
    ledger = json.loads(main(practice, "ledger", "--json").stdout)["actions"]
    fees = {a["client"]: a for a in ledger if a["kind"] == "charge"}
    assert set(fees) == {"bjorn@example.com"}, "Bjørn is in payments.policy_known_by: his fee stands"
    assert fees["bjorn@example.com"]["amount"] == {"minor": 90000, "currency": "NOK"}
    assert fees["bjorn@example.com"]["state"] == "pending_review"
    [let_go] = [a for a in ledger if a["client"] == "clara@example.com" and a["kind"] == "waive"]
    assert let_go["amount"] == {"minor": 45000, "currency": "NOK"} and "had not been told the policy" in let_go["reason"]
    clara = messages["clara@example.com"].get_body(("plain",)).get_content()
    assert "ingen avgift" in clara.lower() and "Avbestilling mindre enn 24 timer" in clara, clara  # nb: no fee; the policy quoted
    digest = messages["lena@example.com"].get_body(("plain",)).get_content()
    assert "Ingen avgift planlagt (1)" in digest and "Clara Nowak" in digest.split("Ingen avgift planlagt")[1], digest
    assert not any(a["client"] in ("ana@example.com", "david@example.com") and a["kind"] == "charge" for a in ledger)

    second = main(practice, "run", "--once", "--now", NOW)
    assert "actions planned: none" in second.stdout
    assert json.loads(main(practice, "ledger", "--json").stdout)["actions"] == ledger
    assert len(outbox(practice)) == 5


def test_waiving_from_the_command_line_and_the_status_view(practice):
    clara_knows_the_policy(practice)
    main(practice, "run", "--once", "--now", NOW)
    status = json.loads(main(practice, "status", "--json", "--now", NOW).stdout)
    pending = {a["client"]: a["id"] for a in status["pending_review"]}
    assert set(pending) == {"bjorn@example.com", "clara@example.com"}
    main(practice, "waive", pending["clara@example.com"], "--reason", "sick child", "--now", NOW)
    main(practice, "run", "--once", "--now", "2026-11-27T09:00:00+01:00")
    ledger = {a["id"]: a for a in json.loads(main(practice, "ledger", "--json").stdout)["actions"]}
    assert ledger[pending["clara@example.com"]]["state"] == "waived"
    assert ledger[pending["bjorn@example.com"]]["payment_status"] == "receivable"
    notices = {m["To"].addresses[0].addr_spec: m for m in outbox(practice)}
    clara = notices["clara@example.com"].get_body(("plain",)).get_content()
    assert "ingen avgift" in clara.lower()  # practice.locale = "nb": "there is no fee this time"
    bjorn = notices["bjorn@example.com"].get_body(("plain",)).get_content()
    assert "900" in bjorn and "Vipps" in bjorn
    text = main(practice, "status", "--now", "2026-11-27T09:00:00+01:00").stdout
    assert "bjorn@example.com" in text.split("Receivables")[1]


def test_a_broken_config_lists_every_problem_and_exits_2(practice):
    path = practice / "config/example.toml"
    text = path.read_text()
    text = text.replace('timezone = "Europe/Oslo"', 'timezone = "Europe/Osl"').replace('review_window = "12h"', 'review_window = "12 hours"')
    text = text.replace('enabled = ["late_cancel", "no_show"]', 'enabled = ["late_cancel", "no_shows"]')
    path.write_text(text)
    result = main(practice, "check-config", check=False)
    assert result.returncode == 2
    assert "practice.timezone" in result.stderr and "payments.review_window" in result.stderr
    result = main(practice, "check-config", check=False)
    path.write_text(text.replace('timezone = "Europe/Osl"', 'timezone = "Europe/Oslo"').replace("12 hours", "12h"))
    result = main(practice, "check-config", check=False)
    assert result.returncode == 2 and "unknown policy 'no_shows'" in result.stderr and "known policies" in result.stderr


def test_a_corrupt_calendar_file_is_reported_and_changes_nothing(practice):
    main(practice, "run", "--once", "--now", NOW)
    before = main(practice, "ledger", "--json").stdout
    (practice / "config/sample-week.ics").write_text("BEGIN:VCALENDAR\nthis is not ical\n")
    result = main(practice, "run", "--once", "--now", NOW)
    assert "not valid iCalendar" in result.stdout and "config/sample-week.ics" in result.stdout
    assert main(practice, "ledger", "--json").stdout == before


def test_a_broken_template_fails_at_start_not_at_send_time(practice):
    own = practice / "config/templates/en"
    own.mkdir(parents=True)
    original = (ROOT / "templates/reminder.txt.j2").read_text()
    (own / "reminder.txt.j2").write_text(original.replace("{{ practice.name }}", "{{ practice.nmae }}"))
    path = practice / "config/example.toml"
    path.write_text(path.read_text().replace('outbox_dir = "var/outbox"', 'outbox_dir = "var/outbox"\ntemplates_dir = "config/templates"'))
    result = main(practice, "run", "--once", "--now", NOW, check=False)
    assert result.returncode == 2 and "reminder" in result.stderr and "nmae" in result.stderr
    assert not (practice / "var/outbox").exists(), "nothing is sent with a broken template"


def test_replay_is_deterministic_and_applies_the_policies(tmp_path):
    scenario = ROOT / "tests/end_to_end/scenarios/week.json"
    first = json.loads(main(tmp_path, "replay", str(scenario), "--json").stdout)
    second = json.loads(main(tmp_path, "replay", str(scenario), "--json").stdout)
    assert first == second
    actions = first["actions"]
    charges = {a["client"]: a for a in actions if a["kind"] == "charge"}
    assert charges["ana@example.com"]["amount"] == {"minor": 45000, "currency": "NOK"}
    assert charges["bo@example.com"]["amount"] == {"minor": 90000, "currency": "NOK"}
    assert "cy@example.com" not in charges
    assert all(a["state"] == "done" for a in charges.values())
    cy_reminders = [a for a in actions if a["client"] == "cy@example.com" and a["template"] == "reminder" and a["state"] == "done"]
    assert [a["at"] for a in cy_reminders] == ["2026-03-04T13:00:00+01:00", "2026-03-05T13:00:00+01:00"]
    assert not list(tmp_path.iterdir()), "replay writes no files"
