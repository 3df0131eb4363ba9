"""`main.py reconcile --repair`: money Stripe kept for a fee the ledger calls waived.

A ledger written before interrupted charges were resolved at start-up can hold a fee that
is `waived` while Stripe took its money (the daemon was killed after the charge, the fee was
waived before the restart looked). `reconcile` lists it; `reconcile --repair` plans the
refund, once however often it runs, and the next `run` gives the money back. While a
daemon holds the data folder's lock, `--repair` is refused (plain `reconcile` only reads).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from slotguard.domain.model import ActionKind, ActionState
from slotguard.store.ledger import Ledger
from tests.support.stripe_fixtures import *  # noqa: F401,F403 - localstripe, proxy, admin client
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY, intents_for_action, refunds_for
from tests.support.stripe_practice import NOW, ROOT, command, main_process, process_env, write_practice

EVERYTHING = ("--from", "2000-01-01", "--to", "2100-12-31")


@pytest.fixture
def practice(tmp_path, stripe_proxy, stripe_client_with_card, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    return write_practice(tmp_path, stripe_proxy.base_url)


def ledger_of(practice) -> Ledger:
    return Ledger(practice.parent / "var" / "ledger.sqlite3")


def kept_money_for_a_waived_fee(practice, stripe_admin):
    """What an earlier Slotguard left: a charge interrupted after Stripe took the money, then
    the fee waived in the ledger. Returns (the fee, its PaymentIntent)."""
    crashed = main_process(practice, "run", "--once", "--now", NOW, SLOTGUARD_CRASH_AT="after_call:charge")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    ledger = ledger_of(practice)
    [fee] = ledger.actions(kinds=[ActionKind.CHARGE])
    [intent] = intents_for_action(stripe_admin, fee.id)
    assert intent["status"] == "succeeded"
    fee.state, fee.reason = ActionState.WAIVED, f"{fee.reason}; waived: family emergency"
    ledger.update_action(fee, fee.updated_at, "waived: family emergency")
    ledger.close()
    return fee, intent


def test_repair_refunds_money_kept_for_a_waived_fee_once(practice, stripe_admin, capsys):
    fee, intent = kept_money_for_a_waived_fee(practice, stripe_admin)

    assert command(practice, "reconcile", *EVERYTHING) == 1
    listed = capsys.readouterr().out
    assert fee.id in listed and "--repair" in listed

    assert command(practice, "reconcile", "--repair", "--now", NOW, *EVERYTHING) == 1
    repaired = capsys.readouterr().out
    ledger = ledger_of(practice)
    [refund] = ledger.actions(kinds=[ActionKind.REFUND])
    assert refund.id in repaired and "900.00 NOK" in repaired
    assert (refund.state, refund.amount.minor) == (ActionState.PLANNED, 90000)
    assert ledger.action(fee.id).state is ActionState.DONE
    ledger.close()

    assert command(practice, "reconcile", "--repair", "--now", NOW, *EVERYTHING) == 0, "planned, not yet carried out: agreed"
    assert "planned" not in capsys.readouterr().out
    ran = main_process(practice, "run", "--once", "--now", NOW)
    assert ran.returncode == 0, ran.stderr

    [given_back] = refunds_for(stripe_admin, intent["id"])
    assert (given_back["amount"], given_back["metadata"]["slotguard_action_id"]) == (90000, refund.id)
    assert command(practice, "reconcile", *EVERYTHING) == 0, capsys.readouterr().out
    ledger = ledger_of(practice)
    assert len(ledger.actions(kinds=[ActionKind.REFUND])) == 1
    assert ledger.action(refund.id).state is ActionState.DONE
    ledger.close()


def test_repair_is_refused_while_a_daemon_runs_and_plain_reconcile_still_reads(practice, stripe_admin, tmp_path):
    fee, _ = kept_money_for_a_waived_fee(practice, stripe_admin)
    data_dir = practice.parent / "var"
    daemon = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", "--config", str(practice)], cwd=practice.parent,
                              env=process_env(), stdout=subprocess.PIPE, stderr=(tmp_path / "daemon.log").open("w"), text=True)
    try:
        deadline = time.monotonic() + 60
        lock = data_dir / "slotguard.lock"
        while not (lock.exists() and lock.read_text().strip() == str(daemon.pid)):
            assert daemon.poll() is None and time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()
            time.sleep(0.1)

        refused = main_process(practice, "reconcile", "--repair", "--now", NOW, *EVERYTHING)
        assert refused.returncode == 1
        assert refused.stderr.strip() == f"error: another Slotguard is running on {data_dir} (pid {daemon.pid}); stop it first"
        assert "repair" not in refused.stdout
        ledger = ledger_of(practice)
        assert ledger.actions(kinds=[ActionKind.REFUND]) == [], "nothing planned beside the daemon"
        assert ledger.action(fee.id).state is ActionState.WAIVED
        ledger.close()

        # Comparing only reads: it works beside the daemon, and lists what --repair would fix.
        compared = main_process(practice, "reconcile", *EVERYTHING)
        assert compared.returncode == 1 and fee.id in compared.stdout and "--repair" in compared.stdout, compared.stderr
        assert "another Slotguard" not in compared.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0 and "Slotguard stopped cleanly" in out

    # The daemon gone, the repair goes ahead.
    repaired = main_process(practice, "reconcile", "--repair", "--now", NOW, *EVERYTHING)
    assert repaired.returncode == 1 and "repair: " + fee.id in repaired.stdout, repaired.stderr
    ledger = ledger_of(practice)
    [refund] = ledger.actions(kinds=[ActionKind.REFUND])
    assert (refund.state, refund.amount.minor) == (ActionState.PLANNED, 90000)
    ledger.close()
