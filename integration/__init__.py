"""Adapters: the only code that talks to the outside world (calendars, payments, mail, files)."""
