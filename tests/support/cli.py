"""Running `main.py` as a separate process, as the end-to-end tests do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-26T12:00:00+01:00"  # Thursday noon of the bundled sample week


def main(cwd, *args, check=True):
    """Run `python main.py ARGS` in `cwd`; raise with its output when `check` and it fails."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result
