"""What every invoice reader returns: invoice records and row-level problems, never an exception.

A reader (:mod:`fapiao.formats.readers` chooses one by the bytes) gives a :class:`ReadResult`:
the :class:`InvoiceRecord` values it found, in file order, and every :class:`ReadProblem` it met.
A problem names the record it belongs to (``record``, an index into ``records``) or none (the file
as a whole: nothing in it may be imported), the source row when the file has rows, the field (a
dotted path such as ``lines.1.amount_fen``), a stable ``code`` and an English msgid ``message``
with ``{name}`` params that the caller translates.

Money is integer fen everywhere; quantities and unit prices keep the file's own digits as text.
An invoice's identity is kept as the file gives it: ``number`` (20 digits for a 数电票, 8 for a
legacy invoice) and, for a legacy invoice, its ``code`` (发票代码, 10 or 12 digits).
:func:`check_record` holds the checks every reader applies to what it read: the identity's shape,
the totals against each other, and every line added up against the totals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fapiao.core.claims import COMPARED_FIELDS
from fapiao.core.errors import FieldError, _
from fapiao.core.money import format_money

# What a claim is compared on, read as is (the date is given in ISO form by ``as_mapping``).
_CLAIMED = tuple(name for name in COMPARED_FIELDS if name != "issued_on")


@dataclass(frozen=True)
class InvoiceLine:
    """One line of an invoice; quantity and unit price keep the file's own digits."""

    name: str | None
    quantity: str | None
    unit_price: str | None
    amount_fen: int | None
    tax_rate: str | None  # "0.06"; a percentage converted, 免税/不征税 as exempt/not_taxable
    tax_fen: int | None
    spec: str | None = None
    unit: str | None = None
    tax_code: str | None = None


@dataclass(frozen=True)
class InvoiceRecord:
    """What a file says about one invoice; ``None`` where it does not say it."""

    number: str | None
    issued_on: date | None
    seller_tax_id: str | None
    seller_name: str | None
    buyer_tax_id: str | None
    buyer_name: str | None
    total_amount_fen: int | None
    total_tax_fen: int | None
    total_with_tax_fen: int | None
    lines: tuple[InvoiceLine, ...]
    kind: str | None = None  # "special" | "ordinary", when the file says
    colour: str | None = None  # "blue" | "red", when the file says
    original_number: str | None = None  # the blue invoice a red one reverses
    remark: str | None = None
    code: str | None = None  # 发票代码 of a legacy invoice (with an 8-digit number); None on a 数电票
    check_code: str | None = None  # 校验码 of a legacy invoice
    original_code: str | None = None  # the legacy blue invoice's code, with ``original_number``
    row: int | None = None  # where the record starts in the file: a spreadsheet row (header = 1)

    @property
    def identity(self) -> str | None:
        """The number as the system stores it: the 20 digits, or a legacy ``<代码>-<号码>``
        (:func:`fapiao.core.identifiers.validate_legacy_identity`)."""
        return _identity(self.code, self.number)

    @property
    def original_identity(self) -> str | None:
        return _identity(self.original_code, self.original_number)

    @property
    def is_red(self) -> bool:
        """Red when the file says so, or (when it does not say) when the total is negative."""
        if self.colour is not None:
            return self.colour == "red"
        return self.total_with_tax_fen is not None and self.total_with_tax_fen < 0

    def as_mapping(self) -> dict[str, object]:
        """The fields :func:`fapiao.core.claims.compare_claim` reads, leaving out those not found."""
        found: dict[str, object] = {
            key: getattr(self, key) for key in _CLAIMED if getattr(self, key) is not None
        }
        if self.identity is not None:
            found["number"] = self.identity
        if self.issued_on is not None:
            found["issued_on"] = self.issued_on.isoformat()
        return found

    def as_api(self) -> dict[str, Any]:
        """The record in the API's invoice shape: money as decimal strings, the date in ISO form."""
        shaped: dict[str, Any] = {
            "number": self.identity,
            "issued_on": self.issued_on.isoformat() if self.issued_on else None,
            "kind": self.kind,
            "colour": "red" if self.is_red else "blue",
            "seller": {"name": self.seller_name, "tax_id": self.seller_tax_id},
            "buyer": {"name": self.buyer_name, "tax_id": self.buyer_tax_id},
            "total_amount": _money(self.total_amount_fen),
            "total_tax": _money(self.total_tax_fen),
            "total_with_tax": _money(self.total_with_tax_fen),
            "lines": [
                {
                    "name": line.name,
                    "spec": line.spec,
                    "unit": line.unit,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "amount": _money(line.amount_fen),
                    "tax_rate": line.tax_rate,
                    "tax": _money(line.tax_fen),
                    "tax_code": line.tax_code,
                }
                for line in self.lines
            ],
            "original_number": self.original_identity,
            "remark": self.remark,
        }
        if self.code is not None:
            shaped["code"] = self.code
            shaped["check_code"] = self.check_code
        return shaped


@dataclass(frozen=True)
class ReadProblem(FieldError):
    """A :class:`FieldError` that also says which record (index) and which source row it is about."""

    record: int | None = None
    row: int | None = None

    def as_dict(self, translate: Callable[[str], str] | None = None) -> dict[str, Any]:
        shown: dict[str, Any] = {"code": self.code, "field": self.field, "message": self.render(translate)}
        if self.record is not None:
            shown["record"] = self.record
        if self.row is not None:
            shown["row"] = self.row
        return shown


@dataclass(frozen=True)
class ReadResult:
    """A file read: its format, its records and its problems (``file_problems`` reject every record)."""

    format: str
    records: tuple[InvoiceRecord, ...] = ()
    problems: tuple[ReadProblem, ...] = ()

    @property
    def file_problems(self) -> tuple[ReadProblem, ...]:
        return tuple(problem for problem in self.problems if problem.record is None)

    def problems_of(self, index: int) -> tuple[ReadProblem, ...]:
        return tuple(problem for problem in self.problems if problem.record == index)

    def accepted(self) -> list[InvoiceRecord]:
        """The records with no problem of their own, and none at all when the file has one."""
        if self.file_problems:
            return []
        refused = {problem.record for problem in self.problems}
        return [record for index, record in enumerate(self.records) if index not in refused]

    def as_json(self, translate: Callable[[str], str] | None = None) -> dict[str, Any]:
        return {
            "format": self.format,
            "invoices": [record.as_api() for record in self.records],
            "problems": [problem.as_dict(translate) for problem in self.problems],
        }


def problem(field: str, code: str, message: str, **params: Any) -> FieldError:
    return FieldError(field, code, message, params)


def attach(
    problems: Iterable[FieldError], *, record: int | None, row: int | None = None, prefix: str = ""
) -> list[ReadProblem]:
    """Field errors as problems of one record (or of the file when ``record`` is None)."""
    return [
        ReadProblem(
            prefix + error.field if error.field else prefix.rstrip("."),
            error.code,
            error.message,
            dict(error.params),
            record=record,
            row=row,
        )
        for error in problems
    ]


def file_result(format_name: str, problems: Iterable[FieldError]) -> ReadResult:
    """A file that yields no record: its problems, each about the file as a whole."""
    return ReadResult(format_name, (), tuple(attach(problems, record=None)))


def single_result(
    format_name: str, record: InvoiceRecord | None, problems: Iterable[FieldError]
) -> ReadResult:
    """A file that holds one invoice: its problems belong to that record (or to the file if none)."""
    if record is None:
        return file_result(format_name, problems)
    return ReadResult(format_name, (record,), tuple(attach(problems, record=0)))


def with_row(record: InvoiceRecord, row: int) -> InvoiceRecord:
    return dataclasses.replace(record, row=row)


# --- The checks every reader applies ------------------------------------------------------------------


def check_record(record: InvoiceRecord) -> list[FieldError]:
    """The identity's shape, the totals against each other and the lines against the totals."""
    return [*_check_identity(record), *_check_totals(record), *_check_lines(record)]


def _check_identity(record: InvoiceRecord) -> list[FieldError]:
    number, code = record.number, record.code
    if number is None:
        return []
    if code is None:
        if not _digits(number, 20):
            message = _("The invoice number {value} is not 20 digits.")
            return [problem("number", "not_20_digits", message, value=number)]
        return []
    found: list[FieldError] = []
    if not (_digits(code, 10) or _digits(code, 12)):
        message = _("The invoice code {value} is not 10 or 12 digits.")
        found.append(problem("code", "bad_invoice_code", message, value=code))
    if not _digits(number, 8):
        message = _("The number {value} of an invoice with a code is not 8 digits.")
        found.append(problem("number", "not_8_digits", message, value=number))
    return found


def _check_totals(record: InvoiceRecord) -> list[FieldError]:
    amount, tax, total = record.total_amount_fen, record.total_tax_fen, record.total_with_tax_fen
    found: list[FieldError] = []
    if amount is not None and tax is not None and total is not None and amount + tax != total:
        message = _("The totals do not add up: {amount} + {tax} is not {total}.")
        shown = {"amount": format_money(amount), "tax": format_money(tax), "total": format_money(total)}
        found.append(problem("total_with_tax_fen", "totals_inconsistent", message, **shown))
    if total is not None and record.colour is not None and total != 0 and (total < 0) != record.is_red:
        if record.is_red:
            message = _("The invoice is marked red-letter but its total {total} is not negative.")
        else:
            message = _("The invoice is marked blue but its total {total} is negative.")
        found.append(problem("total_with_tax_fen", "sign_mismatch", message, total=format_money(total)))
    return found


def _check_lines(record: InvoiceRecord) -> list[FieldError]:
    if not record.lines:
        message = _("The invoice has no lines that could be read, so its totals cannot be checked.")
        return [problem("lines", "no_lines", message)]
    found: list[FieldError] = []
    pairs = (("total_amount_fen", "amount_fen"), ("total_tax_fen", "tax_fen"))
    for total_field, line_field in pairs:
        total = getattr(record, total_field)
        values = [getattr(line, line_field) for line in record.lines]
        if total is None or any(value is None for value in values):
            continue  # the missing or unreadable value is already a problem of its own
        added = sum(values)
        if added != total:
            message = _("The lines add up to {lines}, but the invoice's total says {total}.")
            shown = {"lines": format_money(added), "total": format_money(total)}
            found.append(problem(total_field, "lines_do_not_add_up", message, **shown))
    return found


def _identity(code: str | None, number: str | None) -> str | None:
    if number is None:
        return None
    return f"{code}-{number}" if code else number


def _digits(text: str, count: int) -> bool:
    return len(text) == count and text.isascii() and text.isdigit()


def _money(fen: int | None) -> str | None:
    return format_money(fen) if fen is not None else None
