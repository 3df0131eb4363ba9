"""Compare the ledger with Stripe for a period and list every difference.

Two directions, so that nothing falls between them:

- From Stripe: every PaymentIntent and Refund created in the period. One tagged with
  `metadata.slotguard_action_id` must belong to a ledger action; one that moved money for an
  action the ledger does not have is "money in Stripe we do not know about". Objects
  without our tag were made outside Slotguard (the dashboard, another app) and are listed
  apart, not compared.
- From the ledger: every money action carried out in the period (by its `executed_at`),
  plus every action a Stripe object of the period names. Each is looked up in Stripe by its
  action id (any age), and state, amount and object id are compared.

Mismatch kinds: "unknown_in_stripe" (money moved in Stripe that the ledger does not know,
including refunds made in the dashboard on our payments, unless a ledger refund later found
them and gave back only the rest), "missing_in_stripe" (the ledger
says done, Stripe has no object), "amount" and "status" (both exist and disagree, e.g. a
fee the ledger thinks unpaid that the client paid, or two payments for one action).

Dry-run actions and receivables (fees recorded by the record-only provider) never went to
Stripe and are skipped. Reads only: nothing is created or changed in Stripe or the ledger.
A "status" mismatch where Stripe holds money for a fee the ledger waived or cancelled is
marked `repairable`: `main.py reconcile --repair` plans giving it back
(slotguard/payments/recovery.py, repair_kept_money).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from integration.stripe_calls import ACTION_TAG
from integration.stripe_provider import StripeProvider
from slotguard.domain.durations import to_utc_text
from slotguard.domain.interfaces import ActionReader
from slotguard.domain.model import MONEY_KINDS, NOTHING_TAKEN, REFUNDED_ELSEWHERE, Action, ActionKind, ActionState
from slotguard.domain.money import Money

MONEY_STATUSES = ("succeeded", "requires_capture", "processing")
LET_GO = (ActionState.WAIVED, ActionState.CANCELLED)  # a fee in these states must keep no money
# payment_status values with no Stripe object to compare: a receivable, a withdrawn request
# and a refund that found everything refunded in the dashboard already have no refund of ours.
NO_STRIPE_OBJECT = ("receivable", NOTHING_TAKEN, REFUNDED_ELSEWHERE)


@dataclass(frozen=True)
class Mismatch:
    """One difference between the ledger and Stripe, with a sentence for the practitioner."""

    kind: str
    detail: str
    action_id: str = ""
    stripe_id: str = ""
    client: str = ""
    repairable: bool = False  # money kept for a fee the ledger let go: `reconcile --repair` gives it back

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "action_id": self.action_id, "stripe_id": self.stripe_id,
                "client": self.client, "detail": self.detail, "repairable": self.repairable}


@dataclass
class Reconciliation:
    """The outcome: what was compared and every mismatch found (empty when clean)."""

    start: datetime
    end: datetime
    ledger_actions: int = 0
    payment_intents: int = 0
    refunds: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    not_from_slotguard: list[dict[str, Any]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.mismatches

    def as_json(self) -> dict[str, Any]:
        return {
            "from": to_utc_text(self.start),
            "to": to_utc_text(self.end),
            "checked": {"ledger_actions": self.ledger_actions, "payment_intents": self.payment_intents, "refunds": self.refunds},
            "clean": self.clean,
            "mismatches": [m.as_json() for m in self.mismatches],
            "not_from_slotguard": self.not_from_slotguard,
        }


def _money(minor: Any, currency: Any) -> str:
    return str(Money(int(minor), str(currency).upper())) if isinstance(minor, int) and currency else "?"


def _live(refund: dict) -> bool:
    return refund.get("status") not in ("failed", "canceled")


def _charge_of(intent: dict) -> dict:
    charge = intent.get("latest_charge")
    return charge if isinstance(charge, dict) else {}


class _Reconciler:
    def __init__(self, ledger: ActionReader, provider: StripeProvider, start: datetime, end: datetime):
        self.ledger = ledger
        self.provider = provider
        self.result = Reconciliation(start, end)
        self._seen: set[tuple[str, str, str]] = set()
        self._intents: dict[str, dict | None] = {}
        self._refunds: dict[str, list[dict]] = {}
        self._by_client: dict[str, dict[str, list[dict]]] = {}
        self._accounted: set[str] = set()  # refunds on our payments, explained or reported
        self.actions = {action.id: action for action in ledger.actions(kinds=MONEY_KINDS)}
        # Dashboard refunds a ledger refund found and accounted for (it gave back only the rest).
        self.acknowledged = {str(refund_id) for action in self.actions.values() if action.kind is ActionKind.REFUND
                             and action.state is ActionState.DONE for refund_id in action.context.get("refunded_outside") or ()}
        # Captures, releases and refunds point at the charge or hold they act on.
        self.children: dict[str, list[Action]] = {}
        by_external = {a.external_id: a.id for a in self.actions.values() if a.kind in (ActionKind.CHARGE, ActionKind.HOLD) and a.external_id}
        for action in self.actions.values():
            if action.kind in (ActionKind.CAPTURE, ActionKind.RELEASE, ActionKind.REFUND):
                target = str(action.context.get("target_action_id") or "") or by_external.get(str(action.context.get("target_external_id") or ""), "")
                if target:
                    self.children.setdefault(target, []).append(action)

    # -- bookkeeping -----------------------------------------------------------------

    def report(self, kind: str, detail: str, action: Action | None = None, stripe_id: str = "", client: str = "",
               repairable: bool = False) -> None:
        key = (kind, action.id if action else "", stripe_id)
        if key in self._seen:
            return
        self._seen.add(key)
        self.result.mismatches.append(Mismatch(kind, detail, action.id if action else "", stripe_id,
                                               client or (action.client_email if action else ""), repairable))

    def intent(self, intent_id: str) -> dict | None:
        if intent_id not in self._intents:
            self._intents[intent_id] = self.provider.payment_intent(intent_id)
        return self._intents[intent_id]

    def tagged(self, action: Action) -> list[dict]:
        """The client's PaymentIntents tagged with this action id, best first (one listing
        per client, however many of their actions are checked)."""
        key = action.client_email.strip().lower()
        if key not in self._by_client:
            index: dict[str, list[dict]] = {}
            for intent in self.provider.customer_payment_intents(key):
                index.setdefault((intent.get("metadata") or {}).get(ACTION_TAG, ""), []).append(intent)
            self._by_client[key] = index
        return self.provider.best_first(list(self._by_client[key].get(action.id, [])))

    def refunds_on(self, intent_id: str) -> list[dict]:
        if intent_id not in self._refunds:
            self._refunds[intent_id] = self.provider.refunds_on(intent_id)
        return self._refunds[intent_id]

    @staticmethod
    def skipped(action: Action) -> bool:
        return bool(action.context.get("dry_run")) or action.external_id == "dry-run" or action.context.get("payment_status") in NO_STRIPE_OBJECT

    @staticmethod
    def describe(action: Action) -> str:
        status = action.context.get("payment_status")
        return f"{action.kind.value} {action.amount or ''} {action.state.value}{f' ({status})' if status else ''}".replace("  ", " ")

    # -- the run -----------------------------------------------------------------------

    def run(self) -> Reconciliation:
        start, end = self.result.start, self.result.end
        span = (int(start.timestamp()), int(end.timestamp()))
        intents = self.provider.created_between("payment_intents", *span)
        refunds = self.provider.created_between("refunds", *span)
        self.result.payment_intents, self.result.refunds = len(intents), len(refunds)
        to_check: dict[str, Action] = {}
        for intent in intents:
            tag = (intent.get("metadata") or {}).get(ACTION_TAG)
            if not tag:
                if intent["status"] in MONEY_STATUSES:
                    self.result.not_from_slotguard.append({"id": intent["id"], "object": "payment_intent", "status": intent["status"],
                                                           "amount": _money(intent.get("amount"), intent.get("currency"))})
            elif tag in self.actions:
                to_check[tag] = self.actions[tag]
            elif intent["status"] in MONEY_STATUSES:
                self.report("unknown_in_stripe", f"Stripe {'holds' if intent['status'] == 'requires_capture' else 'took'} "
                            f"{_money(intent.get('amount'), intent.get('currency'))} in {intent['id']} for action {tag}, "
                            "which is not in this ledger", stripe_id=intent["id"], client=(intent.get("metadata") or {}).get("slotguard_client", ""))
        for refund in refunds:
            tag = (refund.get("metadata") or {}).get(ACTION_TAG)
            if tag and tag in self.actions:
                to_check[tag] = self.actions[tag]
            elif tag and _live(refund):
                self.report("unknown_in_stripe", f"Stripe refunded {_money(refund.get('amount'), refund.get('currency'))} in {refund['id']} "
                            f"for action {tag}, which is not in this ledger", stripe_id=refund["id"])
            elif not tag and _live(refund):
                # A refund made in the dashboard: compared below if it is on one of our payments.
                self.result.not_from_slotguard.append({"id": refund["id"], "object": "refund", "status": refund.get("status"),
                                                       "amount": _money(refund.get("amount"), refund.get("currency")),
                                                       "payment_intent": refund.get("payment_intent")})
        for action in self.actions.values():
            if action.state is ActionState.DONE and action.executed_at and start <= action.executed_at < end:
                to_check.setdefault(action.id, action)
        checked = [action for action in to_check.values() if not self.skipped(action)]
        self.result.ledger_actions = len(checked)
        for action in checked:
            if action.kind in (ActionKind.CHARGE, ActionKind.HOLD):
                self.check_payment(action)
            elif action.kind is ActionKind.REFUND:
                self.check_refund(action)
            else:
                self.check_capture_or_release(action)
        self.result.not_from_slotguard = [item for item in self.result.not_from_slotguard if item["id"] not in self._accounted]
        return self.result

    # -- charges and holds ---------------------------------------------------------------

    def check_payment(self, action: Action) -> None:
        tagged = self.tagged(action)
        if action.external_id.startswith("pi_") and action.external_id not in {i["id"] for i in tagged}:
            named = self.intent(action.external_id)
            if named is not None:
                tagged.append(named)
        with_money = [intent for intent in tagged if intent["status"] in MONEY_STATUSES]
        ledger_has_money = action.state is ActionState.DONE and action.context.get("payment_status", "paid") == "paid"
        what = self.describe(action)
        if len(with_money) > 1:
            ids = ", ".join(intent["id"] for intent in with_money)
            self.report("amount", f"{what}: Stripe took money {len(with_money)} times for this one action ({ids})", action, with_money[0]["id"])
        if not with_money:
            released = any(c.kind is ActionKind.RELEASE and c.state is ActionState.DONE for c in self.children.get(action.id, []))
            if ledger_has_money and not (released and tagged and tagged[0]["status"] == "canceled"):
                if tagged:
                    self.report("status", f"{what}, but its Stripe payment {tagged[0]['id']} is {tagged[0]['status']}", action, tagged[0]["id"])
                else:
                    self.report("missing_in_stripe", f"{what}, but no Stripe payment carries this action id", action)
            return
        intent = self.intent(with_money[0]["id"]) or with_money[0]
        if not ledger_has_money:
            hint = "; the next `run` picks it up" if action.state is ActionState.EXECUTING or action.context.get("payment_status") == "unpaid" else ""
            kept = action.state in LET_GO
            if kept:
                hint = "; `main.py reconcile --repair` plans giving it back"
            self.report("status", f"{what}, but Stripe {'holds' if intent['status'] == 'requires_capture' else 'took'} "
                        f"{_money(intent.get('amount'), intent.get('currency'))} in {intent['id']}{hint}", action, intent["id"],
                        repairable=kept)
            return
        if action.external_id != intent["id"]:
            self.report("status", f"{what}: the ledger names payment {action.external_id or '(none)'} but the money is in {intent['id']}", action, intent["id"])
        if action.amount and action.amount.currency != str(intent.get("currency", "")).upper():
            self.report("amount", f"{what}: Stripe payment {intent['id']} is in {str(intent.get('currency')).upper()}", action, intent["id"])
            return
        if action.kind is ActionKind.HOLD:
            self.check_hold(action, intent)
        else:
            taken = intent["amount"] if intent["status"] == "processing" else self.captured(intent, [])
            if action.amount and taken != action.amount.minor:
                self.report("amount", f"{what}: Stripe took {_money(taken, intent['currency'])} in {intent['id']}", action, intent["id"])
            self.check_refunds_on(action, intent, [])

    def captured(self, intent: dict, remainder: list[dict]) -> int:
        """What a succeeded PaymentIntent actually took. Real Stripe says amount_received;
        localstripe has no such field and books the uncaptured rest of a partial capture as a
        refund (passed in `remainder`)."""
        if intent["status"] != "succeeded":
            return 0
        if isinstance(intent.get("amount_received"), int):
            return intent["amount_received"]
        charge = _charge_of(intent)
        if isinstance(charge.get("amount_captured"), int):
            return charge["amount_captured"]
        return int(charge.get("amount", intent["amount"])) - sum(r["amount"] for r in remainder)

    def check_hold(self, hold: Action, intent: dict) -> None:
        children = [child for child in self.children.get(hold.id, []) if child.state is ActionState.DONE and not self.skipped(child)]
        captures = [c for c in children if c.kind is ActionKind.CAPTURE]
        released = any(c.kind is ActionKind.RELEASE for c in children)
        what = self.describe(hold)
        if hold.amount and intent["amount"] != hold.amount.minor:
            self.report("amount", f"{what}: Stripe authorised {_money(intent['amount'], intent['currency'])} in {intent['id']}", hold, intent["id"])
        captured_in_ledger = sum(c.amount.minor for c in captures if c.amount)
        if intent["status"] == "requires_capture":
            if captures:
                self.report("status", f"{what}: the ledger captured it, but {intent['id']} is still only authorised", hold, intent["id"])
            elif released:
                self.report("status", f"{what}: the ledger released it, but {intent['id']} is still authorised", hold, intent["id"])
            return
        if intent["status"] != "succeeded":
            return
        if not captures:
            self.report("status", f"{what}: Stripe captured {intent['id']} but the ledger has no capture for it", hold, intent["id"])
        remainder: list[dict] = []
        if not isinstance(intent.get("amount_received"), int) and captured_in_ledger < intent["amount"]:
            # localstripe: the uncaptured rest shows as an untagged refund of exactly that amount.
            rest = intent["amount"] - captured_in_ledger
            remainder = [r for r in self.refunds_on(intent["id"]) if not (r.get("metadata") or {}).get(ACTION_TAG) and r["amount"] == rest][:1]
        taken = self.captured(intent, remainder)
        if captures and taken != captured_in_ledger:
            self.report("amount", f"{what}: the ledger captured {_money(captured_in_ledger, intent['currency'])}, "
                        f"Stripe {_money(taken, intent['currency'])} in {intent['id']}", hold, intent["id"])
        self.check_refunds_on(hold, intent, remainder)

    def check_refunds_on(self, payment: Action, intent: dict, remainder: list[dict]) -> None:
        """Refunds on our payment that no ledger refund action made: money moved outside."""
        skip = {r["id"] for r in remainder}
        self._accounted |= skip
        for refund in self.refunds_on(intent["id"]):
            tag = (refund.get("metadata") or {}).get(ACTION_TAG)
            if refund["id"] in skip or not _live(refund) or (tag and tag in self.actions):
                continue  # a ledger refund action: checked on its own
            if refund["id"] in self.acknowledged:
                self._accounted.add(refund["id"])
                continue  # made in the dashboard, and known to the ledger's refund that gave back the rest
            self._accounted.add(refund["id"])
            self.report("unknown_in_stripe", f"{refund['id']} refunded {_money(refund['amount'], refund.get('currency') or intent['currency'])} "
                        f"of {payment.kind.value} {payment.id} outside Slotguard (the ledger has no such refund)", payment, refund["id"])

    # -- refunds, captures, releases -----------------------------------------------------

    def check_refund(self, action: Action) -> None:
        target = self.target_intent(action)
        found: list[dict] = []
        if target:
            found = [r for r in self.refunds_on(target) if (r.get("metadata") or {}).get(ACTION_TAG) == action.id]
        if not found and action.external_id.startswith("re_"):
            named = self.provider.refund(action.external_id)
            found = [named] if named is not None else []
        live = [r for r in found if _live(r)]
        what = self.describe(action)
        done = action.state is ActionState.DONE
        if len(live) > 1:
            self.report("amount", f"{what}: Stripe refunded {len(live)} times for this one action ({', '.join(r['id'] for r in live)})", action, live[0]["id"])
        if not live:
            if done:
                detail = f"but its Stripe refund {found[0]['id']} is {found[0].get('status')}" if found else "but no Stripe refund carries this action id"
                self.report("status" if found else "missing_in_stripe", f"{what}, {detail}", action, found[0]["id"] if found else "")
            return
        refund = live[0]
        if not done:
            self.report("status", f"{what}, but Stripe refunded {_money(refund['amount'], refund.get('currency'))} in {refund['id']}", action, refund["id"])
            return
        if action.external_id != refund["id"]:
            self.report("status", f"{what}: the ledger names {action.external_id or '(none)'} but the refund is {refund['id']}", action, refund["id"])
        if action.amount and refund["amount"] != action.amount.minor:
            self.report("amount", f"{what}: Stripe refunded {_money(refund['amount'], refund.get('currency'))} in {refund['id']}", action, refund["id"])

    def target_intent(self, action: Action) -> str:
        """The PaymentIntent a capture, release or refund acted on."""
        target = str(action.context.get("target_external_id") or "")
        parent = self.actions.get(str(action.context.get("target_action_id") or ""))
        if parent is not None:
            tagged = [i for i in self.tagged(parent) if i["status"] in MONEY_STATUSES]
            if tagged:
                return tagged[0]["id"]  # the money may sit on a later PaymentIntent (paid by link)
            target = target or parent.external_id
        if action.kind is not ActionKind.REFUND and action.external_id.startswith("pi_"):
            target = target or action.external_id
        return target if target.startswith("pi_") else ""

    def check_capture_or_release(self, action: Action) -> None:
        target = self.target_intent(action) or (action.external_id if action.external_id.startswith("pi_") else "")
        intent = self.intent(target) if target else None
        what = self.describe(action)
        expected = "succeeded" if action.kind is ActionKind.CAPTURE else "canceled"
        if intent is None:
            self.report("missing_in_stripe", f"{what}, but the payment it acted on ({target or 'none named'}) is not in Stripe", action, target)
        elif intent["status"] != expected:
            self.report("status", f"{what}, but {intent['id']} is {intent['status']} in Stripe", action, intent["id"])


def reconcile(ledger: ActionReader, provider: StripeProvider, start: datetime, end: datetime) -> Reconciliation:
    """Compare `ledger` with the Stripe account behind `provider` for [start, end).

    Returns a Reconciliation (its `mismatches` empty when both agree). Raises AdapterError
    when Stripe cannot be read; makes no writes anywhere.
    """
    if end <= start:
        raise ValueError("the period must end after it starts")
    return _Reconciler(ledger, provider, start, end).run()
