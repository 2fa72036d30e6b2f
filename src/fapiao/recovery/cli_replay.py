"""``fapiao ledger replay PATH... [--merchant USCC] [--witness FILE]... [--dry-run] [--json]``.

Registered as a ``ledger`` subcommand from ``RecoveryConfig.ready`` (the replay rebuilds invoice
rows, which the ledger app below cannot).  Exit status: 0 every receipt was appended or was
present already; 1 a receipt was refused (nothing appended); 3 receipts were held beyond a gap
no receipt covers (the prefix before it was appended).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext

from fapiao.core.errors import FapiaoError
from fapiao.recovery.replay import ReplayReport, replay_receipts

HELP = "bring back lost ledger entries and invoice rows from the receipts merchants kept"
EXIT_REFUSED = 1
EXIT_HELD = 3


def add_arguments(parser: Any) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="fapiao-receipt/1 files, or folders of them")
    parser.add_argument(
        "--merchant", metavar="USCC", help="only this merchant's log: refuse any other's receipt"
    )
    parser.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="FILE",
        help="a witness file to check the receipts' heads against (repeatable; default FAPIAO_WITNESS_FILE)",
    )
    parser.add_argument("--dry-run", action="store_true", help="check and plan, append nothing")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(command: Any, options: dict[str, Any]) -> None:
    try:
        report = replay_receipts(
            options["paths"],
            merchant=options.get("merchant"),
            witness_files=[Path(p) for p in options.get("witness") or []],
            dry_run=bool(options.get("dry_run")),
        )
    except FapiaoError as error:
        raise CommandError(error.render(gettext)) from None
    if options.get("json"):
        command.stdout.write(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print(command, report)
    if not report.ok:
        raise SystemExit(EXIT_REFUSED)
    if any(log.held for log in report.logs):
        raise SystemExit(EXIT_HELD)


def _print(command: Any, report: ReplayReport) -> None:
    out, err = command.stdout, command.stderr
    for refusal in report.refused:
        where = (
            f" ({refusal.log} #{refusal.index})"
            if refusal.log is not None and refusal.index is not None
            else ""
        )
        err.write(
            gettext("REFUSED {path}{where}: {reason}").format(
                path=refusal.path, where=where, reason=refusal.reason
            )
        )
    if report.refused:
        err.write(
            gettext(
                "{count} receipts refused: nothing was appended. Remove or replace them and run again."
            ).format(count=len(report.refused))
        )
        return
    verb = gettext("would append") if report.dry_run else gettext("appended")
    for log in report.logs:
        if log.appended:
            out.write(
                gettext(
                    "log {log}: {verb} entries {first}..{last} ({count}); size {before} → {after}"
                ).format(
                    log=log.log,
                    verb=verb,
                    first=log.appended[0],
                    last=log.appended[-1],
                    count=len(log.appended),
                    before=log.size_before,
                    after=log.size_after,
                )
            )
        elif log.present:
            out.write(
                gettext("log {log}: every receipt's entry is in the log already ({count})").format(
                    log=log.log, count=log.present
                )
            )
        for number in log.awaiting_buyer:
            out.write(
                gettext(
                    "  invoice {number}: the buyer's sealed fields await the merchant (a recovery case with "
                    "the invoice file they kept)"
                ).format(number=number)
            )
        if log.held:
            err.write(
                gettext(
                    "log {log}: no receipt covers entry {gap}; held {count} receipts beyond it: {files}"
                ).format(
                    log=log.log,
                    gap=log.gap,
                    count=len(log.held),
                    files=", ".join(f"#{i} {f}" for i, f in log.held),
                )
            )
    if not report.logs:
        out.write(gettext("No receipts found in the paths given."))
