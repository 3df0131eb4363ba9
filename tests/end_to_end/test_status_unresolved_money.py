"""`main.py status` puts money whose outcome is not known first: the engineer paged at night
must see a charge Stripe may or may not have made before anything else. `main.py` runs as a
process against localstripe behind the fault proxy (Stripe down: every request 503)."""

from __future__ import annotations

import json
import signal

import pytest

from slotguard.domain.model import ActionKind
from slotguard.store.ledger import Ledger
from tests.support.stripe_fixtures import *  # noqa: F401,F403 - localstripe, proxy, admin client
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY
from tests.support.stripe_practice import CLIENTS, NOW, main_process, write_practice

HEADING = "Money whose outcome is not known yet"


def entry(section: str, action_id: str) -> str:
    """The lines `status` prints for one action: its own line, then why and next."""
    rows = section.splitlines()
    start = next(number for number, row in enumerate(rows) if action_id in row)
    return "\n".join(rows[start:start + 3])


@pytest.fixture
def practice(tmp_path, stripe_proxy, stripe_client_with_card, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    for email, name in CLIENTS[:2]:
        stripe_client_with_card(email, name=name)
    return write_practice(tmp_path, stripe_proxy.base_url, clients=CLIENTS[:2])


def test_status_lists_first_the_money_stripe_could_not_be_asked_about(practice, stripe_proxy):
    # Ana's fee: the daemon is killed right after Stripe took the money, before the ledger heard.
    crashed = main_process(practice, "run", "--once", "--now", NOW, SLOTGUARD_CRASH_AT="after_call:charge")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    ledger = Ledger(practice.parent / "var" / "ledger.sqlite3")
    fees = {fee.client_email: fee for fee in ledger.actions(kinds=[ActionKind.CHARGE])}
    ledger.close()
    ana, bo = fees["ana@example.com"], fees["bo@example.com"]

    # Stripe is down when it starts again: Ana's fee cannot be looked up, Bo's cannot be
    # charged, and whether that attempt reached Stripe cannot be asked either.
    stripe_proxy.inject("error", method="*", path=r"/v1/.*", status=503, times=-1)
    again = main_process(practice, "run", "--once", "--now", NOW)
    assert again.returncode == 0, again.stderr
    waived = main_process(practice, "waive", ana.id, "--reason", "sick child", "--now", NOW)
    assert waived.returncode == 0 and "waits for the answer" in waived.stdout, waived.stderr

    text = main_process(practice, "status", "--now", NOW)
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert f"\n{HEADING} (2)" in out
    assert out.index(HEADING) < out.index("Upcoming appointments"), "shown before everything else"
    section = out[out.index(HEADING):out.index("Upcoming appointments")]
    ana_lines = entry(section, ana.id)
    assert "charge" in ana_lines and "NOK\u00a0900.00" in ana_lines and "ana@example.com" in ana_lines
    assert "since 2026-11-26 12:00" in ana_lines
    assert "could not ask stripe what became of it" in ana_lines.lower()
    assert "asked again each tick" in ana_lines and "sick child" in ana_lines
    bo_lines = entry(section, bo.id)
    assert "bo@example.com" in bo_lines and "NOK\u00a0900.00" in bo_lines and "since 2026-11-26 12:00" in bo_lines
    assert "503" in bo_lines and "same idempotency key" in bo_lines and "a waiver waits for the answer" in bo_lines

    data = json.loads(main_process(practice, "status", "--json", "--now", NOW).stdout)
    unresolved = {entry["id"]: entry for entry in data["unresolved_money"]}
    assert set(unresolved) == {ana.id, bo.id}
    first = unresolved[ana.id]
    assert (first["kind"], first["state"], first["client"], first["amount"]) == ("charge", "executing", "ana@example.com",
                                                                               {"minor": 90000, "currency": "NOK"})
    assert first["since"] == "2026-11-26T11:00:00Z" and first["waiver_waits"].endswith("sick child")
    assert "could not ask stripe" in first["why"].lower() and "asked again each tick" in first["next"]
    second = unresolved[bo.id]
    assert (second["state"], second["outcome_unknown"], second["waiver_waits"]) == ("planned", True, None)
    assert "same idempotency key" in second["next"]


def test_status_says_nothing_of_it_when_every_outcome_is_known(practice):
    ran = main_process(practice, "run", "--once", "--now", NOW)
    assert ran.returncode == 0, ran.stderr
    assert HEADING not in main_process(practice, "status", "--now", NOW).stdout
    assert json.loads(main_process(practice, "status", "--json", "--now", NOW).stdout)["unresolved_money"] == []
