"""The features that add to emails, registered for the `slotguard_email_extras` hook
(slotguard/policies/hookspecs.py) through pluggy, as plugins are: the daily digest (its
sections), the evidence pack (attached to a collections referral) and the card-setup link
(into booking confirmations and reminders). Composition (slotguard/mail/compose.py) asks the
hook and imports none of them.
"""

from __future__ import annotations

from functools import cache

import pluggy

from slotguard.mail.compose import ExtrasHook
from slotguard.payments import card_setup
from slotguard.policies import hookspecs
from slotguard.practitioner import digest, evidence

EMAIL_FEATURES = (card_setup, digest, evidence)


@cache  # registered once per process: the features are modules, the hook keeps no state
def email_extras_hook() -> ExtrasHook:
    """The `slotguard_email_extras` hook with every built-in email feature registered.
    Raises pluggy's PluginValidationError when a feature's implementation does not match the
    spec, naming it."""
    manager = pluggy.PluginManager("slotguard")
    manager.add_hookspecs(hookspecs)
    for feature in EMAIL_FEATURES:
        manager.register(feature, name=feature.__name__)
    manager.check_pending()
    return manager.hook.slotguard_email_extras
