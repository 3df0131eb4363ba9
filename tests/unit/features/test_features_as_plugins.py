"""Slotguard's own features (lifecycle mail, reminders, waitlist, digest, collections, hold
renewals) are plugins of the policies' manager: each answers for the actions it planned, so
the engine and the mail code ask "who handles this action?" and name no feature."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.loading import BUILT_IN_FEATURES, plugin_manager
from slotguard.policies.owners import ActionOwner, TickStep, action_owner, tick_steps

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)


def action(policy: str, kind: ActionKind = ActionKind.EMAIL, **context) -> Action:
    return Action(
        id="act_1", kind=kind, state=ActionState.PLANNED, policy=policy, reason="", calendar_id="cal", event_id="e1",
        client_email="ana@example.com", client_name="Ana", happening_key="k", due_at=NOW, created_at=NOW, updated_at=NOW,
        amount=Money(45000, "NOK") if kind is not ActionKind.EMAIL else None, context=dict(context),
    )


def test_each_built_in_feature_answers_for_the_actions_it_planned_and_a_fee_has_no_owner():
    manager = plugin_manager()
    owners = {name: action_owner(action(name), manager) for name in ("lifecycle", "waitlist", "digest", "collections")}
    assert {name: owner.name if owner else None for name, owner in owners.items()} == {
        "lifecycle": "lifecycle", "waitlist": "waitlist", "digest": "digest", "collections": "collections",
    }
    renewal = action("deposit", ActionKind.HOLD, purpose="deposit", renews="act_0")
    assert action_owner(renewal, manager).name == "hold_renewals"
    assert action_owner(action("no_show", ActionKind.CHARGE), manager) is None
    assert all(manager.get_plugin(name) is not None for name in BUILT_IN_FEATURES)


def test_the_owner_hook_is_first_result_so_one_feature_decides():
    class Claims:
        @hookimpl
        def slotguard_action_owner(self, action):
            return OWNER if action.policy == "spa_vouchers" else None

    class Vouchers(ActionOwner):
        name = "spa_vouchers"

        def ready(self, action, ledger, provider, settings, now):
            return False

    OWNER = Vouchers()
    manager = plugin_manager()
    assert manager.hook.slotguard_action_owner.spec.opts["firstresult"] is True
    manager.register(Claims(), name="spa_vouchers")
    found = action_owner(action("spa_vouchers"), manager)
    assert found is OWNER and found.ready(action("spa_vouchers"), None, None, None, NOW) is False
    assert action_owner(action("collections"), manager).name == "collections"


def test_the_engine_and_the_mail_code_name_no_feature():
    """They may not compare an action's policy with a name, nor import a feature's name or
    its planning: the features' hooks reach them."""
    feature_names = {"COLLECTIONS", "LIFECYCLE", "WAITLIST", "RENEWS", "POLICY", "DIGEST", "collection_ready", "renewal_ready",
                     "plan_digest", "run_collections", "plan_due_reminders", "plan_hold_renewals", "plan_slot_freed"}
    found = []
    for path in [*sorted((ROOT / "slotguard" / "run").glob("*.py")), ROOT / "slotguard" / "mail" / "stale.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                found += [f"{path.name} imports {alias.name}" for alias in node.names if alias.name in feature_names]
            elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "policy":
                found.append(f"{path.name}:{node.lineno} compares .policy")
    assert found == []


def test_the_features_steps_run_in_their_order_and_a_plugin_can_add_one():
    ran = []

    class Birthdays:
        @hookimpl
        def slotguard_tick_steps(self):
            return [TickStep(name="birthday greetings", order=15, run=lambda *arguments: ran.append(arguments))]

    manager = plugin_manager()
    assert [step.name for step in tick_steps(manager)] == ["policies_on", "digest", "monthly_report", "collections", "card_pages", "retention"]
    manager.register(Birthdays(), name="birthdays")
    steps = tick_steps(manager)
    assert [step.name for step in steps] == ["policies_on", "digest", "monthly_report", "birthday greetings", "collections", "card_pages", "retention"]
    steps[3].run("settings", "ledger", "provider", NOW, "report")
    assert ran == [("settings", "ledger", "provider", NOW, "report")]


def test_time_passing_asks_the_reminders_before_the_hold_renewals_and_the_unpaid_money_alerts_last():
    manager = plugin_manager()
    callers = [impl.plugin_name for impl in reversed(manager.hook.slotguard_time_passes.get_hookimpls())]
    assert callers == ["slotguard.features.lifecycle", "slotguard.features.hold_renewals", "slotguard.features.money_ahead"]
    assert [impl.plugin_name for impl in manager.hook.slotguard_after_happening.get_hookimpls()] == ["slotguard.features.waitlist"]


def test_what_features_add_to_emails_comes_from_the_same_manager_as_the_policies():
    from slotguard.policies.owners import default_manager
    from slotguard.run.email_features import email_extras_hook

    hook = email_extras_hook()
    assert hook is default_manager().hook.slotguard_email_extras
    assert {impl.plugin_name for impl in hook.get_hookimpls()} == {
        "slotguard.payments.card_setup", "slotguard.practitioner.digest", "slotguard.practitioner.evidence",
        "slotguard.features.money_ahead", "slotguard.reports.mailing", "slotguard.features.inbox_mail",
        "slotguard.mail.client_links", "slotguard.practitioner.command_links",
    }
