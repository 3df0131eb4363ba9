"""The `slotguard_email_extras` hook the executor passes to composition: the process's plugin
manager's, where the features that add to emails (the card-setup link, the daily digest's
sections, the evidence pack attached to a collections referral) are registered like every
built-in feature and policy (slotguard/policies/loading.py, BUILT_IN_FEATURES). Composition
(slotguard/mail/compose.py) asks the hook and imports none of them.
"""

from __future__ import annotations

from slotguard.mail.compose import ExtrasHook
from slotguard.policies.owners import default_manager


def email_extras_hook() -> ExtrasHook:
    """The `slotguard_email_extras` hook with every built-in email feature registered. Raises
    ConfigError when an installed plugin implements a hook no spec declares, naming it."""
    return default_manager().hook.slotguard_email_extras
