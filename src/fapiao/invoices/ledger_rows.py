"""The invoice half of ``fapiao ledger verify``: invoice rows against the entries they point at.

Each row is rebuilt into its ledger document and compared with the entry's; each blue
invoice's state with what its log's red-letter and void entries fold to; entries that no row
points at are named, and every number segment is checked for gaps.  Run inside the same
snapshot as the log's own check (:mod:`fapiao.ledger.verify_log`), whose flags say which
entries are present and trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice

from fapiao.accounts.models import Merchant, NumberSegment
from fapiao.core.choices import EntryKind, Origin
from fapiao.core.errors import FapiaoError
from fapiao.core.identifiers import format_invoice_number
from fapiao.core.ledger_check import (
    COVERED,
    PRESENT,
    SUSPECT,
    Finding,
    FindingCode,
    LogChecker,
    StateFold,
    flag_runs,
    invoice_findings,
    parse_entry,
)
from fapiao.core.money import format_money
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.invoices.rows import core_line, document_for
from fapiao.ledger.models import LogEntry
from fapiao.ledger.verify_log import rows as _rows

ROW_CHUNK = 500  # invoice rows per query


def batched(items: Iterable[int], size: int) -> Iterator[list[int]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


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
    # Imported red invoices take from their originals by their ``import`` entries (a kind not
    # folded by the log pass, which cannot tell a red invoice's import from a blue one's).
    imported_reds = Invoice.objects.filter(
        merchant=merchant, origin=Origin.IMPORTED, original__isnull=False, ledger_seq__isnull=False
    ).values_list("ledger_seq", flat=True)
    flags = checker.flags
    seqs_of_reds = [seq for seq in imported_reds if seq is not None and 0 <= seq < len(flags)]
    trusted = [seq for seq in seqs_of_reds if flags[seq] & (PRESENT | SUSPECT) == PRESENT]
    imports = entries.filter(kind=EntryKind.IMPORT)
    for seqs in batched(sorted(trusted), ROW_CHUNK):
        for _seq, body in _rows(imports.filter(seq__in=seqs).values_list("seq", "body")):
            fold.add(parse_entry(body))
    suspects = [seq for a, b in flag_runs(checker.flags, PRESENT | SUSPECT) for seq in range(a, b)]
    for seqs in batched(suspects, ROW_CHUNK):
        for _seq, body in _rows(entries.filter(seq__in=seqs).values_list("seq", "body")):
            fold.add(parse_entry(body), trusted=False)
        reds = Invoice.objects.filter(merchant=merchant, ledger_seq__in=seqs, original__isnull=False)
        fold.uncertain.update(reds.values_list("original__number", flat=True))
    return fold


def check_invoices(
    merchant: Merchant, checker: LogChecker, progress: Callable[[str, int, int], None] | None
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
        # No row of the chunk points into this log (say, another merchant's invoice moved here):
        # an empty IN () is no query at all.
        bodies = dict(_rows(entries.filter(seq__in=wanted).values_list("seq", "body"))) if wanted else {}
        for invoice in chunk:
            serials.see(invoice.number)
            found = _check_row(log, invoice, lines=lines[invoice.pk], bodies=bodies, flags=flags, fold=fold)
            for finding in found:
                add(finding)
        done += len(chunk)
        if progress:
            progress("invoices", done, total)
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
    """Entries (other than voids) that no invoice row points at.

    An entry superseded by a later ``restore`` entry for the same number is not an orphan: a
    recovery case brought the lost row back, and the row now points at the restore entry.
    """
    orphans = [seq for a, b in flag_runs(checker.flags, PRESENT) for seq in range(a, b)]
    if not orphans:
        return
    restored = _restored_numbers(merchant, checker.flags)
    # Bodies are read only where they matter: the first ``cap`` orphans (their numbers are shown)
    # and, when the log holds restore entries, every orphan (one of them may be superseded).
    readable = orphans if restored else orphans[: checker.findings.cap]
    numbers: dict[int, str | None] = {}
    for chunk in batched(readable, 1000):
        rows = LogEntry.objects.filter(merchant=merchant, seq__in=chunk).values_list("seq", "body")
        for seq, body in _rows(rows):
            entry = parse_entry(bytes(body))
            number = entry["invoice"].get("number") if entry else None
            numbers[seq] = number if isinstance(number, str) else None
    for seq in orphans:
        number = numbers.get(seq)
        if number is not None and restored.get(number, -1) > seq:
            continue
        checker.findings.add(
            Finding(FindingCode.ENTRY_WITHOUT_INVOICE, merchant.uscc, index=seq, number=number)
        )


def _restored_numbers(merchant: Merchant, flags: bytearray) -> dict[str, int]:
    """Number -> latest trusted ``restore`` entry that an invoice row points at."""
    found: dict[str, int] = {}
    candidates = LogEntry.objects.filter(merchant=merchant, kind=EntryKind.RESTORE).values_list("seq", "body")
    for seq, body in _rows(candidates):
        if not 0 <= seq < len(flags) or flags[seq] & SUSPECT or not flags[seq] & COVERED:
            continue
        entry = parse_entry(bytes(body))
        if entry is None or entry.get("kind") != EntryKind.RESTORE:
            continue
        number = entry["invoice"].get("number")
        if isinstance(number, str):
            found[number] = max(found.get(number, -1), seq)
    return found
