"""What one tick did: counts of what was read, planned and carried out, and the problems
met on the way, for the summary `run --once` prints and the daemon's log line.

Every step of the loop reports into one TickReport; none of them needs the engine for it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("slotguard.engine")


@dataclass
class TickReport:
    """What one tick did, for the summary line and `run --once`."""

    events_seen: int = 0
    happenings: Counter = field(default_factory=Counter)
    planned: Counter = field(default_factory=Counter)
    executed: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def problem(self, message: str) -> None:
        self.problems.append(message)
        log.warning("problem %s", message)

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
