"""Verify the ledger against the database, the key registry and the witness file (``fapiao ledger verify``).

Every log is streamed in ``seq`` order, :data:`CHUNK` entries per query (querysets compiled by
the ORM, rows fetched as plain tuples: no model instance per entry), into the pure
:class:`~fapiao.core.ledger_check.LogChecker`; memory stays flat however long the log is.

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

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Max, Min, QuerySet
from django.utils import translation
from django.utils.translation import gettext

from fapiao.accounts.models import Merchant, NumberSegment
from fapiao.core.errors import FapiaoError, NotFoundError, _
from fapiao.core.identifiers import format_invoice_number
from fapiao.core.ledger_check import (
    COVERED,
    INFO_CODES,
    PRESENT,
    SUSPECT,
    Finding,
    FindingCode,
    HeadRow,
    LogChecker,
    Severity,
    StateFold,
    WitnessLog,
    flag_runs,
    invoice_findings,
    parse_entry,
    parse_witness,
)
from fapiao.core.money import format_money
from fapiao.core.signing import KeyRegistry
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.invoices.services import core_line, document_for
from fapiao.ledger import keys
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead

CHUNK = 8192  # entries (and nodes) per query: a power of two, so whole chunks are perfect subtrees
ROW_CHUNK = 500  # invoice rows per query
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
    witness_file: str
    elapsed: float = 0.0

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
            "elapsed_seconds": round(self.elapsed, 3),
            "errors": self.errors,
            "infos": self.infos,
            "logs": [log.to_json(language) for log in self.logs],
            "findings": [finding_json(f, language) for f in self.findings],
        }


def _severity(code: str) -> Severity:
    return Severity.INFO if code in INFO_CODES else Severity.ERROR


def batched(items: Iterable[int], size: int) -> Iterator[list[int]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


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


def finding_json(finding: Finding, language: str | None = None) -> dict[str, Any]:
    data = finding.to_json(
        message_zh=finding_message(finding, "zh-hans"), message_en=finding_message(finding, "en")
    )
    if language is not None:
        data["message"] = data["message_en"] if language.startswith("en") else data["message_zh"]
    return data


# --- Reading --------------------------------------------------------------------------------------


def _rows(queryset: QuerySet[Any, Any]) -> list[tuple[Any, ...]]:
    """The rows of a ``values_list`` queryset as plain tuples, skipping per-row ORM conversion."""
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


@contextlib.contextmanager
def read_snapshot(alias: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """One consistent, read-only view of the database that never blocks writers.

    PostgreSQL: a REPEATABLE READ, READ ONLY transaction.  SQLite (WAL): a deferred read
    transaction (Django's own ``atomic`` would take the write lock with BEGIN IMMEDIATE).
    Inside an existing transaction (tests) the caller's view is used as it is.
    """
    connection = connections[alias]
    if connection.in_atomic_block:
        yield
    elif connection.vendor == "postgresql":
        with transaction.atomic(using=alias):
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
    elif connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")
    else:
        yield


def read_witness(path: Path, *, keys: KeyRegistry | None) -> tuple[dict[str, WitnessLog], list[Finding]]:
    try:
        with path.open("rb") as handle:
            return parse_witness(handle, keys=keys)
    except FileNotFoundError:
        return {}, []


# --- Verifying ------------------------------------------------------------------------------------


def verify_ledger(
    *,
    merchant: str | None = None,
    deep: bool = False,
    progress: ProgressFn | None = None,
    cap: int = 100,
    check_invoices: bool = True,
) -> VerifyReport:
    """Verify every merchant's log (or only ``merchant``'s, by USCC).

    ``deep`` also checks every head's signature, every entry's canonical form and every
    stored Merkle node.  At most ``cap`` findings of each code are kept per log (all counted).
    """
    started = time.perf_counter()
    registry = keys.registry()
    witness_path = Path(settings.FAPIAO_WITNESS_FILE)
    witness, loose = read_witness(witness_path, keys=registry if deep else None)
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
    return VerifyReport(reports, findings, deep, str(witness_path), elapsed)


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
) -> LogReport:
    started = time.perf_counter()
    with read_snapshot():
        checker = _check_log(
            merchant, registry=registry, witness=witness, deep=deep, progress=progress, started=started
        )
        invoices = _check_invoices(merchant, checker, progress, started) if check_invoices else 0
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
    )


def _finding_order(finding: Finding) -> tuple[int, str, int, int]:
    severity = 0 if finding.severity is Severity.ERROR else 1
    return (severity, str(finding.code), finding.index or 0, finding.size or 0)


def _check_log(
    merchant: Merchant,
    *,
    registry: KeyRegistry,
    witness: WitnessLog | None,
    deep: bool,
    progress: ProgressFn | None,
    started: float,
) -> LogChecker:
    log_size = Log.objects.filter(merchant=merchant).values_list("size", flat=True).first() or 0
    entries = LogEntry.objects.filter(merchant=merchant)
    heads = TreeHead.objects.filter(merchant=merchant)
    bounds = entries.aggregate(lo=Min("seq"), hi=Max("seq"))
    head_size = heads.aggregate(top=Max("size"))["top"] or 0
    end = max(log_size, head_size, bounds["hi"] + 1 if bounds["hi"] is not None else 0)
    checker = LogChecker(
        merchant.uscc,
        end=end,
        log_size=log_size,
        head_size=head_size,
        keys=registry,
        witness=witness,
        deep=deep,
    )
    if bounds["lo"] is not None and bounds["lo"] < 0:
        checker.misplaced(_rows(entries.filter(seq__lt=0).values_list("seq", "body")))
    leaves = LogNode.objects.filter(merchant=merchant, level=0)
    for start in range(0, end, CHUNK):
        stop = min(start + CHUNK, end)
        rows = entries.filter(seq__gte=start, seq__lt=stop).order_by("seq")
        nodes = leaves.filter(index__gte=start, index__lt=stop).order_by("index")
        chunk_heads = heads.filter(size__gt=start, size__lte=stop).order_by("size")
        head_rows = [
            HeadRow(*row)
            for row in _rows(chunk_heads.values_list("size", "root", "at", "key_id", "signature"))
        ]
        if deep or not _fast_chunk(checker, start=start, stop=stop, rows=rows, heads=head_rows):
            checker.check_range(
                start,
                stop,
                _rows(rows.values_list("seq", "body", "leaf_hash", "kind", "ref")),
                dict(_rows(nodes.values_list("index", "hash"))),
                head_rows,
            )
        if progress:
            progress(Progress(merchant.uscc, "entries", stop, end, time.perf_counter() - started))
    if deep:
        _check_nodes(merchant, checker, progress, started)
    checker.finish()
    return checker


def _fast_chunk(
    checker: LogChecker, *, start: int, stop: int, rows: QuerySet[LogEntry, LogEntry], heads: list[HeadRow]
) -> bool:
    """Fetch only what a clean chunk needs (entry bytes and leaf hashes; positions follow from a
    full count in seq order) and try the checker's fast path."""
    fetched = _rows(rows.values_list("body", "leaf_hash"))
    if len(fetched) != stop - start:
        return False
    bodies = [row[0] for row in fetched]
    stored = [row[1] for row in fetched]
    return checker.check_chunk(start, bodies, stored, None, heads)


def _check_nodes(
    merchant: Merchant, checker: LogChecker, progress: ProgressFn | None, started: float
) -> None:
    """Every stored node above the leaves against its two stored children, level by level (the
    level-0 nodes were compared with the entries on the entry-by-entry path ``--deep`` takes)."""
    nodes = LogNode.objects.filter(merchant=merchant)
    level = 1
    while checker.head_size >> level:
        complete = checker.head_size >> level
        for start in range(0, complete, CHUNK):
            stop = min(start + CHUNK, complete)
            upper = nodes.filter(level=level, index__gte=start, index__lt=stop).values_list("index", "hash")
            lower = nodes.filter(level=level - 1, index__gte=2 * start, index__lt=2 * stop)
            children = dict(_rows(lower.values_list("index", "hash")))
            checker.check_nodes(level, start, stop, dict(_rows(upper)), children)
        if progress:
            elapsed = time.perf_counter() - started
            progress(Progress(merchant.uscc, "nodes", level, checker.head_size.bit_length() - 1, elapsed))
        level += 1


# --- Invoice rows -------------------------------------------------------------------------------


class _Serials:
    """Which serials of each number segment are taken by an invoice row."""

    def __init__(self, segments: Sequence[NumberSegment]) -> None:
        self.segments = list(segments)
        self.by_prefix: dict[str, list[NumberSegment]] = {}
        for segment in self.segments:
            prefix = f"{segment.year:02d}{segment.province}{segment.channel}"
            self.by_prefix.setdefault(prefix, []).append(segment)
        self.used = {s.pk: bytearray(max(s.next_serial - s.first_serial, 0)) for s in self.segments}
        self.beyond: dict[int, list[int]] = {s.pk: [] for s in self.segments}

    def see(self, number: str) -> None:
        if len(number) != 20 or not number.isdigit():
            return
        serial = int(number[5:])
        for segment in self.by_prefix.get(number[:5], ()):
            if segment.first_serial <= serial <= segment.last_serial:
                if serial < segment.next_serial:
                    self.used[segment.pk][serial - segment.first_serial] = 1
                else:
                    self.beyond[segment.pk].append(serial)
                return

    def findings(self, log: str) -> Iterator[Finding]:
        for segment in self.segments:

            def number(serial: int, segment: NumberSegment = segment) -> str:
                return format_invoice_number(
                    year=2000 + segment.year,
                    province=segment.province,
                    channel=segment.channel,
                    serial=serial,
                )

            for a, b in flag_runs(self.used[segment.pk], 0):
                first, last = segment.first_serial + a, segment.first_serial + b - 1
                params = {"last": number(last), "count": b - a}
                variant = "single" if first == last else ""
                yield Finding(
                    FindingCode.NUMBER_GAP, log, number=number(first), variant=variant, params=params
                )
            for first, last in _consecutive(sorted(self.beyond[segment.pk])):
                params = {
                    "last": number(last),
                    "count": last - first + 1,
                    "next": number(segment.next_serial),
                }
                code, variant = FindingCode.NUMBER_UNALLOCATED, "single" if first == last else ""
                yield Finding(code, log, number=number(first), variant=variant, params=params)


def _consecutive(values: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _fold_states(merchant: Merchant, checker: LogChecker) -> StateFold:
    """Red letters and voids, folded by original number.  Altered entries make their originals
    uncertain rather than wrong: the altered entry is the finding."""
    fold = StateFold()
    entries = LogEntry.objects.filter(merchant=merchant)
    for seqs in batched(checker.fold_seqs, ROW_CHUNK):
        for _seq, body in _rows(entries.filter(seq__in=seqs).values_list("seq", "body")):
            fold.add(parse_entry(body))
    suspects = [seq for a, b in flag_runs(checker.flags, PRESENT | SUSPECT) for seq in range(a, b)]
    for seqs in batched(suspects, ROW_CHUNK):
        for _seq, body in _rows(entries.filter(seq__in=seqs).values_list("seq", "body")):
            fold.add(parse_entry(body), trusted=False)
        reds = Invoice.objects.filter(merchant=merchant, ledger_seq__in=seqs, original__isnull=False)
        fold.uncertain.update(reds.values_list("original__number", flat=True))
    return fold


def _check_invoices(
    merchant: Merchant, checker: LogChecker, progress: ProgressFn | None, started: float
) -> int:
    """Rows against entries, states against the fold, then entries without rows and number gaps."""
    fold = _fold_states(merchant, checker)
    serials = _Serials(list(NumberSegment.objects.filter(merchant=merchant).order_by("pk")))
    flags, add, log = checker.flags, checker.findings.add, merchant.uscc
    entries = LogEntry.objects.filter(merchant=merchant)
    total = Invoice.objects.filter(merchant=merchant).count()
    done, last_pk = 0, 0
    while True:
        chunk = list(
            Invoice.objects.filter(merchant=merchant, pk__gt=last_pk)
            .select_related("original")
            .order_by("pk")[:ROW_CHUNK]
        )
        if not chunk:
            break
        last_pk = chunk[-1].pk
        lines: dict[int, list[InvoiceLine]] = {invoice.pk: [] for invoice in chunk}
        for line in InvoiceLine.objects.filter(invoice_id__in=list(lines)).order_by("invoice_id", "no"):
            lines[line.invoice_id].append(line)
        wanted = [i.ledger_seq for i in chunk if i.ledger_seq is not None and 0 <= i.ledger_seq < len(flags)]
        bodies = dict(_rows(entries.filter(seq__in=wanted).values_list("seq", "body")))
        for invoice in chunk:
            serials.see(invoice.number)
            found = _check_row(log, invoice, lines=lines[invoice.pk], bodies=bodies, flags=flags, fold=fold)
            for finding in found:
                add(finding)
        done += len(chunk)
        if progress:
            progress(Progress(log, "invoices", done, total, time.perf_counter() - started))
    _entries_without_rows(merchant, checker)
    for finding in serials.findings(log):
        add(finding)
    return done


def _check_row(
    log: str,
    invoice: Invoice,
    *,
    lines: list[InvoiceLine],
    bodies: dict[int, bytes],
    flags: bytearray,
    fold: StateFold,
) -> list[Finding]:
    seq = invoice.ledger_seq
    if seq is None:
        return [Finding(FindingCode.INVOICE_WITHOUT_ENTRY, log, number=invoice.number, variant="no_seq")]
    if not 0 <= seq < len(flags) or not flags[seq] & PRESENT or seq not in bodies:
        code = FindingCode.INVOICE_WITHOUT_ENTRY
        return [Finding(code, log, index=seq, number=invoice.number, variant="missing")]
    flags[seq] |= COVERED
    if flags[seq] & SUSPECT:
        return []  # the altered entry is already reported; this row cannot be checked against it
    entry = parse_entry(bytes(bodies[seq]))
    if entry is None:
        flags[seq] |= SUSPECT
        return [Finding(FindingCode.ALTERED_ENTRY, log, index=seq, variant="unparsable")]
    try:
        core_lines = tuple(core_line(line, invoice) for line in lines)
        document = document_for(invoice, core_lines)
    except (FapiaoError, ValueError, ArithmeticError, LookupError) as error:
        code = FindingCode.INVOICE_MISMATCH
        params = {"error": str(error)}
        return [Finding(code, log, index=seq, number=invoice.number, variant="unreadable", params=params)]
    return invoice_findings(
        log=log,
        number=invoice.number,
        index=seq,
        row_document=document,
        entry=entry,
        origin=invoice.origin,
        state=invoice.state,
        expected_state=fold.expected_state(invoice.number, invoice.colour, core_lines),
        stored={
            "total_amount": format_money(invoice.total_amount),
            "total_tax": format_money(invoice.total_tax),
            "total_with_tax": format_money(invoice.total_with_tax),
        },
    )


def _entries_without_rows(merchant: Merchant, checker: LogChecker) -> None:
    """Entries (other than voids) that no invoice row points at."""
    orphans = [seq for a, b in flag_runs(checker.flags, PRESENT) for seq in range(a, b)]
    shown = orphans[: checker.findings.cap]
    numbers: dict[int, str | None] = {}
    if shown:
        rows = LogEntry.objects.filter(merchant=merchant, seq__in=shown).values_list("seq", "body")
        for seq, body in _rows(rows):
            entry = parse_entry(bytes(body))
            number = entry["invoice"].get("number") if entry else None
            numbers[seq] = number if isinstance(number, str) else None
    for seq in orphans:
        number = numbers.get(seq)
        checker.findings.add(
            Finding(FindingCode.ENTRY_WITHOUT_INVOICE, merchant.uscc, index=seq, number=number)
        )
