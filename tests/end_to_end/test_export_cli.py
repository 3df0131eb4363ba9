"""`main.py export` as a separate process on the example practice: the week's fee and the
payment recorded for it come out as CSV rows matching the ledger, the file is 0600, an
existing file is kept, bad periods and a missing ledger are refused."""

from __future__ import annotations

import csv
import io
import json
import shutil
import stat

import pytest

from tests.support.cli import NOW, ROOT, main

pytestmark = pytest.mark.timeout(300)
LATER = "2026-11-28T12:00:00+01:00"  # the review windows have ended: the week's fees are asked
PAID = "2026-11-29T09:00:00+01:00"


@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    folder = tmp_path_factory.mktemp("practice")
    shutil.copytree(ROOT / "config", folder / "config")
    main(folder, "run", "--once", "--now", NOW)
    main(folder, "run", "--once", "--now", LATER)
    return folder


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_lists_each_fee_asked_and_the_payment_recorded(practice):
    actions = json.loads(main(practice, "ledger", "--json").stdout)["actions"]
    fees = [a for a in actions if a["kind"] == "charge" and a["state"] == "done"]
    assert fees, "the example week asks for at least one fee by Saturday"
    fee = fees[0]
    main(practice, "mark-paid", fee["id"], "--note", "=1+1 paid in cash", "--now", PAID)
    rows = rows_of(main(practice, "export", "--from", "2026-11-01", "--to", "2026-11-30").stdout)
    asked = [row for row in rows if row["type"] == "fee"]
    assert sorted(row["ledger_id"] for row in asked) == sorted(a["id"] for a in fees)
    for row in asked:
        minor = next(a["amount"]["minor"] for a in fees if a["id"] == row["ledger_id"])
        assert row["amount"] == f"{minor // 100}.{minor % 100:02d}" and row["currency"] == "NOK"
    [payment] = [row for row in rows if row["type"] == "payment"]
    assert (payment["date"], payment["time"], payment["fee_id"]) == ("2026-11-29", "09:00", fee["id"])
    assert payment["amount"] == f"{fee['amount']['minor'] // 100}.{fee['amount']['minor'] % 100:02d}"
    assert "=1+1 paid in cash" in payment["note"] and not payment["note"].startswith("=")
    assert rows_of(main(practice, "export", "--from", "2026-12-01", "--to", "2026-12-31").stdout) == []


def test_export_out_is_private_and_keeps_an_existing_file(practice):
    out = practice / "accounts.csv"
    result = main(practice, "export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "csv", "--out", str(out))
    assert f"wrote {out}" in result.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600, "it names clients: readable only by the practitioner"
    assert out.read_text("utf-8").startswith("date,time,type,client_email,client_name,amount,currency")
    again = main(practice, "export", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(out), check=False)
    assert again.returncode == 1 and "exists; add --force" in again.stderr
    main(practice, "export", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(out), "--force")


def test_export_refuses_a_bad_period_and_a_missing_ledger(practice, tmp_path):
    result = main(practice, "export", "--from", "2026-11-30", "--to", "2026-11-01", check=False)
    assert result.returncode == 2 and "--from must be before --to" in result.stderr
    result = main(practice, "export", "--from", "yesterday", "--to", "2026-11-01", check=False)
    assert result.returncode == 2 and "export:" in result.stderr
    result = main(practice, "export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "xlsx", check=False)
    assert result.returncode == 2 and "invalid choice" in result.stderr
    shutil.copytree(ROOT / "config", tmp_path / "config")
    result = main(tmp_path, "export", "--from", "2026-11-01", "--to", "2026-11-30", check=False)
    assert result.returncode == 2 and "no ledger at" in result.stderr
    assert not (tmp_path / "var" / "ledger.sqlite3").exists()
