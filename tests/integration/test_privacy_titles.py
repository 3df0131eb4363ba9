"""What the ledger keeps of event titles, through the whole loop (real ledger: SQLite, or
PostgreSQL with SLOTGUARD_TEST_BACKEND=postgresql): only the words the enabled policies look
for, refreshed when the policies change, and never the practitioner's notes."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from integration.memory import MemoryCalendar
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from slotguard.store.schema import TABLES
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
FRIDAY_10 = datetime(2026, 3, 6, 10, 0, tzinfo=OSLO)
NOTE = "Intro call - physio after knee surgery"


def engine(tmp_path, ledger, calendar, **sections):
    return build_engine(settings(**sections), MONDAY, ledger=ledger, calendars=[(calendar, NullWriteBack())],
                        provider=RecordOnlyProvider(), mailer=OutboxDirMailer(tmp_path / "outbox"))


def everything(ledger: Ledger) -> str:
    return "\n".join(str(dict(row)) for table in TABLES for row in ledger.db.execute(f"SELECT * FROM {table}"))


def test_the_ledger_keeps_the_words_policies_look_for_and_picks_up_new_ones(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    calendar = MemoryCalendar("primary")
    ledger.record_sync("primary", None, MONDAY - timedelta(days=7))
    calendar.put(event("e1", FRIDAY_10, title=NOTE), MONDAY)
    first_words = {"prospect_second_chance": {"title_words": ["discovery"]}}
    engine(tmp_path, ledger, calendar, policies=first_words).tick(MONDAY)
    assert ledger.tracked("primary", "e1").appointment.title == ""
    assert "knee" not in everything(ledger).lower() and "intro" not in everything(ledger).lower()

    # The practitioner makes "intro" a first-meeting word: the next full listing
    # (calendar.full_resync, a day) stores it, though the event itself did not change.
    with_prospects = engine(tmp_path, ledger, calendar, policies={"enabled": ["no_show", "prospect_second_chance"]})
    with_prospects.tick(MONDAY + timedelta(hours=1))
    assert ledger.tracked("primary", "e1").appointment.title == "", "an incremental sync does not list it"
    with_prospects.tick(MONDAY + timedelta(days=1, hours=1))
    assert ledger.tracked("primary", "e1").appointment.title == "intro"
    assert "knee" not in everything(ledger).lower()
    ledger.close()
