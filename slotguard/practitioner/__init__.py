"""What the practitioner reads: the daily digest, the status note on each event, evidence packs."""
