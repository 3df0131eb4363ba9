"""small_amount_writeoff: a fee below `below` is not worth chasing: it is recorded as written
off instead of charged.

It looks at what is left to charge after the other modifiers and after a deposit or package
credit paid what it could ("no_show proposed 900.00 NOK ...; deposit: 850.00 NOK of it paid
from the deposit" leaves 50.00 NOK, which is written off). The `writeoff` action keeps the
amount, so the ledger shows what was let go.

Emails: none of its own; the fee notice reports on the write-off and gets
`details.written_off` = true (the client is not asked to pay).
"""

from __future__ import annotations

from pydantic import Field

from slotguard.kit import ActionKind, PolicyConfig, PolicyInfo, PositiveAmount, derive, hookimpl, is_unpaid_fee

NAME = "small_amount_writeoff"


class SmallAmountWriteoffConfig(PolicyConfig):
    below: PositiveAmount = Field(description="Fees smaller than this are written off instead of charged.", examples=["100 NOK"])


@hookimpl
def slotguard_policy_info():
    return PolicyInfo(
        name=NAME,
        role="modifier",
        config_model=SmallAmountWriteoffConfig,
        summary="Fees below a threshold are recorded as written off instead of charged.",
    )


@hookimpl
def slotguard_settle(proposals, config):
    small = {p.slot for p in proposals if is_unpaid_fee(p) and p.amount < config.below}
    if not small:
        return None
    return [
        derive(p, kind=ActionKind.WRITEOFF, because=f"{NAME} wrote it off: below {config.below}, not worth chasing")
        if p.slot in small and is_unpaid_fee(p)
        else derive(p, context={"written_off": True}) if p.kind is ActionKind.EMAIL and p.reports_on in small
        else p
        for p in proposals
    ]
