"""From a happening to planned actions: the planner, reminders, waitlist offers, card holds."""
