"""The inbox: commands by email from the practitioner and clients (docs/inbox.md)."""
