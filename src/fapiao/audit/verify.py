"""Verify the audit trail (``fapiao audit verify``): recompute every audit log from its records.

Each log's records are streamed in index order, :data:`CHUNK` at a time, rebuilt into their leaf
bytes and fed with the stored leaf nodes and signed heads to the pure
:class:`~fapiao.core.audit_chain.AuditChecker`, which names by index every record that was
deleted, edited or moved, and every head or witnessed root the records no longer give.  Each log
is read inside one snapshot, so concurrent writes never look like tampering.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils import translation
from django.utils.translation import gettext

from fapiao.audit.models import AuditHead, AuditLog, AuditNode, AuditRecord
from fapiao.audit.store import record_leaf, witness_path
from fapiao.core.audit_chain import AuditChecker, AuditFinding
from fapiao.core.errors import NotFoundError, _
from fapiao.core.ledger_check import HeadRow, WitnessLog
from fapiao.platform import keys
from fapiao.platform.verifying import read_snapshot, read_witness

CHUNK = 5_000
REPORT_FORMAT = "fapiao-audit-verify/1"
SUSPECT_LOOKUP = 1_000  # edited/moved records resolved per query


class UnknownAuditLogError(NotFoundError):
    """There is no such audit log; use a merchant's unified social credit code or "staff"."""

    code = "unknown_audit_log"


def localize(finding: AuditFinding, language: str) -> str:
    with translation.override(language):
        text = gettext(finding.template_en)
    if text == finding.template_en and language.lower().startswith("zh"):
        text = finding.template_zh
    return finding.fill(text)


@dataclass
class AuditLogReport:
    log: str
    size: int
    records: int = 0
    heads: int = 0
    signatures: int = 0
    elapsed: float = 0.0
    findings: list[AuditFinding] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for finding in self.findings if finding.is_error)

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "size": self.size,
            "records": self.records,
            "heads": self.heads,
            "signatures_checked": self.signatures,
            "elapsed_seconds": round(self.elapsed, 3),
            "errors": self.errors,
            "findings": [
                f.to_json(message_en=localize(f, "en"), message_zh=localize(f, "zh-hans"))
                for f in self.findings
            ],
        }


@dataclass
class AuditReport:
    logs: list[AuditLogReport]
    deep: bool
    witness_file: str
    elapsed: float = 0.0

    @property
    def errors(self) -> int:
        return sum(log.errors for log in self.logs)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def findings(self) -> list[AuditFinding]:
        return [finding for log in self.logs for finding in log.findings]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "ok": self.ok,
            "deep": self.deep,
            "witness_file": self.witness_file,
            "elapsed_seconds": round(self.elapsed, 3),
            "errors": self.errors,
            "logs": [log.to_json() for log in self.logs],
        }


def _log_name(wanted: str) -> str:
    text = wanted.strip()
    if text.lower() in {"staff", "audit:staff"}:
        return "audit:staff"
    return text if text.startswith("audit:") else f"audit:{text.upper()}"


def verify_audit(*, log: str | None = None, deep: bool = False) -> AuditReport:
    """Verify every audit log (or only ``log``: a USCC, "staff" or a full log name).

    ``deep`` checks every head's signature, not only the latest's, and every stored Merkle node
    above the leaves against its children (what the audit proofs are made of).
    """
    started = time.perf_counter()
    registry = keys.registry()
    path = witness_path()
    witness, _loose = read_witness(Path(path), keys=None)
    logs = list(AuditLog.objects.order_by("name"))
    if log is not None:
        name = _log_name(log)
        logs = [item for item in logs if item.name == name]
        if not logs:
            raise UnknownAuditLogError()
    reports = []
    for item in logs:
        with read_snapshot():
            reports.append(_verify_log(item.pk, witness.get(item.name), registry, deep))
    return AuditReport(reports, deep, str(path), time.perf_counter() - started)


def _verify_log(log_id: int, witness: WitnessLog | None, registry: Any, deep: bool) -> AuditLogReport:
    started = time.perf_counter()
    audit_log = AuditLog.objects.get(pk=log_id)  # re-read inside the snapshot
    size, name = audit_log.size, audit_log.name
    checker = AuditChecker(
        name, size=size, sealed_size=audit_log.sealed_size, keys=registry, witness=witness, deep=deep
    )
    heads = [
        HeadRow(size=s, root=bytes(r), at=a, key_id=k, signature=sig)
        for s, r, a, k, sig in AuditHead.objects.filter(log_id=log_id)
        .order_by("size")
        .values_list("size", "root", "at", "key_id", "signature")
    ]
    records = AuditRecord.objects.filter(log_id=log_id)
    nodes = AuditNode.objects.filter(log_id=log_id, level=0)
    end = max(size, heads[-1].size if heads else 0)
    head_index = 0
    for start in range(0, end, CHUNK):
        stop = min(start + CHUNK, end)
        leaves = {row.seq: record_leaf(name, row) for row in records.filter(seq__gte=start, seq__lt=stop)}
        stored = {
            index: bytes(digest)
            for index, digest in nodes.filter(index__gte=start, index__lt=stop).values_list("index", "hash")
        }
        chunk_heads = []
        while head_index < len(heads) and heads[head_index].size <= stop:
            if heads[head_index].size > start:
                chunk_heads.append(heads[head_index])
            head_index += 1
        checker.check_range(start, stop, leaves, stored, chunk_heads)
    _resolve(checker, log_id)
    if deep:
        _check_nodes(checker, log_id, size)
    beyond = list(records.filter(seq__gte=end).order_by("seq").values_list("seq", flat=True)[:1000])
    checker.finish(beyond=beyond, latest_head_size=heads[-1].size if heads else 0)
    report = AuditLogReport(name, size, checker.records, checker.heads, checker.signatures)
    report.findings = checker.findings
    report.elapsed = time.perf_counter() - started
    return report


def _check_nodes(checker: AuditChecker, log_id: int, size: int) -> None:
    """``--deep``: every stored node above the leaves against its two stored children, level by level."""
    nodes = AuditNode.objects.filter(log_id=log_id)
    level = 1
    while size >> level:
        complete = size >> level
        for start in range(0, complete, CHUNK):
            stop = min(start + CHUNK, complete)
            upper = nodes.filter(level=level, index__gte=start, index__lt=stop).values_list("index", "hash")
            lower = nodes.filter(level=level - 1, index__gte=2 * start, index__lt=2 * stop)
            children = {index: bytes(digest) for index, digest in lower.values_list("index", "hash")}
            checker.check_nodes(
                level, start, stop, {index: bytes(digest) for index, digest in upper}, children
            )
        level += 1


def _resolve(checker: AuditChecker, log_id: int) -> None:
    """Find where each mismatching record's leaf was written, to tell moved records from edited ones."""
    suspects = list(checker.suspects.items())[:SUSPECT_LOOKUP]
    positions: dict[bytes, list[int]] = {}
    if suspects:
        wanted = [leaf for _index, leaf in suspects]
        rows = AuditNode.objects.filter(log_id=log_id, level=0, hash__in=wanted).values_list("hash", "index")
        for digest, index in rows:
            positions.setdefault(bytes(digest), []).append(index)
    checker.resolve_suspects(positions)


def report_lines(report: AuditReport, language: str) -> list[str]:
    """The report as text lines in ``language``."""
    with translation.override(language):
        lines = [
            gettext(_("Audit trail verification; witness file: {path}")).format(path=report.witness_file)
        ]
        for log in report.logs:
            lines.append(
                gettext(
                    _("Log {log}: {records} records (size {size}), {heads} signed heads, {seconds} s")
                ).format(
                    log=log.log,
                    records=log.records,
                    size=log.size,
                    heads=log.heads,
                    seconds=f"{log.elapsed:.2f}",
                )
            )
            if not log.findings:
                lines.append("  " + gettext(_("No problems found.")))
            for finding in log.findings:
                mark = "ERROR" if finding.is_error else "note"
                lines.append(f"  [{mark}] {finding.code}: {localize(finding, language)}")
        if report.ok:
            lines.append(gettext(_("PASSED: the audit trail is intact.")))
        else:
            lines.append(gettext(_("FAILED: {errors} problems found.")).format(errors=report.errors))
    return lines
