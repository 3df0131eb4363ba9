"""The ledger (the one writer of what Slotguard knows and did), its errors, private files and the daemon lock."""
