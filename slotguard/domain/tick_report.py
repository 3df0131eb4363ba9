"""What one tick did: counts of what was read, planned and carried out, and the problems
met on the way, for the summary `run --once` prints and the daemon's log line.

Every step of the loop reports into one TickReport; none of them needs the engine for it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from slotguard.domain.untrusted import without_clients

log = logging.getLogger("slotguard.engine")


def for_log(message: str) -> str:
    """A problem as the log says it: every email address and every text quoted from a
    calendar (a title) taken out (docs/privacy.md, "Log lines"); action and event ids stay."""
    return without_clients(message)


@dataclass
class TickReport:
    """What one tick did, for the summary line and `run --once`."""

    events_seen: int = 0
    happenings: Counter = field(default_factory=Counter)
    planned: Counter = field(default_factory=Counter)
    executed: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def problem(self, message: str) -> None:
        """Keep `message` as written, for `run --once` and the commands that print it; log it
        without addresses or calendar text (`for_log`): ids, times and amounts say which."""
        self.problems.append(message)
        log.warning("problem %s", for_log(message))

    def summary(self) -> str:
        def fmt(counter: Counter) -> str:
            return ", ".join(f"{key} {value}" for key, value in sorted(counter.items())) or "none"

        lines = [
            f"events read: {self.events_seen}",
            f"happenings: {fmt(self.happenings)}",
            f"actions planned: {fmt(self.planned)}",
            f"actions carried out: {fmt(self.executed)}",
        ]
        if self.problems:
            lines.append(f"problems ({len(self.problems)}):")
            lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)
