"""``fapiao audit verify [--log USCC|staff] [--deep] [--json] [--lang zh|en]`` and
``fapiao audit export --user AUDITOR [filters] FILE.csv|FILE.xlsx``.

``verify`` exits 0 when every audit log is intact, 1 naming what is wrong (deleted, edited or moved
records by index, heads the records no longer give, bad signatures, witness disagreement), 2 for
a usage error.  ``export`` writes the records an auditor may read, and is itself audited.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext

from fapiao.accounts.cli import acting_user, add_user_argument
from fapiao.audit.exports import export_audit
from fapiao.audit.selectors import parse_filters
from fapiao.audit.verify import UnknownAuditLogError, report_lines, verify_audit
from fapiao.audit.verify_runs import record_run
from fapiao.core.errors import FapiaoError


class Command(BaseCommand):
    help = "The audit trail: `audit verify` recomputes every audit log; `audit export` writes it to CSV/XLSX."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        verify = sub.add_parser(
            "verify", help="recompute every audit log and name what was deleted, edited or moved"
        )
        verify.add_argument(
            "--log", metavar="USCC|staff", help="verify only this merchant's log, or the staff log"
        )
        verify.add_argument(
            "--deep",
            action="store_true",
            help="check every signed head's signature and every stored Merkle node",
        )
        verify.add_argument("--json", action="store_true", help="print the machine-readable report")
        verify.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the summary")
        export = sub.add_parser(
            "export", help="write audit records to .csv or .xlsx (an auditor's act, audited)"
        )
        add_user_argument(export)
        for name in ("actor", "action", "target", "target-type", "merchant"):
            export.add_argument(
                f"--{name}", default="", help=f"only records with this {name.replace('-', ' ')}"
            )
        export.add_argument(
            "--from", dest="date_from", default="", help="first day (Beijing), e.g. 2026-11-01"
        )
        export.add_argument("--to", dest="date_to", default="", help="last day (Beijing), inclusive")
        export.add_argument("out", type=Path, help="the file to write: .csv or .xlsx")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "verify":
            self._verify(options)
        else:
            self._export(options)

    def _verify(self, options: dict[str, Any]) -> None:
        language = "en" if options["lang"] == "en" else "zh-hans"
        try:
            report = verify_audit(log=options.get("log"), deep=options["deep"])
        except UnknownAuditLogError as error:
            raise CommandError(error.render(gettext), returncode=2) from None
        record_run(report, log=options.get("log"), source="cli")
        if options["json"]:
            self.stdout.write(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        else:
            self.stdout.write("\n".join(report_lines(report, language)))
        if not report.ok:
            problems = sorted({f"{f.code}@{f.log}#{f.index}" for f in report.findings() if f.is_error})
            raise CommandError(
                gettext("FAILED: {errors} problems found.").format(errors=report.errors)
                + " "
                + ", ".join(problems[:20]),
                returncode=1,
            )

    def _export(self, options: dict[str, Any]) -> None:
        user = acting_user(options["user"])
        out: Path = options["out"]
        if out.suffix.lower() not in {".csv", ".xlsx"}:
            raise CommandError(gettext("The output file must end in .csv or .xlsx."))
        try:
            filters = parse_filters(
                {
                    "actor": options["actor"],
                    "action": options["action"],
                    "target": options["target"],
                    "target_type": options["target_type"],
                    "merchant": options["merchant"],
                    "date_from": options["date_from"],
                    "date_to": options["date_to"],
                }
            )
            count = export_audit(user=user, filters=filters, path=out)
        except FapiaoError as error:
            raise CommandError(error.render(gettext)) from None
        self.stdout.write(gettext("{count} audit records → {path}").format(count=count, path=out))
