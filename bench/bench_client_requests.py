"""What `client export` and `client forget` cost on a big ledger.

Builds a SQLite ledger (in a temporary folder) of --clients clients with --per-client
actions each (a fee and its emails, with reasons, contexts and log rows such as a year of a
busy practice writes), plus a digest email per day naming several clients and an outbox
folder with one .eml per digest, then prints the wall time of: finding one client, their
export, and their erasure (ledger transaction, VACUUM, outbox cleaning), and the ledger's
size before and after.

Numbers only; nothing is asserted. Run: .venv/bin/python bench/bench_client_requests.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from integration.outbox_dir import OutboxDirMailer  # noqa: E402
from slotguard.domain.model import Action, ActionKind, ActionState  # noqa: E402
from slotguard.domain.money import Money  # noqa: E402
from slotguard.privacy.client_export import export_client  # noqa: E402
from slotguard.privacy.client_files import clean_files  # noqa: E402
from slotguard.privacy.client_forget import compact, erase_client, secure_delete  # noqa: E402
from slotguard.privacy.client_records import find_client  # noqa: E402
from slotguard.privacy.pseudonyms import new_pseudonym  # noqa: E402
from slotguard.store.ledger import Ledger  # noqa: E402
from tests.support.builders import settings  # noqa: E402

START = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


def build(folder: Path, clients: int, per_client: int) -> tuple[Ledger, object]:
    practice = settings(storage={"data_dir": str(folder)}, mail={"outbox_dir": str(folder / "outbox")})
    ledger = Ledger(practice.storage.location)
    outbox = OutboxDirMailer(folder / "outbox")
    with ledger.transaction():
        for client in range(clients):
            address, name = f"client{client}@example.com", f"Client Number{client}"
            for number in range(per_client):
                at = START + timedelta(hours=client * 7 + number * 13)
                kind = ActionKind.CHARGE if number % 4 == 0 else ActionKind.EMAIL
                action = Action(id=f"act_{client}_{number}", kind=kind, state=ActionState.DONE, policy="no_show",
                                reason=f"no_show proposed 900.00 NOK for {name}", calendar_id="primary", event_id=f"e{client}_{number}",
                                client_email=address, client_name=name, happening_key=f"primary/e{client}_{number}/no_show",
                                due_at=at, created_at=at, updated_at=at, amount=Money(90000, "NOK") if kind is ActionKind.CHARGE else None,
                                template=None if kind is ActionKind.CHARGE else "no_show_followup", executed_at=at,
                                context={"payment_status": "paid"} if kind is ActionKind.CHARGE else {"details": {"name": name}})
                ledger.add_action(action, note="done")
        for day in range(365):
            at = START + timedelta(days=day)
            named = [f"Client Number{(day * 5 + offset) % clients} (client{(day * 5 + offset) % clients}@example.com)" for offset in range(5)]
            digest = Action(id=f"act_digest_{day}", kind=ActionKind.EMAIL, state=ActionState.DONE, policy="digest", reason="daily digest",
                            calendar_id="primary", event_id="", client_email="lena@example.com", client_name="Lena", happening_key=f"digest/{day}",
                            due_at=at, created_at=at, updated_at=at, template="practitioner_digest", executed_at=at, context={"lines": named})
            ledger.add_action(digest)
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "lena@example.com", "lena@example.com", f"Digest {day}"
            message.set_content("\n".join(named))
            outbox.send(message, digest.id)
    return ledger, practice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--per-client", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        began = time.perf_counter()
        ledger, practice = build(folder, args.clients, args.per_client)
        size = Path(practice.storage.location).stat().st_size
        print(f"ledger: {args.clients * args.per_client + 365} actions, {size / 1e6:.1f} MB, built in {time.perf_counter() - began:.1f}s")
        address = f"client{args.clients // 2}@example.com"
        began = time.perf_counter()
        client = find_client(ledger, address.upper(), practice)
        print(f"find one client: {(time.perf_counter() - began) * 1000:.0f} ms")
        began = time.perf_counter()
        data = export_client(practice, ledger, client, START + timedelta(days=400))
        print(f"export: {(time.perf_counter() - began) * 1000:.0f} ms ({len(data['money'])} money records, {len(data['emails'])} emails)")
        pseudonym = new_pseudonym()
        began = time.perf_counter()
        files = clean_files(practice, client, pseudonym)
        files_seconds = time.perf_counter() - began
        began = time.perf_counter()
        secure_delete(ledger)
        counts = erase_client(ledger, client, pseudonym, START + timedelta(days=400), "bench", files.counts())
        erase_seconds = time.perf_counter() - began
        began = time.perf_counter()
        trouble = compact(ledger)
        print(f"forget: files {files_seconds:.2f}s ({len(files.rewritten)} digests cleaned), ledger {erase_seconds:.2f}s, "
              f"VACUUM {time.perf_counter() - began:.2f}s{' (' + trouble + ')' if trouble else ''}; counts {counts}")
        print(f"ledger after: {Path(practice.storage.location).stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
