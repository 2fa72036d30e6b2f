"""The plan of an import (what ``--dry-run`` shows and ``--commit`` carries out): every record of
every file accepted, rejected with its reasons, or a duplicate.  Reads the database, writes nothing.

A record is a **duplicate** when the merchant's records already hold its number with the same date,
seller and 价税合计 (the same file imported twice), or an earlier record of this import carried the
same record; it is **rejected** when its file has a problem (nothing is taken from a damaged file),
when it has problems of its own (:mod:`fapiao.invoices.import_records`), when its number is already
taken by a different invoice, when an issued (销项) number belongs to another merchant, or when a
red-letter invoice's blue original is in neither the records nor the import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils.translation import gettext

from fapiao.accounts.models import Merchant
from fapiao.core.choices import Colour, Direction, InvoiceState, RecordStatus
from fapiao.core.errors import FieldError, _
from fapiao.formats.mapping import ColumnMapping
from fapiao.formats.readers import read_invoice_file
from fapiao.invoices.import_records import ImportInput, import_input, record_sha256
from fapiao.invoices.models import Invoice, OutgoingNumber

QUERY_CHUNK = 500


@dataclass(frozen=True)
class SourceFile:
    """One file given to an import: its name, where it was read from, its bytes' hash and size."""

    name: str
    path: str
    sha256: str
    size: int
    data: bytes = field(repr=False, compare=False)

    @classmethod
    def of(cls, name: str, path: str, data: bytes) -> SourceFile:
        return cls(name, path, hashlib.sha256(data).hexdigest(), len(data), data)


@dataclass
class PlannedRecord:
    file_sha256: str
    position: int
    number: str
    record_sha256: str
    status: RecordStatus
    reasons: list[dict[str, Any]] = field(default_factory=list)
    input: ImportInput | None = None


@dataclass
class PlannedFile:
    source: SourceFile
    format: str
    problems: list[dict[str, Any]]
    records: list[PlannedRecord]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.source.name,
            "sha256": self.source.sha256,
            "size": self.source.size,
            "format": self.format,
            "problems": [problem["code"] for problem in self.problems],
            **count_statuses(record.status for record in self.records),
        }


@dataclass
class Plan:
    files: list[PlannedFile]

    @property
    def records(self) -> list[PlannedRecord]:
        return [record for planned in self.files for record in planned.records]

    @property
    def accepted(self) -> list[PlannedRecord]:
        return [record for record in self.records if record.status is RecordStatus.ACCEPTED]

    def counts(self) -> dict[str, int]:
        return count_statuses(record.status for record in self.records)


def count_statuses(statuses: Iterable[str]) -> dict[str, int]:
    counts = {"read": 0, "accepted": 0, "rejected": 0, "duplicates": 0}
    for status in statuses:
        counts["read"] += 1
        counts["duplicates" if status == RecordStatus.DUPLICATE else str(status)] += 1
    return counts


def _reason(error: FieldError) -> dict[str, Any]:
    return {"code": error.code, "field": error.field, "message": error.render(gettext)}


def plan_import(
    *,
    merchant: Merchant,
    direction: Direction,
    sources: Sequence[SourceFile],
    mapping: ColumnMapping | None,
    today: date,
    done: frozenset[tuple[str, int]] = frozenset(),
) -> Plan:
    """Read every file and decide each record; ``done``: (file hash, position) a resumed run has
    already written, left out of the plan."""
    files: list[PlannedFile] = []
    seen_files: set[str] = set()
    for source in sources:
        if source.sha256 in seen_files:
            continue  # the same bytes given twice: read once
        seen_files.add(source.sha256)
        files.append(
            _read_file(source, mapping, merchant=merchant, direction=direction, today=today, done=done)
        )
    _check_against_records(merchant, direction, [r for f in files for r in f.records if r.input is not None])
    return Plan(files)


def _read_file(
    source: SourceFile,
    mapping: ColumnMapping | None,
    *,
    merchant: Merchant,
    direction: Direction,
    today: date,
    done: frozenset[tuple[str, int]],
) -> PlannedFile:
    result = read_invoice_file(source.data, mapping=mapping)
    file_problems = [_reason(problem) for problem in result.file_problems]
    records: list[PlannedRecord] = []
    for position, record in enumerate(result.records):
        if (source.sha256, position) in done:
            continue
        planned = PlannedRecord(
            source.sha256, position, record.identity or "", record_sha256(record), RecordStatus.ACCEPTED
        )
        reasons = [*file_problems, *(_reason(problem) for problem in result.problems_of(position))]
        if not reasons:
            found, problems = import_input(
                record, merchant_uscc=merchant.uscc, direction=direction, today=today
            )
            reasons = [_reason(problem) for problem in problems]
            planned.input = found
        if reasons:
            planned.status, planned.reasons, planned.input = RecordStatus.REJECTED, reasons, None
        records.append(planned)
    return PlannedFile(source, result.format, file_problems, records)


def _reject(record: PlannedRecord, code: str, message: str, **params: Any) -> None:
    record.status = RecordStatus.REJECTED
    record.reasons.append(_reason(FieldError("number", code, message, params)))
    record.input = None


def _check_against_records(merchant: Merchant, direction: Direction, candidates: list[PlannedRecord]) -> None:
    """Duplicates and conflicts with the merchant's records, other merchants' numbers, each other."""
    originals = {r.input.original_number for r in candidates if r.input and r.input.original_number}
    numbers = sorted({record.number for record in candidates} | originals)  # and stored blue originals
    existing: dict[str, tuple[date, str, int, str]] = {}
    foreign: set[str] = set()
    for start in range(0, len(numbers), QUERY_CHUNK):
        chunk = numbers[start : start + QUERY_CHUNK]
        rows = Invoice.objects.filter(merchant=merchant, number__in=chunk).values_list(
            "number", "issued_on", "seller_tax_id", "total_with_tax", "state"
        )
        existing.update({row[0]: row[1:] for row in rows})
        if direction is Direction.OUT:
            taken = OutgoingNumber.objects.filter(number__in=chunk).exclude(merchant=merchant)
            foreign.update(taken.values_list("number", flat=True))
    planned: dict[str, PlannedRecord] = {}
    for record in candidates:
        found = record.input
        assert found is not None
        fingerprint = (found.issued_on, found.seller_tax_id, found.total_with_tax)
        if record.number in foreign:
            _reject(
                record,
                "number_of_another_merchant",
                _("The number {value} is another merchant's invoice."),
                value=record.number,
            )
        elif record.number in existing:
            _against_existing(record, existing[record.number], fingerprint)
        elif record.number in planned:
            earlier = planned[record.number]
            if earlier.record_sha256 == record.record_sha256:
                record.status, record.input = RecordStatus.DUPLICATE, None
            else:
                message = _("The number {value} appears twice in this import with different contents.")
                _reject(record, "number_twice", message, value=record.number)
        elif (
            found.colour is Colour.RED
            and found.original_number not in existing
            and found.original_number not in planned
        ):
            message = _("The blue invoice {value} this red-letter invoice reverses is not in the records.")
            _reject(record, "original_not_found", message, value=found.original_number)
        else:
            planned[record.number] = record


def _against_existing(
    record: PlannedRecord, row: tuple[date, str, int, str], fingerprint: tuple[date, str, int]
) -> None:
    issued_on, seller, total, state = row
    if state == InvoiceState.REVERTED:
        message = _("The number {value} was imported before and that import was reverted.")
        _reject(record, "number_reverted", message, value=record.number)
    elif (issued_on, seller, total) == fingerprint:
        record.status, record.input = RecordStatus.DUPLICATE, None
    else:
        message = _("The number {value} is already in the records with a different date, seller or total.")
        _reject(record, "number_taken", message, value=record.number)
