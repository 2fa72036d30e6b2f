"""``fapiao ledger verify [--merchant USCC] [--deep] [--json] [--lang zh|en] [--workers N] [--witness F]…``.

With several application hosts, each appends to its own witness file: ``--witness`` (repeatable)
checks the database against every one of them (by default: this host's ``FAPIAO_WITNESS_FILE``).

Prints a summary per log (Chinese by default) or, with ``--json``, the machine-readable report
(``fapiao-ledger-verify/1``).  Progress goes to stderr on big logs.  Exit status: 0 when nothing
is wrong (info findings allowed), 1 when anything is, 2 for a usage error.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils.translation import gettext_noop

from fapiao.core.ledger_check import Severity
from fapiao.ledger.verify import (
    LogReport,
    Progress,
    UnknownMerchantError,
    VerifyReport,
    code_title,
    finding_message,
    localize,
    verify_ledger,
)
from fapiao.ledger.verify_runs import record_run

HELP = "recompute every ledger log and report what disagrees with it"
PROGRESS_EVERY = 100_000  # entries or invoice rows between progress lines

# English msgid -> the Chinese shown until the catalogue translates it.
LABELS: dict[str, str] = {
    gettext_noop(
        "Ledger verification (deep: {deep}); witness file: {witness}"
    ): "账本核验（深度核验：{deep}）；见证文件：{witness}",
    gettext_noop("yes"): "是",
    gettext_noop("no"): "否",
    gettext_noop(
        "Log {log} {merchant}: {entries} entries (log size {size}), {heads} signed heads, "
        "{heads_checked} recomputed, {signatures} signatures checked, {invoices} invoices, {seconds} s"
    ): "日志 {log} {merchant}：条目 {entries} 条（日志记录 {size} 条），签名树头 {heads} 个，"
    "已重算 {heads_checked} 个，已核对签名 {signatures} 个，发票 {invoices} 张，用时 {seconds} 秒",
    gettext_noop("No problems found."): "未发现问题。",
    gettext_noop("{errors} errors, {infos} notes:"): "{errors} 个错误，{infos} 条提示：",
    gettext_noop("… and {count} more {code} findings, not listed."): "…… 另有 {count} 条 {code} 未列出。",
    gettext_noop("PASSED: the ledger is intact ({infos} notes)."): "通过：账本完整（{infos} 条提示）。",
    gettext_noop("FAILED: {errors} problems found."): "未通过：发现 {errors} 个问题。",
    gettext_noop("{log}: {phase} {done}/{total} ({rate}/s)"): "{log}：{phase} {done}/{total}（每秒 {rate}）",
    gettext_noop("entries"): "条目",
    gettext_noop("nodes"): "节点层",
    gettext_noop("invoices"): "发票",
    gettext_noop("The run could not be recorded: {error}"): "本次核验未能记录：{error}",
    gettext_noop("Integrity incident {id} is open for this."): "已为此开立数据完整性事件 {id}。",
}


def label(msgid: str, language: str, **params: Any) -> str:
    text = localize(msgid, LABELS[msgid], language)
    return text.format(**params) if params else text


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("--merchant", metavar="USCC", help="verify only this merchant's log")
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also check every head's signature, every entry's canonical form, the kind/ref lookup "
        "columns and every stored Merkle node",
    )
    parser.add_argument("--json", action="store_true", help="print the machine-readable report")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the summary")
    parser.add_argument(
        "--max-findings", type=int, default=100, help="findings of each kind listed per log (all are counted)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="helper processes that hash long logs beside this one (default: one per further core; 0: none)",
    )
    parser.add_argument(
        "--witness",
        action="append",
        metavar="FILE",
        default=[],
        help="a witness file to check the database against; repeat it for every application host's "
        "file (default: FAPIAO_WITNESS_FILE)",
    )


def run(command: BaseCommand, options: dict[str, Any]) -> None:
    language = "en" if options["lang"] == "en" else "zh-hans"
    printer = ProgressPrinter(command, language)
    try:
        report = verify_ledger(
            merchant=options.get("merchant"),
            deep=options["deep"],
            progress=printer,
            cap=max(options["max_findings"], 1),
            workers=options.get("workers"),
            witness_files=[Path(path) for path in options.get("witness") or []],
        )
    except UnknownMerchantError as error:
        message = error.render(lambda msgid: localize(msgid, "没有这个统一社会信用代码的商户。", language))
        raise CommandError(message, returncode=2) from None
    if options["json"]:
        command.stdout.write(json.dumps(report.to_json(language), ensure_ascii=False, indent=2))
    else:
        command.stdout.write(render_text(report, language))
    _record(command, report, options.get("merchant"), language)
    if not report.ok:
        raise CommandError(
            label("FAILED: {errors} problems found.", language, errors=f"{report.errors:,}"), returncode=1
        )


def _record(command: BaseCommand, report: VerifyReport, merchant: str | None, language: str) -> None:
    """Keep the run (for /readyz) and open incidents for what it found; the report stands even
    if that fails (a database gone read-only must not hide what verify found)."""
    try:
        _run, opened = record_run(report, merchant=merchant, source="cli")
    except DatabaseError as error:
        command.stderr.write(label("The run could not be recorded: {error}", language, error=error))
        return
    for incident in opened:
        command.stderr.write(label("Integrity incident {id} is open for this.", language, id=incident.pk))


class ProgressPrinter:
    """Prints to stderr every :data:`PROGRESS_EVERY` items of a phase, with the rate."""

    def __init__(self, command: BaseCommand, language: str) -> None:
        self.command = command
        self.language = language
        self.next_at: dict[tuple[str, str], int] = {}
        self.started: dict[tuple[str, str], float] = {}

    def __call__(self, progress: Progress) -> None:
        key = (progress.log, progress.phase)
        now = time.perf_counter()
        self.started.setdefault(key, now)
        if progress.phase == "nodes" or progress.total < PROGRESS_EVERY:
            return
        if progress.done < self.next_at.get(key, PROGRESS_EVERY) and progress.done < progress.total:
            return
        self.next_at[key] = (progress.done // PROGRESS_EVERY + 1) * PROGRESS_EVERY
        seconds = max(progress.elapsed, 1e-9)
        line = label(
            "{log}: {phase} {done}/{total} ({rate}/s)",
            self.language,
            log=progress.log,
            phase=label(progress.phase, self.language),
            done=f"{progress.done:,}",
            total=f"{progress.total:,}",
            rate=f"{progress.done / seconds:,.0f}",
        )
        self.command.stderr.write(line)


def render_text(report: VerifyReport, language: str) -> str:
    lines = [
        label(
            "Ledger verification (deep: {deep}); witness file: {witness}",
            language,
            deep=label("yes" if report.deep else "no", language),
            witness=report.witness_file,
        )
    ]
    for finding in report.findings:
        lines.append(
            _finding_line(finding.severity, str(finding.code), finding_message(finding, language), language)
        )
    for log in report.logs:
        lines.extend(_log_lines(log, language))
    if report.ok:
        lines.append(
            label("PASSED: the ledger is intact ({infos} notes).", language, infos=f"{report.infos:,}")
        )
    else:
        lines.append(label("FAILED: {errors} problems found.", language, errors=f"{report.errors:,}"))
    return "\n".join(lines)


def _log_lines(log: LogReport, language: str) -> list[str]:
    lines = [
        label(
            "Log {log} {merchant}: {entries} entries (log size {size}), {heads} signed heads, "
            "{heads_checked} recomputed, {signatures} signatures checked, {invoices} invoices, {seconds} s",
            language,
            log=log.log,
            merchant=log.merchant,
            entries=f"{log.entries:,}",
            size=f"{log.size:,}",
            heads=f"{log.heads:,}",
            heads_checked=f"{log.heads_checked:,}",
            signatures=log.signatures_checked,
            invoices=f"{log.invoices:,}",
            seconds=f"{log.elapsed:.2f}",
        )
    ]
    if not log.counts:
        lines.append("  " + label("No problems found.", language))
        return lines
    lines.append(
        "  "
        + label("{errors} errors, {infos} notes:", language, errors=f"{log.errors:,}", infos=f"{log.infos:,}")
    )
    for finding in log.findings:
        lines.append(
            _finding_line(finding.severity, str(finding.code), finding_message(finding, language), language)
        )
    for code, count in sorted(log.suppressed.items()):
        more = label(
            "… and {count} more {code} findings, not listed.", language, count=f"{count:,}", code=code
        )
        lines.append("    " + more)
    return lines


def _finding_line(severity: Severity, code: str, message: str, language: str) -> str:
    mark = "✗" if severity is Severity.ERROR else "i"
    return f"    {mark} {code_title(code, language)} [{code}] {message}"
