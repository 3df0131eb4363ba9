"""What a payment provider's answers mean for the ledger: results, polling, recovery of unknown outcomes."""
