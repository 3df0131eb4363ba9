"""The payments commands on a real config (as separate processes where the process
matters): check-config tries the Stripe key, webhook-server applies signed events to the
ledger and stops cleanly, and reconcile exits 1 on a mismatch with a JSON report."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from integration.stripe_webhooks import sign
from slotguard.cli.main import load_settings
from slotguard.cli.payments import check_payments
from slotguard.config.schema import ConfigError
from slotguard.domain.model import ActionState
from slotguard.store.ledger import Ledger
from tests.support.stripe_fixtures import *  # noqa: F401,F403 - localstripe, proxy, admin client
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY, make_action
from tests.support.stripe_practice import ROOT, WEBHOOK_ENV, command, main_process, process_env, write_practice

SECRET = "whsec_test_commands"


@pytest.fixture
def practice(tmp_path, stripe_proxy):
    return write_practice(tmp_path, stripe_proxy.base_url, payments=f'webhook_secret = {{ env = "{WEBHOOK_ENV}" }}')


def test_check_config_tries_the_key_and_never_prints_it(practice, stripe_proxy, monkeypatch):
    ok = main_process(practice, "check-config", **{WEBHOOK_ENV: SECRET})
    assert ok.returncode == 0, ok.stderr
    assert "Stripe accepted the test-mode key" in ok.stdout

    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    monkeypatch.setenv(WEBHOOK_ENV, SECRET)
    stripe_proxy.inject("error", method="GET", path=r"/v1/balance", status=401, times=-1,
                        body={"error": {"type": "invalid_request_error", "message": f"Invalid API Key provided: {TEST_KEY}"}})
    with pytest.raises(ConfigError) as rejected:
        check_payments(load_settings(str(practice)))
    assert "payments.secret_key: Stripe did not accept" in str(rejected.value)
    assert TEST_KEY not in str(rejected.value)

    practice.write_text(practice.read_text().replace('review_window = "0m"', 'review_window = "0m"\nmode = "live"'))
    with pytest.raises(ConfigError, match='payments.mode: is "live"'):
        check_payments(load_settings(str(practice)))


def test_webhook_server_marks_a_link_payment_paid_once_and_stops_on_sigterm(practice):
    ledger = Ledger(practice.parent / "var" / "ledger.sqlite3")
    fee = make_action("charge", "450 NOK")
    fee.state, fee.external_id = ActionState.DONE, "pi_declined"
    fee.context.update({"payment_status": "unpaid", "provider_detail": "card_declined"})
    ledger.add_action(fee)
    server = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "webhook-server", "--config", str(practice), "--port", "0"],
                              cwd=practice.parent, env=process_env(**{WEBHOOK_ENV: SECRET}), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(server.stdout.readline()), daemon=True)
        reader.start()
        reader.join(20)
        assert line and "listening on http://127.0.0.1:" in line[0], server.stderr.read() if server.poll() is not None else line
        url = line[0].split("listening on ")[1].split()[0]
        body = json.dumps({"id": "evt_paid", "object": "event", "type": "checkout.session.completed", "data": {"object": {
            "object": "checkout.session", "mode": "payment", "status": "complete", "payment_status": "paid",
            "payment_intent": "pi_paid_by_link", "amount_total": 45000, "currency": "nok",
            "metadata": {"slotguard_action_id": fee.id, "slotguard_client": "ana@example.com"}}}}).encode()

        def post(signature: str) -> tuple[int, str]:
            request = urllib.request.Request(url, data=body, headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode()

        assert post(sign(body, "whsec_someone_else"))[0] == 400
        assert ledger.action(fee.id).context["payment_status"] == "unpaid"
        assert post(sign(body, SECRET)) == (200, "paid through Stripe (checkout.session.completed)")
        assert post(sign(body, SECRET)) == (200, "duplicate")
        stored = ledger.action(fee.id)
        assert (stored.context["payment_status"], stored.external_id) == ("paid", "pi_paid_by_link")

        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=10)
        assert server.returncode == 0 and "stopped" in out
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
        ledger.close()


def test_webhook_server_needs_the_signing_secret(practice):
    practice.write_text(practice.read_text().replace(f'webhook_secret = {{ env = "{WEBHOOK_ENV}" }}', ""))
    result = main_process(practice, "webhook-server", "--port", "0")
    assert result.returncode == 2 and "payments.webhook_secret" in result.stderr


def test_reconcile_exits_1_on_money_the_ledger_does_not_know(practice, stripe_client_with_card, stripe_admin, monkeypatch, capsys):
    customer = stripe_client_with_card("ana@example.com", name="Ana Silva")
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    everything = ("--from", "2000-01-01", "--to", "2100-12-31")
    assert command(practice, "reconcile", *everything) == 0
    assert "no mismatches" in capsys.readouterr().out

    card = stripe_admin.v1.payment_methods.list({"customer": customer, "type": "card"}).data[0].id
    stray = stripe_admin.v1.payment_intents.create({"amount": 45000, "currency": "nok", "customer": customer, "payment_method": card,
                                                    "confirm": True, "metadata": {"slotguard_action_id": "act_from_another_ledger"}})
    result = main_process(practice, "reconcile", "--json", *everything)
    assert result.returncode == 1, result.stderr
    [mismatch] = json.loads(result.stdout)["mismatches"]
    assert (mismatch["kind"], mismatch["stripe_id"]) == ("unknown_in_stripe", stray.id)
    assert command(practice, "reconcile", *everything) == 1
    assert "1 mismatch" in capsys.readouterr().out

    practice.write_text(practice.read_text().replace('provider = "stripe"', 'provider = "record-only"'))
    with pytest.raises(ConfigError, match='provider = "stripe"'):
        command(practice, "reconcile")
