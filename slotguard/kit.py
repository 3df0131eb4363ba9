"""Everything a policy plugin may use, from one module: `from slotguard.kit import ...`.

A policy (built-in in `plugins/` or installed through the `slotguard.policies` entry point
group) imports from here, the standard library and pydantic, and from nothing else in
Slotguard: what is here is the promise to plugin authors; the rest may move
(docs/plugins.md).

- Declaring a policy: `hookimpl`, `PolicyInfo`, `PolicyConfig`; `Undo` (what
  `slotguard_undo` returns).
- Settings types for a policy's config (TOML text in, typed values out): `Money`, `Fee`,
  `FeeRule`, `Percent`, `Duration`, `PositiveDuration`, `PositiveAmount`.
- The data a hook gets and returns: `Proposal`, `ActionKind`, `ActionState`, `HappeningKind`,
  `ClientHistory`, `PaymentStatus`; the client's account: `ClientAccount`, `AccountEntry`, `fee_incidents`;
  what a proposal is for (`purpose_of`, FEE, DEPOSIT, ...) and the planner's context keys.
- Building proposals: `derive`, `is_fee`, `money_json`, `reporting_email` (a money proposal's
  email), `refund_notice`; money paid ahead: `Fund`, `settle_funds`, `give_back`,
  `is_unpaid_fee`; card holds: `HOLD_BEFORE`, `HOLD_VALIDITY`, `RENEW_MARGIN`.
- Words: `format_duration`, `from_utc_text`, `to_utc_text`, `local_text`, `ordinal`.
"""

from __future__ import annotations

from slotguard.config.schema import Percent
from slotguard.config.types import Duration, FeeRule, PositiveAmount, PositiveDuration
from slotguard.domain.durations import format_duration, from_utc_text, to_utc_text
from slotguard.domain.holds import HOLD_BEFORE, HOLD_VALIDITY, RENEW_MARGIN
from slotguard.domain.model import CLIENT_PAYS, ActionKind, ActionState, ClientHistory, HappeningKind, Proposal, Undo
from slotguard.domain.money import Fee, Money, MoneyError
from slotguard.domain.payment_status import OWED, PaymentStatus
from slotguard.policies.account import (
    CREDIT,
    DEPOSIT,
    DEPOSIT_APPLIED,
    DEPOSIT_RETURN,
    FEE,
    HOLD_RENEWED,
    INCIDENT,
    PACKAGE_CREDIT,
    PREPAYMENT,
    REFUND,
    RENEWS,
    REPLACES_NOTICES,
    SETTLES,
    SUPERSEDES,
    TARGET,
    AccountEntry,
    ClientAccount,
    derive,
    fee_incidents,
    is_fee,
    money_json,
    purpose_of,
)
from slotguard.policies.builders import local_text, ordinal, refund_notice, reporting_email
from slotguard.policies.funds import Fund, give_back, is_unpaid_fee, settle_funds
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.info import PolicyConfig, PolicyInfo

__all__ = [
    "CLIENT_PAYS",
    "CREDIT",
    "DEPOSIT",
    "DEPOSIT_APPLIED",
    "DEPOSIT_RETURN",
    "FEE",
    "HOLD_BEFORE",
    "HOLD_RENEWED",
    "HOLD_VALIDITY",
    "INCIDENT",
    "OWED",
    "PACKAGE_CREDIT",
    "PREPAYMENT",
    "REFUND",
    "RENEWS",
    "RENEW_MARGIN",
    "REPLACES_NOTICES",
    "SETTLES",
    "SUPERSEDES",
    "TARGET",
    "AccountEntry",
    "ActionKind",
    "ActionState",
    "ClientAccount",
    "ClientHistory",
    "Duration",
    "Fee",
    "FeeRule",
    "Fund",
    "HappeningKind",
    "Money",
    "MoneyError",
    "Percent",
    "PolicyConfig",
    "PolicyInfo",
    "PaymentStatus",
    "PositiveAmount",
    "PositiveDuration",
    "Proposal",
    "derive",
    "fee_incidents",
    "format_duration",
    "from_utc_text",
    "give_back",
    "hookimpl",
    "is_fee",
    "is_unpaid_fee",
    "local_text",
    "money_json",
    "ordinal",
    "purpose_of",
    "refund_notice",
    "reporting_email",
    "settle_funds",
    "to_utc_text",
    "Undo",
]
