"""The ``fapiao`` command: our own commands plus every Django management command.

``fapiao receipt verify FILE`` needs no database and no settings: it is the offline verifier
of ``fapiao.core.receipt``; nor does ``fapiao read FILE...`` (``fapiao.formats.cli_read``), which
prints what the invoice readers find in files and never opens the database.  Everything else runs
as a Django management command, so
``fapiao migrate``, ``fapiao demo``, ``fapiao token create clerk --scope write`` all work.
"""

from __future__ import annotations

import os
import sys

#: Django's own account commands would set a password for someone else, outside the audit trail:
#: whoever runs them could then sign in as a merchant's user.  Ours mail the user a link instead.
REFUSED_COMMANDS = {
    "createsuperuser": "use `fapiao users bootstrap USERNAME` (the first operator) or `fapiao users invite`",
    "changepassword": "use `fapiao users reset-password USERNAME --user YOU`: the user is mailed a link",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] == ["receipt", "verify"] and not _wants_local_keys(args):
        from fapiao.core.receipt import main as verify_main  # noqa: PLC0415  runs before Django is set up

        return verify_main(args[1:])
    if args[:1] == ["read"]:
        from fapiao.formats.cli_read import main as read_main  # noqa: PLC0415  runs before Django is set up

        return read_main(args[1:])
    if args and args[0] in REFUSED_COMMANDS:
        print(f"fapiao {args[0]} is switched off: {REFUSED_COMMANDS[args[0]]}", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fapiao.settings")
    from django.core.exceptions import ImproperlyConfigured  # noqa: PLC0415  runs before Django is set up
    from django.core.management import execute_from_command_line  # noqa: PLC0415  runs before Django is set up

    from fapiao.platform.context import cli_context  # noqa: PLC0415  runs before Django is set up
    from fapiao.platform.filemodes import require_private  # noqa: PLC0415  runs before Django is set up

    try:
        require_private()  # the var dir's files are 0600 in 0700 directories, or the command refuses
    except ImproperlyConfigured as refused:
        print(refused, file=sys.stderr)
        return 1
    cli_context()  # audit records made by this command carry its id and the OS user

    try:
        execute_from_command_line(["fapiao", *args])
    except KeyboardInterrupt:
        return 130
    return 0


def _wants_local_keys(args: list[str]) -> bool:
    """Without --public-key, verify against this installation's key registry (still offline)."""
    return "--public-key" not in args and not any(a.startswith("--public-key=") for a in args)


if __name__ == "__main__":
    raise SystemExit(main())
