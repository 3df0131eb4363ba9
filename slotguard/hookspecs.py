"""Every hook a Slotguard policy plugin can implement, declared once.

A policy is a pluggy plugin (a module or an object) registered under the name of the policy.
Built-in policies in `plugins/` are registered exactly like third-party ones, which are found
through the `slotguard.policies` entry-point group. pluggy checks each implementation's
signature against these specs at registration; an implementation may take any subset of
the arguments, by name.

Policies are pure: they never do I/O and never read the clock. They get `now`, the
happening, the appointment, the client's history and their own validated `config`, and
return plain data (slotguard.model.Proposal).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("slotguard")
hookimpl = pluggy.HookimplMarker("slotguard")


@hookspec
def slotguard_policy_info():
    """Describe this policy: return a slotguard.plugins.PolicyInfo (name, role, config model)."""


@hookspec
def slotguard_propose(happening, appointment, history, config, now):
    """Fee policies: return a list of Proposals for this happening (empty when not concerned)."""


@hookspec
def slotguard_modify(proposal, happening, appointment, history, config, now):
    """Modifiers: return the money proposal adjusted (or with amount zero to waive it), or None."""


@hookspec
def slotguard_terms(config, appointment):
    """Return plain data describing this policy's terms for the client's emails, or None."""
