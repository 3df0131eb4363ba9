"""Deterministic replay of a calendar timeline and what-if simulation of other policies."""
