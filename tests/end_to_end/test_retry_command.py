"""`main.py retry` as a separate process: actions that failed for good go back in the queue
once the admin has fixed the cause, and the next run carries them out once.

The failures are real: a relay whose certificate a private authority signed, before
mail.smtp.ca_file is set (aiosmtpd on a loopback port); an outbox folder that cannot be
created; a charge Stripe (localstripe) is never asked for because it is above
payments.max_single_charge."""

from __future__ import annotations

import email
import email.policy
import json
import shutil

import pytest

from slotguard.store.ledger import Ledger
from tests.support.cli import NOW, example_practice_over_smtp, main
from tests.support.smtp_server import PrivateAuthority, Recorder, SmtpServer
from tests.support.stripe_fixtures import *  # noqa: F401,F403 - localstripe, proxy, admin client
from tests.support.stripe_fixtures import intents_for_action
from tests.support.stripe_practice import main_process, write_practice

SOON = "2026-11-26T12:05:00+01:00"
LATER = "2026-11-26T12:10:00+01:00"
FRIDAY_AFTERNOON = "2026-11-27T14:00:00+01:00"  # Frank's moved session started at 13:00


def ledger_of(folder) -> dict:
    return {a["id"]: a for a in json.loads(main(folder, "ledger", "--json").stdout)["actions"]}


def failed_of(folder, now=NOW) -> dict:
    """Failed actions by client (one each in these practices, beside Lena's monthly report)."""
    status = json.loads(main(folder, "status", "--json", "--now", now).stdout)
    return {a["client"]: a for a in status["failed"] if a["template"] != "monthly_report"}


def action_notes(ledger_path, action_id) -> list[str]:
    ledger = Ledger(ledger_path)
    try:
        return [entry["note"] for entry in ledger.action_log(action_id)]
    finally:
        ledger.close()


# -- a relay with a privately signed certificate, before and after mail.smtp.ca_file -----------------


@pytest.fixture
def office(tmp_path):
    return PrivateAuthority(tmp_path, "office")


@pytest.fixture
def relay(office):
    server = SmtpServer(recorder=Recorder(), certificate=office.issue()).start()
    yield server
    server.stop()


@pytest.fixture
def practice(tmp_path, relay):
    """The example practice sending through the relay with STARTTLS, without ca_file."""
    return example_practice_over_smtp(tmp_path, relay.port, "starttls")


def trust_the_office(practice, office) -> None:
    path = practice / "config/example.toml"
    path.write_text(path.read_text().replace('timeout = "5s"', f'timeout = "5s"\nca_file = "{office.cert_file}"'))


def recipients(relay) -> list[str]:
    return [m["To"].addresses[0].addr_spec for m in relay.messages]


def test_an_email_refused_for_the_certificate_is_sent_exactly_once_after_ca_file_is_set_and_it_is_retried(practice, relay, office):
    main(practice, "run", "--once", "--now", NOW)
    failed = failed_of(practice)
    # Clara's is the kind warning she gets instead of a fee (she had not been told the policy).
    assert sorted(failed) == ["clara@example.com", "frank@example.com", "greta@example.com", "lena@example.com"]
    greta = failed["greta@example.com"]
    assert greta["template"] == "booking_confirmation" and "mail.smtp.ca_file" in greta["last_error"]
    assert relay.messages == []

    trust_the_office(practice, office)
    main(practice, "run", "--once", "--now", SOON)
    assert relay.messages == [], "a failed action stays failed until someone retries it"

    result = main(practice, "retry", greta["id"], "--now", SOON)
    assert f"{greta['id']}  email booking_confirmation for greta@example.com: back in the queue; sent at the next tick" in result.stdout
    assert "1 action(s) retried; the next tick of `main.py run` carries them out" in result.stdout
    retried = ledger_of(practice)[greta["id"]]
    assert (retried["state"], retried["attempts"], retried["due_at"]) == ("planned", 0, "2026-11-26T11:05:00Z")
    assert any(note.startswith("retried by the practitioner") for note in action_notes(practice / "var/ledger.sqlite3", greta["id"]))

    main(practice, "run", "--once", "--now", SOON)
    assert recipients(relay) == ["greta@example.com"]
    assert relay.messages[0]["Subject"].startswith("Om timen din")  # the first run: an introduction of the policy
    main(practice, "run", "--once", "--now", LATER)
    assert recipients(relay) == ["greta@example.com"], "sent exactly once"
    assert ledger_of(practice)[greta["id"]]["state"] == "done"
    assert sorted(failed_of(practice, LATER)) == ["clara@example.com", "frank@example.com", "lena@example.com"], "only the id given was retried"


def test_unknown_and_done_ids_are_refused_with_exit_1_and_then_nothing_is_retried(practice, relay, office):
    main(practice, "run", "--once", "--now", NOW)
    failed = failed_of(practice)
    trust_the_office(practice, office)
    main(practice, "retry", failed["greta@example.com"]["id"], "--now", SOON)
    main(practice, "run", "--once", "--now", SOON)
    greta = failed["greta@example.com"]["id"]
    frank = failed["frank@example.com"]["id"]

    unknown = main(practice, "retry", "act_00000000000000000000", "--now", LATER, check=False)
    assert unknown.returncode == 1
    assert "act_00000000000000000000: no such action; see `main.py ledger`" in unknown.stderr

    done = main(practice, "retry", greta, "--now", LATER, check=False)
    assert done.returncode == 1
    assert f"{greta}: is done, not failed; only failed actions are retried" in done.stderr

    pending = json.loads(main(practice, "status", "--json", "--now", LATER).stdout)["pending_review"][0]["id"]
    mixed = main(practice, "retry", frank, pending, "--now", LATER, check=False)
    assert mixed.returncode == 1
    assert f"{pending}: is pending_review, not failed" in mixed.stderr and "nothing was retried" in mixed.stderr
    assert ledger_of(practice)[frank]["state"] == "failed", "a refused id in the list leaves the others alone"
    main(practice, "run", "--once", "--now", LATER)
    assert recipients(relay) == ["greta@example.com"]


def test_a_confirmation_for_a_session_that_has_started_is_dropped_not_sent_and_an_old_digest_is_left(practice, relay, office):
    main(practice, "run", "--once", "--now", NOW)
    failed = failed_of(practice)
    frank, digest = failed["frank@example.com"]["id"], failed["lena@example.com"]["id"]
    trust_the_office(practice, office)

    old = main(practice, "retry", digest, "--now", FRIDAY_AFTERNOON, check=False)
    assert old.returncode == 1
    assert "the digest for 2026-11-26 is out of date" in old.stderr

    result = main(practice, "retry", "--all-failed", "--kind", "email", "--now", FRIDAY_AFTERNOON)
    assert f"{digest}  email practitioner_digest for lena@example.com: left failed" in result.stdout
    assert (f"{frank}  email booking_confirmation for frank@example.com: back in the queue; will NOT be sent: "
            "too late, the appointment started 2026-11-27 13:00") in result.stdout
    main(practice, "run", "--once", "--now", FRIDAY_AFTERNOON)
    assert "frank@example.com" not in recipients(relay), "no confirmation after the session"
    actions = ledger_of(practice)
    assert actions[frank]["state"] == "cancelled"
    assert actions[digest]["state"] == "failed"
    assert "lena@example.com" in recipients(relay), "today's digest went out instead"


def test_a_fee_notice_that_failed_more_than_a_week_ago_is_not_sent_late(practice, relay, office):
    main(practice, "run", "--once", "--now", NOW)
    main(practice, "run", "--once", "--now", "2026-11-27T09:00:00+01:00")  # fees charged; their notices fail
    status = json.loads(main(practice, "status", "--json", "--now", "2026-11-27T09:00:00+01:00").stdout)
    [notice] = [a for a in status["failed"] if a["template"] == "no_show_followup"]
    assert notice["client"] == "bjorn@example.com"
    trust_the_office(practice, office)

    late = main(practice, "retry", notice["id"], "--now", "2026-12-11T09:00:00+01:00", check=False)
    assert late.returncode == 1
    assert "14 days ago" in late.stderr and "would reach the client weeks late" in late.stderr
    assert ledger_of(practice)[notice["id"]]["state"] == "failed"

    main(practice, "retry", notice["id"], "--now", "2026-11-30T09:00:00+01:00")
    main(practice, "run", "--once", "--now", "2026-11-30T09:00:00+01:00")
    assert recipients(relay).count("bjorn@example.com") == 1, "three days late is still worth telling"


# -- a charge and an email that failed, on Stripe ---------------------------------------------------------


@pytest.fixture
def stripe_practice(tmp_path, stripe_proxy, stripe_client_with_card):
    """Ana's no-show fee charged to her card on file after a one-hour review window; mail to
    an outbox folder, tried once."""
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    config = write_practice(tmp_path, stripe_proxy.base_url, payments='max_single_charge = "2000 NOK"')
    text = config.read_text().replace('review_window = "0m"', 'review_window = "1h"')
    config.write_text(text.replace("[mail]\n", "[mail]\nmax_attempts = 1\n"))
    return config


def run(config, now):
    result = main_process(config, "run", "--once", "--now", now)
    assert result.returncode == 0, result.stderr
    return result


def retry(config, *argv):
    return main_process(config, "retry", *argv)


def fail_the_fee_and_its_notice(config):
    """The fee is planned at noon; then payments.max_single_charge is lowered below it and the
    outbox folder is replaced by a file, so at 14:00 both the charge and the notice fail."""
    run(config, NOW)
    outbox = config.parent / "outbox"
    shutil.move(outbox, config.parent / "outbox-moved-away")
    outbox.write_text("not a folder")
    config.write_text(config.read_text().replace('max_single_charge = "2000 NOK"', 'max_single_charge = "500 NOK"'))
    run(config, "2026-11-26T14:00:00+01:00")
    status = json.loads(main_process(config, "status", "--json", "--now", "2026-11-26T14:00:00+01:00").stdout)
    failed = {a["kind"]: a for a in status["failed"]}
    assert sorted(failed) == ["charge", "email"], status["failed"]
    assert "max_single_charge" in failed["charge"]["last_error"]
    assert "cannot write to the mail outbox folder" in failed["email"]["last_error"]
    return failed["charge"]["id"], failed["email"]["id"]


def states(config) -> dict[str, str]:
    actions = json.loads(main_process(config, "ledger", "--json").stdout)["actions"]
    return {a["id"]: a["state"] for a in actions}


def test_all_failed_asks_for_yes_with_money_among_them_and_kind_email_retries_only_the_email(stripe_practice, stripe_admin):
    config = stripe_practice
    charge, notice = fail_the_fee_and_its_notice(config)
    (config.parent / "outbox").unlink()
    shutil.move(config.parent / "outbox-moved-away", config.parent / "outbox")
    config.write_text(config.read_text().replace('max_single_charge = "500 NOK"', 'max_single_charge = "2000 NOK"'))

    asked = retry(config, "--all-failed", "--now", "2026-11-26T15:00:00+01:00")
    assert asked.returncode == 1
    assert charge in asked.stdout and notice in asked.stdout and "would retry 2 failed action(s)" in asked.stdout
    assert "Add --yes to retry them all, or choose with --kind" in asked.stderr
    assert states(config)[charge] == states(config)[notice] == "failed", "nothing moves without --yes"

    emails = retry(config, "--all-failed", "--kind", "email", "--now", "2026-11-26T15:00:00+01:00")
    assert emails.returncode == 0, emails.stderr
    lines = emails.stdout.splitlines()
    assert [line.split()[0] for line in lines if line.startswith("act_")] == [notice]
    assert f"although the fee it reports on ({charge}) failed" in emails.stdout
    after = states(config)
    assert (after[notice], after[charge]) == ("planned", "failed")

    run(config, "2026-11-26T15:01:00+01:00")
    run(config, "2026-11-26T15:05:00+01:00")
    sent = config.parent / "outbox" / f"{notice}.eml"
    assert sent.exists() and states(config)[notice] == "done"
    message = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    assert message["To"].addresses[0].addr_spec == "ana@example.com"
    assert states(config)[charge] == "failed" and intents_for_action(stripe_admin, charge) == [], "no money moved"


def test_a_failed_charge_is_retried_once_the_cap_allows_it_and_charged_exactly_once(stripe_practice, stripe_admin):
    config = stripe_practice
    charge, _ = fail_the_fee_and_its_notice(config)

    capped = retry(config, charge, "--now", "2026-11-26T15:00:00+01:00")
    assert capped.returncode == 1
    assert "NOK\u00a0900.00 is above payments.max_single_charge (NOK\u00a0500.00)" in capped.stderr
    assert states(config)[charge] == "failed"

    config.write_text(config.read_text().replace('max_single_charge = "500 NOK"', 'max_single_charge = "2000 NOK"'))
    result = retry(config, charge, "--now", "2026-11-26T15:00:00+01:00")
    assert result.returncode == 0, result.stderr
    assert f"same idempotency key slotguard-{charge}" in result.stdout
    run(config, "2026-11-26T15:01:00+01:00")
    run(config, "2026-11-26T15:05:00+01:00")
    [intent] = intents_for_action(stripe_admin, charge)
    assert (intent["status"], intent["amount"]) == ("succeeded", 90000)
    assert states(config)[charge] == "done"
    again = retry(config, charge, "--now", "2026-11-26T15:10:00+01:00")
    assert again.returncode == 1 and "is done, not failed" in again.stderr
    assert len(intents_for_action(stripe_admin, charge)) == 1


def test_a_failed_fee_waived_on_the_calendar_since_is_never_retried(stripe_practice, stripe_admin):
    config = stripe_practice
    charge, _ = fail_the_fee_and_its_notice(config)
    config.write_text(config.read_text().replace('max_single_charge = "500 NOK"', 'max_single_charge = "2000 NOK"'))
    calendar = config.parent / "week.ics"
    calendar.write_text(calendar.read_text().replace("SUMMARY:Massage #noshow", "SUMMARY:Massage #noshow #waive"))
    run(config, "2026-11-26T15:00:00+01:00")

    # The waiver reaches the failed fee itself: it is waived, so no retry can charge it.
    assert states(config)[charge] == "waived"
    refused = retry(config, charge, "--now", "2026-11-26T15:05:00+01:00")
    assert refused.returncode == 1
    assert "is waived, not failed" in refused.stderr
    everything = retry(config, "--all-failed", "--yes", "--now", "2026-11-26T15:05:00+01:00")
    assert charge not in everything.stdout
    run(config, "2026-11-26T15:10:00+01:00")
    assert states(config)[charge] == "waived" and intents_for_action(stripe_admin, charge) == []
