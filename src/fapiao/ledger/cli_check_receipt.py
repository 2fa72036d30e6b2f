"""``fapiao ledger check-receipt RECEIPT.json [--json] [--lang zh|en]``.

Does the current log still prove a receipt a merchant presents?  Wired into the ``ledger``
management command as a subcommand: ``add_arguments(subparser)`` then ``run(command, options)``.

Exit status: 0 proven; 1 the receipt itself is invalid (forged, damaged, unknown or
compromised key) — nothing is opened; 2 usage (the file cannot be read); 3 the receipt is
valid but the log no longer proves it — an integrity incident is open for it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from django.utils import translation
from django.utils.translation import gettext

from fapiao.ledger.checks import check_and_report

EXIT_PROVEN = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_NOT_PROVEN = 3
MAX_RECEIPT_BYTES = 1024 * 1024
HELP = "does the current log still prove a receipt a merchant presents?"


def add_arguments(parser: Any) -> None:
    parser.add_argument("receipt", help="the fapiao-receipt/1 JSON file a merchant presents")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the messages")


def _write(stream: Any, text: str) -> None:
    stream.write(text if text.endswith("\n") else text + "\n")


def run(command: Any, options: dict[str, Any]) -> None:
    """The ``ledger`` command's entry point: exit with :func:`check`'s status."""
    status = check(options, command.stdout, command.stderr)
    if status:
        raise SystemExit(status)


def check(options: dict[str, Any], stdout: TextIO | Any, stderr: TextIO | Any = None) -> int:
    """Check the receipt, open an incident when a valid one is not proven; return the exit status."""
    stderr = stderr if stderr is not None else sys.stderr
    lang = options.get("lang") or "zh"
    with translation.override("zh-hans" if lang == "zh" else "en"):
        path = Path(options["receipt"])
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_RECEIPT_BYTES + 1)
        except OSError as error:
            _write(
                stderr,
                gettext("Cannot read the receipt file {path}: {reason}.").format(
                    path=path, reason=error.strerror
                ),
            )
            return EXIT_USAGE
        if len(data) > MAX_RECEIPT_BYTES:
            _write(stderr, gettext("{path} is too large to be a receipt.").format(path=path))
            return EXIT_USAGE
        result = check_and_report(data)
        if options.get("json"):
            _write(stdout, json.dumps(result.to_json(), ensure_ascii=False, indent=2, sort_keys=True))
        elif result.status == "proven":
            _write(stdout, gettext("PROVEN: {message}").format(message=result.message(lang)))
        elif result.status == "invalid":
            _write(
                stdout,
                gettext("INVALID RECEIPT ({code}): {message}").format(
                    code=result.code, message=result.message(lang)
                ),
            )
            _write(stdout, gettext("The receipt itself fails verification; no incident was opened."))
        else:
            _write(
                stdout,
                gettext("NOT PROVEN ({code}): {message}").format(
                    code=result.code, message=result.message(lang)
                ),
            )
            if result.incident is not None:
                template = (
                    gettext("Integrity incident {id} opened. Follow the runbook: fapiao incidents show {id}.")
                    if result.incident_created
                    else gettext("Integrity incident {id} is already open for this receipt ({state}).")
                )
                _write(stdout, template.format(id=result.incident.pk, state=result.incident.state))
    return {"proven": EXIT_PROVEN, "invalid": EXIT_INVALID}.get(result.status, EXIT_NOT_PROVEN)
