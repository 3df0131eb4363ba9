"""What planning decided, before anything is written: a `Plan`.

Planning (slotguard/planning/) computes a plan from what it was given (the happening, the
appointment, an account view, `now`) and writes nothing; one store function
(slotguard/store/apply.py, `Store.apply`) writes a whole plan in one transaction. Plain data,
no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from slotguard.domain.model import Action, ActionSubject, Proposal


@dataclass(frozen=True)
class Plan:
    """What planning one happening (or one waiver) decided. Nothing is written yet.

    - `new`: proposals for `subject`, in order; the store turns each into an action with a
      stable id (`action_id_for(key, policy, kind, slot)`), the review window for fees,
      `charge_from`, zero fees recorded as waived, and what a proposal `supersedes`.
    - `actions`: new actions built whole (`new_action`: reminders, waitlist offers), stored
      as they are (each once, by id).
    - `wait`: open or unresolved money actions whose outcome is not known yet -> why: the
      waiver is kept on them (`waiver_waits`) and applied once the outcome is known.
    - `waive`: open (or refused) fees and funds -> why: waived.
    - `cancel`: open actions -> the note the cancellation is logged with.
    - `withdraw`: money asked of the client (a charge stored done, still owed) that is no longer
      asked for -> the note it is logged with: cancelled with payment_status "superseded", so nothing polls it,
      counts it or gives back money it never took (a settlement offer that ended).
    - `close`: a fee still owed -> (payment_status, note): closed by collections ("settled"
      or "written_off").
    - `by_hand`: give-backs planned outside a calendar happening (`main.py waive`, a waiver
      that waited, `reconcile --repair`): due now, without review window or `charge_from`.
    """

    subject: ActionSubject | None = None
    new: tuple[Proposal, ...] = ()
    actions: tuple[Action, ...] = ()
    wait: Mapping[str, str] = field(default_factory=dict)
    waive: Mapping[str, str] = field(default_factory=dict)
    cancel: Mapping[str, str] = field(default_factory=dict)
    withdraw: Mapping[str, str] = field(default_factory=dict)
    close: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    by_hand: bool = False

    @property
    def empty(self) -> bool:
        return not (self.new or self.actions or self.wait or self.waive or self.cancel or self.withdraw or self.close)


# Context of a fee a modifier took to zero: the amount let go, which the store records on the
# `waive` action that stands for it.
WAIVED_AMOUNT = "waived_amount"
# Context of a fee, written by the planner's rules over every fee policy (slotguard/planning/fee_stands.py):
# how the client had been told the policy before the incident ({"how": "email", "template",
# "action", "sent"} or {"how": "mark"} or {"how": "config"}), ...
POLICY_TOLD = "policy_told"
# ... that the client had not been, so the fee was let go and a warning quoting the policy sent ...
POLICY_UNTOLD = "policy_untold"
# ... or that its mark came too late ({"seen": utc text, "after_end": "10d", "honour_for": "3d"}):
# the store keeps the fee cancelled (not charged) with the notices about it, for `main.py
# charge-now` to carry out if the practitioner means it.
LATE_MARK = "late_mark"
# Context of a collection action: the id of the fee it is about (collections/ names every
# action it plans so; planning reads it to silence a waived fee's reminders).
COLLECTS = "collects"
