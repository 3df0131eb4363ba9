"""What every calendar source gives the shared contract suite (tests/contract/test_contract.py)
and the source bench (bench/bench_sources.py): a `SourceHarness` drives the source's own local
server or wire fake the way a practitioner and a client would, and the suite runs the real
engine over it.

A source takes part by adding one module, tests/contract/harness_NAME.py, with
`open_harness(tmp_path) -> SourceHarness` (a harness ready to use; `close()` ends it) and,
when the source needs something that may be missing (a server program), `missing() -> str`
(why it cannot run; "" when it can). `harness_modules()` finds them all: nothing else needs
to change for a new source. A harness may also have `create_many(bookings) -> ids` (the bench,
bench/bench_sources.py, then puts its 2,000 appointments in at once; else one by one).

Event ids: every method taking an `event_id` takes the id the harness returned when it
created the event, which is the id the engine sees (for a series instance: the instance's).

The faults: `fail(kind, after=0)` makes the source's requests fail from the (after+1)-th on,
until `heal()`: "server_error" (an HTTP 5xx), "timeout" (no answer within the adapter's
timeout), "half_read" (an answer cut off partway: with `after=1`, the second page of a
listing). tests/contract/wire.py does this for any source spoken over HTTP.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from slotguard.config.schema import Settings
from slotguard.domain.interfaces import CalendarSource, CalendarWriteBack

MARKS = ("no_show", "late_cancel", "waive")


@dataclass(frozen=True)
class Booking:
    """An appointment as the practitioner puts it in the calendar: they organise it and
    invite the client."""

    title: str
    client_email: str
    client_name: str
    start: datetime
    end: datetime
    description: str = ""


@dataclass(frozen=True)
class StoredEvent:
    """An event as the server stores it: `own` is what Slotguard writes back (its private
    state, by the source's names; empty when it wrote nothing), `rest` everything else the
    server keeps about the event (minus what the server itself bumps on every write: etag,
    modification stamps, sequence), comparable with ==."""

    own: dict[str, str]
    rest: Any


class SourceHarness(Protocol):
    """One calendar source under test, driven through its local server or wire fake."""

    name: str  # the calendar.source value
    writes_back: bool  # False for a read-only source (ics)
    last_edit: StoredEvent | None  # the event right after edit_before_next_write's edit was made
    # Tests of the suite this source is known to fail, by test function name, and why: they
    # run as strict xfails (one that starts passing fails, so the entry is removed).
    known_gaps: dict[str, str]

    def calendar_table(self) -> dict[str, Any]:
        """The practice config's [calendar] table reading this source (its endpoints, its
        calendar, and the marks it uses natively under [calendar.marks])."""
        ...

    def open_calendars(self, settings: Settings) -> list[tuple[CalendarSource, CalendarWriteBack]]:
        """The source's own (source, write-back) pairs for `settings`, as the daemon opens
        them, with retries and timeouts short enough for a test (a fault ends a tick in
        about a second, not thirty)."""
        ...

    def create(self, booking: Booking) -> str:
        """Put `booking` in the calendar; return its event id."""
        ...

    def mark(self, event_id: str, mark: str) -> None:
        """Mark the event the source's native way (one of MARKS): the practitioner's colour,
        category or tag."""
        ...

    def move(self, event_id: str, start: datetime, end: datetime) -> None:
        """The practitioner moves the event."""
        ...

    def cancel(self, event_id: str) -> None:
        """The practitioner cancels the event (it stays, cancelled, where the source keeps
        cancelled events; Google: status cancelled)."""
        ...

    def delete(self, event_id: str) -> None:
        """The practitioner deletes the event."""
        ...

    def decline(self, event_id: str) -> None:
        """The client declines the invitation (their answer reaches the practitioner's copy)."""
        ...

    def create_series(self, booking: Booking, count: int, *, moved: tuple[int, datetime], cancelled: int) -> list[str]:
        """A weekly series of `count` from `booking`, its instance number moved[0] moved to
        start at moved[1] (same length) and instance number `cancelled` cancelled; return
        the ids of all `count` instances, in order (the cancelled one's too)."""
        ...

    def expire_sync_token(self) -> None:
        """Make the server refuse the sync token it gave last (the next read must be full)."""
        ...

    def fail(self, kind: str, *, after: int = 0) -> None:
        """Requests after the next `after` fail with `kind` until heal() (see the module doc)."""
        ...

    def heal(self) -> None:
        ...

    def small_pages(self) -> None:
        """Make listings come in pages of a few events (to see a read fail between pages);
        a source that reads in one request does nothing."""
        ...

    def edit_before_next_write(self, event_id: str) -> None:
        """Just before Slotguard's next write of this event reaches the server, the
        practitioner edits the event (changes its location): a concurrent edit. Right after
        the edit, `last_edit` is set to `stored(event_id)`."""
        ...

    def stored(self, event_id: str) -> StoredEvent:
        """The event as the server stores it now."""
        ...

    def request_count(self) -> int:
        """Requests the adapter made since the last reset_requests()."""
        ...

    def bytes_moved(self) -> int:
        """Bytes of those requests and their answers (headers included)."""
        ...

    def reset_requests(self) -> None:
        ...

    def close(self) -> None:
        ...


def harness_modules() -> list[ModuleType]:
    """Every tests/contract/harness_NAME.py module, by name."""
    here = Path(__file__).parent
    names = sorted(info.name for info in pkgutil.iter_modules([str(here)]) if info.name.startswith("harness_"))
    return [importlib.import_module(f"tests.contract.{name}") for name in names]


def source_names() -> list[str]:
    return [module.__name__.rsplit("harness_", 1)[1] for module in harness_modules()]


def module_for(name: str) -> ModuleType:
    return importlib.import_module(f"tests.contract.harness_{name}")


def missing(name: str) -> str:
    """Why the source `name` cannot be tested here ("" when it can)."""
    check = getattr(module_for(name), "missing", None)
    return check() if check else ""


def open_harness(name: str, tmp_path: Path) -> SourceHarness:
    return module_for(name).open_harness(tmp_path)
