#!/usr/bin/env python3
"""How long normalize takes on descriptions built to be slow (issue 11, item 12).

The old reader (one MULTILINE regex with `^\\s*KEY\\s*:` over the whole description) was
quadratic in runs of blank lines: 40,000 of them took about a minute. normalize now reads
the lines in one pass over at most DESCRIPTION_LIMIT characters. This prints, for each
hostile description, the seconds normalize takes, beside an ordinary event for scale.
An HTML description (Google's web editor) is read as text first, also in one pass
(slotguard/domain/untrusted.py, description_text). Only numbers are printed; nothing is asserted
(tests/unit/intake/test_normalize_trust.py checks what is read, with a timeout against a hang).

Usage: .venv/bin/python bench/bench_normalize.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slotguard.intake.normalize import DESCRIPTION_LIMIT, EventError, normalize  # noqa: E402
from tests.support.builders import event, settings  # noqa: E402

OSLO = ZoneInfo("Europe/Oslo")
START = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
NOW = datetime(2026, 3, 4, 14, 0, tzinfo=OSLO)

DESCRIPTIONS = {
    "ordinary (3 lines)": "Regular client\nprice: 1200 NOK\nlang: de",
    "40,000 blank lines": "price: 1200 NOK\nnotes:" + "\n" * 40_000 + "end",
    "40,000 ' \\n' lines": "price: 1200 NOK\n" + " \n" * 40_000 + "end",
    "1 MB of spaces then a line": " " * 1_000_000 + "\nprice: 1200 NOK",
    "10,000 'price:' lines": "price: 900 NOK\n" * 10_000,
    "one 1 MB price line": "price: " + "9" * 1_000_000,
    "50,000 '<br>' with spaces": "<br" + " " * 50_000 + "Slotguard: x",
    "10,000 unclosed '<b' tags": "<b" * 10_000 + "<br>price: 1200 NOK",
    "5,000 unclosed '<!--'": "<!--" * 5_000 + "<br>price: 1200 NOK",
    "HTML, 1,000 '<p>' lines": "<p>lang: de&nbsp;</p>" * 1_000 + "<p>price: 1200 NOK</p>",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per description; the best is printed")
    args = parser.parse_args()
    config = settings()
    print(f"description read up to {DESCRIPTION_LIMIT:,} characters; best of {args.repeat} runs")
    for name, description in DESCRIPTIONS.items():
        resource = event("e1", START, description=description, color="11")
        best = float("inf")
        for _ in range(args.repeat):
            began = time.perf_counter()
            try:
                normalize(resource, "primary", config, NOW)
            except EventError:
                pass
            best = min(best, time.perf_counter() - began)
        print(f"{name:32} {best * 1000:9.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
