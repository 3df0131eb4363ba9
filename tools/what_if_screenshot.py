#!/usr/bin/env python3
"""Take docs/what-if.png: the what-if page of the example practice on a phone.

Runs the example week (`main.py run --once` in a scratch folder), writes the page with
`simulate --out`, and photographs it at a phone's width with the test suite's headless
Chromium (tests/support/browser.py). Usage: python tools/what_if_screenshot.py [OUT.png]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.browser import PHONE, Browser  # noqa: E402 (after the path: the script runs from anywhere)
from tests.support.cli import NOW  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "what-if.png"
    with tempfile.TemporaryDirectory() as folder:
        shutil.copytree(ROOT / "config", Path(folder) / "config")
        command = [sys.executable, str(ROOT / "main.py")]
        subprocess.run([*command, "run", "--once", "--now", NOW], cwd=folder, check=True, capture_output=True)
        page = Path(folder) / "what-if.html"
        subprocess.run(
            [*command, "simulate", "--from", "2026-11-16", "--to", "2026-11-29",
             "--policies", "late_cancel,no_show,first_offense_grace", "--out", str(page)],
            cwd=folder, check=True, capture_output=True,
        )
        browser = Browser()
        try:
            with browser.open(page, width=PHONE) as opened:
                opened.screenshot(out)
        finally:
            browser.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
