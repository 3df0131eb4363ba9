"""Unpaid fees: the polite ladder, payment plans, settlement and write-off."""
