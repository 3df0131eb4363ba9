"""`--now` pretends the clock reads another time; it is for demos and tests. With live Stripe
money it would charge real cards for fees still inside their review window, so `run` and
`charge-now` refuse it there (exit 2, nothing done); test mode and dry-run keep it."""

from __future__ import annotations

from tests.support.stripe_fixtures import KEY_ENV
from tests.support.stripe_practice import NOW, main_process, write_practice

LIVE_KEY = "sk_" + "live_" + "notarealkey0000000000"  # built at run time: no secret-looking text in the repository
NOBODY = "http://127.0.0.1:9"  # no Stripe is reached in these tests: the refusal comes first


def test_run_and_charge_now_refuse_now_with_live_stripe_money_and_do_nothing(tmp_path):
    config = write_practice(tmp_path, NOBODY, payments='mode = "live"')
    for argv in (("run", "--once", "--now", NOW), ("charge-now", "act_x", "--now", NOW)):
        result = main_process(config, *argv, **{KEY_ENV: LIVE_KEY})
        assert result.returncode == 2, (argv, result.stdout, result.stderr)
        assert "--now" in result.stderr and 'payments.mode = "live"' in result.stderr and "dry_run" in result.stderr, result.stderr
        assert result.stdout == ""
    assert not (tmp_path / "var/ledger.sqlite3").exists(), "nothing was read, planned or charged"


def test_now_stays_for_demos_with_live_settings_in_dry_run(tmp_path):
    config = write_practice(tmp_path, NOBODY, payments='mode = "live"\ndry_run = true')
    result = main_process(config, "run", "--once", "--now", NOW, **{KEY_ENV: LIVE_KEY})
    assert result.returncode == 0, result.stderr
    assert "no_show 1" in result.stdout
