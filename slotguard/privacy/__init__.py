"""A client's data under the GDPR: what the ledger keeps and for how long, a client's export and erasure."""
