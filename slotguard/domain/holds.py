"""How long a card hold lasts: the facts a deposit policy and the hold renewals share.

A hold (money reserved on the card, captured later) lapses when the card network's
authorisation window ends; slotguard/planning/holds.py places a hold again before that.
Plain constants, so that a policy can read them without importing the planning code.
"""

from __future__ import annotations

from datetime import timedelta

HOLD_VALIDITY = timedelta(days=4, hours=18)  # Visa, merchant-initiated: the shortest window
RENEW_MARGIN = timedelta(hours=6)  # to spare before a hold lapses: a late tick, a few hours of Stripe outage
HOLD_BEFORE = "hold_before_seconds"  # context of a deposit hold: how long before the start it is placed
