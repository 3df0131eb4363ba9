"""Every hook a Slotguard policy plugin can implement, declared once.

A policy is a pluggy plugin (a module or an object) registered under the name of the policy.
Built-in policies in `plugins/` are registered exactly like third-party ones, which are found
through the `slotguard.policies` entry-point group. pluggy checks each implementation's
signature against these specs at registration; an implementation may take any subset of
the arguments, by name.

Policies are pure: they never do I/O and never read the clock. They get `now`, the
happening, the appointment, the client's history (`slotguard.domain.model.ClientHistory`: outcomes
per appointment), the client's account (`slotguard.policies.loading.ClientAccount`: the money and
records the ledger holds for the client) and their own validated `config`, and return plain
data (`slotguard.domain.model.Proposal`). For one happening the planner calls, in this order:
`slotguard_propose` on every enabled policy, `slotguard_modify` on every fee, then
`slotguard_settle`, then `slotguard_email_details` on every email; policies are asked in
`policies.enabled` order, fee policies first (docs/plugins.md).

Built-in features (lifecycle mail, reminders, waitlist, digest, collections, hold renewals:
slotguard/features/) are plugins of the same manager. They answer `slotguard_action_owner`,
a first-result hook the engine asks before carrying out an action, and plan through
`slotguard_after_happening`, `slotguard_time_passes` and `slotguard_tick_steps`: the engine
never names a feature itself. These four hooks are the features' (they read and write the
ledger); a policy never implements them.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("slotguard")
hookimpl = pluggy.HookimplMarker("slotguard")


@hookspec
def slotguard_policy_info():
    """Describe this policy: return a slotguard.policies.loading.PolicyInfo (name, role, config model)."""


@hookspec
def slotguard_check_config(config, settings):
    """Check this policy's validated config against the rest of the settings; return a list of "key: problem" lines."""


@hookspec
def slotguard_propose(happening, appointment, history, account, config, now):
    """Return a list of Proposals for this happening (empty when not concerned)."""


@hookspec
def slotguard_modify(proposal, happening, appointment, history, account, config, now):
    """Adjust a proposed fee: return it changed, a list [changed fee, *extra proposals], or None to leave it."""


@hookspec
def slotguard_settle(proposals, happening, appointment, history, account, config, now):
    """Decide how the final fees are paid (deposit, package credit...): return the new list of proposals, or None."""


@hookspec
def slotguard_email_details(proposal, happening, appointment, history, account, config, now):
    """Return a dict of extra `details` for a planned email (booking confirmation, notice...), or None."""


@hookspec(firstresult=True)
def slotguard_waiver_reason(happening, appointment, config):
    """Return the practitioner's reason for a waiver seen on the calendar (e.g. the claim tag), or None; the first reason wins."""


@hookspec
def slotguard_terms(config, appointment):
    """Return plain data describing this policy's terms for the client's emails, or None."""


@hookspec
def slotguard_title_words(config):
    """Return the words and phrases this policy looks for in an event's title (`appointment.title`): the only parts of a title the ledger keeps (docs/privacy.md)."""


@hookspec(firstresult=True)
def slotguard_undo(entry, account):
    """Say how a waiver undoes `entry`, an account entry this policy created (or one ending it): a slotguard.domain.model.Undo, or None."""


@hookspec
def slotguard_email_extras(action, appointment, view, now):
    """Add to one email as it is composed: return slotguard.mail.compose.EmailExtras (template details, attachments) or None; read `view`, never call out."""


@hookspec(firstresult=True)
def slotguard_action_owner(action):
    """Return the ActionOwner of the feature that handles this action (slotguard/policies/owners.py), or None when it is not yours."""


@hookspec
def slotguard_after_happening(happening, appointment, ledger, settings, now):
    """A feature plans what a happening means for it, beside the policies (a slot offer to the waitlist); return the actions it stored."""


@hookspec
def slotguard_time_passes(ledger, settings, now):
    """A feature plans what has fallen due with time (reminders, hold renewals); return the actions it stored."""


@hookspec
def slotguard_tick_steps():
    """Return the feature's own steps of every tick (slotguard.policies.owners.TickStep), run after the time check and before due actions."""
