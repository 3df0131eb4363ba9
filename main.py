#!/usr/bin/env python3
"""Slotguard's command line. Run `python main.py --help` for the commands."""

import sys

from slotguard.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
