"""Extra `main.py` commands for email (see slotguard/cli/main.py, EXTRA_COMMANDS).

`register(add, commands)`: `add(name, handler, help, now=False)` adds a subcommand that takes
--config (and --now when asked) and returns its parser; `commands` is argparse's subparsers
object for commands that take no config.

- `preview TEMPLATE [--locale xx] [--purpose prepayment] [--out FILE.html]`: a template rendered with sample data
  (subject and text part printed; the HTML part written to FILE.html) so an admin can look
  at it in a browser before enabling it. Exit 1 when the template is unknown or fails.
- `digest [--now T] [--out FILE.html]`: today's practitioner digest from the ledger, as it
  would be sent now; sends nothing.
- `mail-test --to ADDRESS`: sends one sample `reminder` through the configured transport, to
  check the SMTP settings. Exit 1 with the transport's message when it fails.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from slotguard.cli.common import load_settings, now_from
from slotguard.domain.interfaces import AdapterError
from slotguard.mail.context import appointment_attachment
from slotguard.mail.messages import TEMPLATE_NAMES, Rendered, Renderer, TemplateProblem, build_email
from slotguard.mail.samples import PURPOSES, sample_appointment, sample_context
from slotguard.policies.loading import load_enabled
from slotguard.practitioner.digest import digest_context
from slotguard.run.wiring import open_mailer
from slotguard.store.ledger import Ledger
from slotguard.store.private_files import write_out


def register(add, commands) -> None:
    preview = add("preview", cmd_preview, "render an email template with sample data (subject and text printed, HTML to --out)")
    preview.add_argument("template", help=f"one of: {', '.join(TEMPLATE_NAMES)}")
    preview.add_argument("--locale", help="language to render (default: practice.locale), e.g. nb, da, de, pl, he")
    preview.add_argument("--out", metavar="FILE.html", help="write the HTML part here to open it in a browser (0600; an existing file only with --force)")
    preview.add_argument("--force", action="store_true", help="with --out: replace the file if it exists")
    preview.add_argument("--purpose", choices=PURPOSES, default="deposit",
                         help="deposit_request: a deposit (default) or a prepayment of the session (repeat_offender_prepay)")
    digest = add("digest", cmd_digest, "show today's practitioner digest from the ledger (sends nothing)", now=True)
    digest.add_argument("--out", metavar="FILE.html", help="write the HTML part here (0600; an existing file only with --force)")
    digest.add_argument("--force", action="store_true", help="with --out: replace the file if it exists")
    test = add("mail-test", cmd_mail_test, "send one sample email through the configured transport, to check it works")
    test.add_argument("--to", required=True, help="the address to send the sample to (your own)")
    test.add_argument("--locale", help="language of the sample (default: practice.locale)")


def _renderer(settings):
    return Renderer(settings.practice.locale, settings.practice.timezone, settings.mail.templates_dir or None)


def _show(rendered: Rendered, args: argparse.Namespace, settings) -> None:
    """Print the subject and text part; write the HTML part to --out (private_files.write_out:
    0600, atomic, an existing file only with --force, never the ledger)."""
    out = args.out
    if out:
        write_out(out, rendered.html, force=args.force, protected=[settings.storage.ledger_path])
    print(f"Subject: {rendered.subject}")
    print(f"Language: {rendered.locale}")
    print()
    print(rendered.text, end="")
    if out:
        print(f"\n(HTML part written to {out}; open it in a browser)")
    else:
        print("\n(add --out FILE.html to write the HTML part)")


def cmd_preview(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    renderer = _renderer(settings)
    known = sorted(set(TEMPLATE_NAMES) | {name for name in _all_names(renderer)})
    if args.template not in known:
        print(f"no template {args.template!r}; known templates: {', '.join(known)}", file=sys.stderr)
        return 1
    if args.purpose != "deposit" and args.template != "deposit_request":
        print("--purpose is for deposit_request only", file=sys.stderr)
        return 1
    try:
        locale = renderer.pick_locale(args.template, args.locale)
        context = sample_context(settings, load_enabled(settings), args.template, locale, args.purpose)
        rendered = renderer.render(args.template, context, locale)
    except TemplateProblem as error:
        print(f"{error}", file=sys.stderr)
        return 1
    if args.locale and rendered.locale != args.locale:
        print(f"(no {args.locale} version of {args.template}; shown in {rendered.locale})", file=sys.stderr)
    _show(rendered, args, settings)
    return 0


def _all_names(renderer) -> set[str]:
    names = set()
    for template_name in renderer.env.list_templates(extensions=["j2"]):
        file_name = template_name.rpartition("/")[2]  # NAME.txt.j2 or LOCALE/NAME.txt.j2
        if file_name.endswith(".txt.j2") and not file_name.startswith("_"):
            names.add(file_name[: -len(".txt.j2")])
    return names


def cmd_digest(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    ledger = Ledger(settings.storage.location, settings.storage.schema_name)
    try:
        rendered = _renderer(settings).render("practitioner_digest", digest_context(settings, ledger, now_from(args.now)))
    except TemplateProblem as error:
        print(f"{error}", file=sys.stderr)
        return 1
    finally:
        ledger.close()
    _show(rendered, args, settings)
    return 0


def cmd_mail_test(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    now = datetime.now(UTC)
    renderer = _renderer(settings)
    locale = renderer.pick_locale("reminder", args.locale)
    context = sample_context(settings, load_enabled(settings), "reminder", locale)
    rendered = renderer.render("reminder", context, locale)
    stamp = now.strftime("%Y%m%d%H%M%S")
    message = build_email(
        rendered,
        sender_name=settings.practice.name,
        sender_email=settings.sender,
        reply_to=settings.practice.email,
        to_name="",
        to_email=args.to,
        message_id=f"<mail-test-{stamp}@{settings.sender.rpartition('@')[2]}>",
        date=now,
        attachments=[appointment_attachment(settings, sample_appointment(settings), context, now)],
    )
    try:
        open_mailer(settings).send(message, f"mail-test-{stamp}")
    except AdapterError as error:
        print(f"not sent: {error}", file=sys.stderr)
        return 1
    print(f"sent a sample reminder to {args.to} through {settings.mail.transport}")
    return 0
