"""Verify the ledger against the database, the key registry and the witness file (``fapiao ledger verify``).

Every log is streamed in ``seq`` order into the pure :class:`~fapiao.core.ledger_check.LogChecker`
by :mod:`fapiao.ledger.verify_log` (with helper processes on long logs); memory stays flat
however long the log is.

The default pass recomputes every leaf and every head's root from the entry bytes themselves,
and checks each leaf against the row's ``leaf_hash``, each entry's own seq and log, every key's
trust, the latest head's signature and the witness.  A chunk in which anything disagrees is read
again in full and checked entry by entry, which names what is wrong.  ``--deep`` adds every
head's signature, every entry's canonical form, the ``kind``/``ref`` lookup columns and every
stored Merkle node (level 0 up), which proofs are served from.

Then the merchant's invoice rows are compared with the entries they point at, each blue
invoice's state with what its red-letter entries fold to, and its number segments are checked
for gaps.  Each merchant is read inside one snapshot, so concurrent issuing never looks like
tampering.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext

from fapiao.accounts.models import Merchant
from fapiao.core.errors import NotFoundError, _
from fapiao.core.ledger_check import (
    INFO_CODES,
    Finding,
    FindingCode,
    Severity,
    WitnessLog,
)
from fapiao.core.ledger_findings import TITLES
from fapiao.core.signing import KeyRegistry
from fapiao.ledger.verify_log import check_log
from fapiao.platform import keys
from fapiao.platform.verifying import read_snapshot, read_witnesses

REPORT_FORMAT = "fapiao-ledger-verify/1"


class UnknownMerchantError(NotFoundError):
    """No merchant has this unified social credit code."""

    code = "unknown_merchant"


@dataclass(frozen=True)
class Progress:
    log: str
    phase: str  # "entries", "nodes" or "invoices"
    done: int
    total: int
    elapsed: float


ProgressFn = Callable[[Progress], None]


@dataclass
class LogReport:
    """What verify found in one merchant's log and invoices."""

    log: str
    merchant: str
    size: int
    entries: int = 0
    heads: int = 0
    heads_checked: int = 0
    signatures_checked: int = 0
    witness_size: int = 0
    invoices: int = 0
    elapsed: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)
    helped_chunks: int = 0  # chunks a helper process hashed (not in the JSON: it says nothing of the log)

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.counts.items() if _severity(code) is Severity.ERROR)

    @property
    def infos(self) -> int:
        return sum(n for code, n in self.counts.items() if _severity(code) is Severity.INFO)

    def to_json(self, language: str | None = None) -> dict[str, Any]:
        return {
            "log": self.log,
            "merchant": self.merchant,
            "size": self.size,
            "entries": self.entries,
            "heads": self.heads,
            "heads_checked": self.heads_checked,
            "signatures_checked": self.signatures_checked,
            "witness_size": self.witness_size,
            "invoices": self.invoices,
            "elapsed_seconds": round(self.elapsed, 3),
            "errors": self.errors,
            "infos": self.infos,
            "counts": dict(self.counts),
            "suppressed": dict(self.suppressed),
            "findings": [finding_json(f, language) for f in self.findings],
        }


@dataclass
class VerifyReport:
    logs: list[LogReport]
    findings: list[Finding]  # about the witness file as a whole, or logs the database lost
    deep: bool
    witness_file: str  # the witness files, comma-separated
    elapsed: float = 0.0
    witness_files: list[Path] = field(default_factory=list)

    def all_findings(self) -> Iterator[Finding]:
        yield from self.findings
        for log in self.logs:
            yield from log.findings

    @property
    def errors(self) -> int:
        loose = sum(1 for f in self.findings if f.severity is Severity.ERROR)
        return loose + sum(log.errors for log in self.logs)

    @property
    def infos(self) -> int:
        loose = sum(1 for f in self.findings if f.severity is Severity.INFO)
        return loose + sum(log.infos for log in self.logs)

    @property
    def ok(self) -> bool:
        """True only when nothing is wrong (info findings allowed)."""
        return self.errors == 0

    def codes(self, severity: Severity | None = Severity.ERROR) -> set[str]:
        return {str(f.code) for f in self.all_findings() if severity is None or f.severity is severity}

    def to_json(self, language: str | None = None) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "ok": self.ok,
            "deep": self.deep,
            "witness_file": self.witness_file,
            "witness_files": [str(path) for path in self.witness_files],
            "elapsed_seconds": round(self.elapsed, 3),
            "errors": self.errors,
            "infos": self.infos,
            "logs": [log.to_json(language) for log in self.logs],
            "findings": [finding_json(f, language) for f in self.findings],
        }


def _severity(code: str) -> Severity:
    return Severity.INFO if code in INFO_CODES else Severity.ERROR


# --- Messages ---------------------------------------------------------------------------------------


def localize(msgid: str, zh: str, language: str) -> str:
    """``msgid`` translated into ``language``; the built-in Chinese text until the catalogue has it."""
    with translation.override(language):
        text = gettext(msgid)
    if text == msgid and language.lower().startswith("zh"):
        return zh
    return text


def finding_message(finding: Finding, language: str) -> str:
    return finding.fill(localize(finding.template_en, finding.template_zh, language))


def code_title(code: str, language: str) -> str:
    """A finding code's name for people (the one table, :data:`fapiao.core.ledger_findings.TITLES`)."""
    if code not in TITLES:
        return code
    return localize(TITLES[code][0], TITLES[code][1], language)


def summary_in_words(summary: str, language: str) -> str:
    """An incident's ``code × n, …`` summary with each code named: ``账本条目被改动（altered_entry）× 1``."""
    parts = []
    for part in summary.split(", "):
        code, sep, count = part.partition(" × ")
        named = f"{code_title(code, language)}（{code}）" if code in TITLES else code
        parts.append(f"{named}× {count}" if sep else part)
    return ", ".join(parts)


def finding_json(finding: Finding, language: str | None = None) -> dict[str, Any]:
    data = finding.to_json(
        message_zh=finding_message(finding, "zh-hans"), message_en=finding_message(finding, "en")
    )
    code = str(finding.code)
    if code in TITLES:  # the finding's name for people: the one table the CLI, pages and mails use
        data["title_zh"] = code_title(code, "zh-hans")
        data["title_en"] = code_title(code, "en")
    if language is not None:
        data["message"] = data["message_en"] if language.startswith("en") else data["message_zh"]
        data["title"] = data.get("title_en" if language.startswith("en") else "title_zh", code)
    return data


# Checks of the rows that higher apps keep against a merchant's log, as
# f(merchant, checker, phases) -> how many rows were checked.  The invoices app registers its own
# from ``InvoicesConfig.ready`` (the ledger knows no invoices).
ROW_CHECKS: list[Callable[..., int]] = []


def register_row_check(check: Callable[..., int]) -> None:
    if check not in ROW_CHECKS:
        ROW_CHECKS.append(check)


# --- Verifying ------------------------------------------------------------------------------------


def verify_ledger(
    *,
    merchant: str | None = None,
    deep: bool = False,
    progress: ProgressFn | None = None,
    cap: int = 100,
    check_invoices: bool = True,
    workers: int | None = None,
    witness_files: Sequence[Path] = (),
) -> VerifyReport:
    """Verify every merchant's log (or only ``merchant``'s, by USCC).

    ``witness_files``: the witness files to check the database against (every application
    host's own, :func:`fapiao.platform.verifying.read_witnesses`); by default this host's
    ``FAPIAO_WITNESS_FILE``.

    ``deep`` also checks every head's signature, every entry's canonical form and every
    stored Merkle node.  At most ``cap`` findings of each code are kept per log (all counted).
    ``workers`` helper processes hash long logs beside this one (default: one per further
    core; 0 for none); the findings are the same either way.
    """
    started = time.perf_counter()
    registry = keys.registry()
    witness_paths = [Path(path) for path in witness_files] or [Path(settings.FAPIAO_WITNESS_FILE)]
    witness, loose = read_witnesses(witness_paths, keys=registry if deep else None)
    merchants = list(Merchant.objects.order_by("uscc"))
    if merchant is not None:
        wanted = merchant.strip().upper()
        merchants = [m for m in merchants if m.uscc == wanted]
        if not merchants:
            raise UnknownMerchantError(_("No merchant has this unified social credit code."))
    reports = []
    for item in merchants:
        report = verify_merchant(
            item,
            registry=registry,
            witness=witness.get(item.uscc),
            deep=deep,
            progress=progress,
            cap=cap,
            check_invoices=check_invoices,
            workers=workers,
        )
        reports.append(report)
    by_log = {report.log: report for report in reports}
    findings = []
    for finding in loose:
        if finding.log in by_log:
            _attach(by_log[finding.log], finding, cap)
        elif not finding.log or merchant is None:
            findings.append(finding)
    if merchant is None:
        known = set(Merchant.objects.values_list("uscc", flat=True))
        for log, seen in sorted(witness.items()):
            if log not in known:
                findings.append(
                    Finding(FindingCode.WITNESS_MISMATCH, log, size=seen.max_size, variant="lost_log")
                )
    elapsed = time.perf_counter() - started
    return VerifyReport(reports, findings, deep, ", ".join(map(str, witness_paths)), elapsed, witness_paths)


def _attach(report: LogReport, finding: Finding, cap: int) -> None:
    code = str(finding.code)
    report.counts[code] = report.counts.get(code, 0) + 1
    if report.counts[code] <= cap:
        report.findings.append(finding)


def verify_merchant(
    merchant: Merchant,
    *,
    registry: KeyRegistry,
    witness: WitnessLog | None,
    deep: bool = False,
    progress: ProgressFn | None = None,
    cap: int = 100,
    check_invoices: bool = True,
    workers: int | None = None,
) -> LogReport:
    started = time.perf_counter()

    def phase_progress(phase: str, done: int, total: int) -> None:
        assert progress is not None
        progress(Progress(merchant.uscc, phase, done, total, time.perf_counter() - started))

    phases = phase_progress if progress else None
    with read_snapshot() as own_snapshot:
        checker, helped = check_log(
            merchant,
            registry=registry,
            witness=witness,
            deep=deep,
            progress=phases,
            workers=workers,
            own_snapshot=own_snapshot,
        )
        invoices = sum(check(merchant, checker, phases) for check in ROW_CHECKS) if check_invoices else 0
    findings = checker.findings
    return LogReport(
        log=merchant.uscc,
        merchant=merchant.name,
        size=checker.log_size,
        entries=checker.entries,
        heads=checker.heads,
        heads_checked=checker.heads_checked,
        signatures_checked=checker.signatures_checked,
        witness_size=witness.max_size if witness else 0,
        invoices=invoices,
        elapsed=time.perf_counter() - started,
        findings=sorted(findings.items, key=_finding_order),
        counts={str(code): n for code, n in findings.counts.items()},
        suppressed=findings.suppressed,
        helped_chunks=helped,
    )


def _finding_order(finding: Finding) -> tuple[int, str, int, int]:
    severity = 0 if finding.severity is Severity.ERROR else 1
    return (severity, str(finding.code), finding.index or 0, finding.size or 0)
