"""Where a money action stands with the client: the `payment_status` in its context.

A `StrEnum`, so each value is the very string the ledger stores (the JSON context and the
ledger's LIKE queries are unchanged) and compares equal to it.
"""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    PAID = "paid"  # the money is ours (charged, captured, or a fund's credit)
    UNPAID = "unpaid"  # carried out, the client has a payment link still to pay
    RECEIVABLE = "receivable"  # record-only provider: owed to the practitioner directly
    WAIVED = "waived"  # a fee waived before the client paid it
    NOTHING_TAKEN = "nothing_taken"  # a refund of a fee never paid: the request withdrawn
    REFUNDED_ELSEWHERE = "refunded_elsewhere"  # a refund that found everything refunded in the Stripe dashboard
    SETTLED = "settled"  # a debt closed by a settlement (collections)
    WRITTEN_OFF = "written_off"  # a debt collections wrote off
    SUPERSEDED = "superseded"  # a payment request collections replaced by a newer one


# A charge carried out that the client has not paid yet: a payment link, or (record-only)
# money owed to the practitioner directly.
OWED = (PaymentStatus.UNPAID, PaymentStatus.RECEIVABLE)
