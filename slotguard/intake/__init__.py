"""From a calendar event to an appointment and its happenings: normalisation, ownership, untrusted text, the change tracker."""
