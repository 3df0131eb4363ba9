"""What `check-config` says of the inbox it would read (docs/inbox.md), without connecting."""

from __future__ import annotations

from slotguard.config.schema import Settings


def inbox_summary(settings: Settings) -> str:
    """One line: where the mail is read, whose commands count, what happens to other mail;
    "" when no inbox is configured."""
    inbox = settings.inbox
    if inbox.source == "none":
        return ""
    if inbox.source == "imap" and inbox.imap is not None:
        imap = inbox.imap
        where = (f"IMAP {imap.username} at {imap.host}:{imap.port_or_default} ({imap.tls}), folder {imap.folder}, "
                 f"handled mail moved to {imap.processed_folder}" + (", waiting with IDLE" if imap.idle else ""))
    elif inbox.source == "gmail":
        where = f"Gmail (the Google authorisation), handled mail labelled {inbox.gmail.processed_label}"
    else:
        where = "an inbox in memory (replay)"
    other = f"forwarded to {settings.practice.email}" if inbox.other_mail == "forward" else "left unread"
    check = f"a pass from {inbox.authserv_id}" if inbox.authserv_id else "the topmost Authentication-Results, when present"
    return (f"inbox: reads {inbox.address} through {where}; commands from {', '.join(sorted(inbox.practitioners(settings.practice.email)))} "
            f"({check}); other mail {other}. Not connected: `run` reads it.")
