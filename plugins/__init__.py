"""Slotguard's built-in policies. Each module is a pluggy plugin, registered exactly like a
third-party one (see slotguard/policies/loading.py and docs/plugins.md)."""
