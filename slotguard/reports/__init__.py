"""The practice at a glance: monthly figures, charts (PNG for email, SVG for HTML), the accountant's export."""
