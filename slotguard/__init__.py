"""Slotguard: no-show and late-cancellation fees for a practitioner's own calendar.

The loop, one sub-package a stage (docs/architecture.md):
  intake -> planning -> store -> run (executors) -> payments / mail / practitioner,
with domain (plain data and the adapter interfaces), config, policies (the plugin host),
collections (unpaid fees), what_if (replay and simulate) and cli around it."""
