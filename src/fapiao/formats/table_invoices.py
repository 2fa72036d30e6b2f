"""Invoices from another system's CSV or XLSX export, read through a named column mapping.

The mapping is a :class:`~fapiao.formats.mapping.ColumnMapping`.

:func:`stream_table` gives the invoices one at a time (an invoice is a run of adjacent rows with
the same code and number), :func:`read_table` all of them. Problems name the spreadsheet row (the
header row's number is the mapping's ``header_row``) and the column. A bad row is a problem of its
invoice, never of the whole file; a file that cannot be read at all (its encoding, its zip, a
mapped column missing from the header) is one problem of the file. CSV encodings: a BOM decides
(UTF-8, UTF-16); otherwise UTF-8 is tried, then GBK (read as GB18030, its superset), unless the
mapping fixes one. Text that decoded but holds U+FFFD or the "锟斤拷" of a GBK↔UTF-8 round trip has
been mis-encoded before it reached us: a problem too.

XLSX goes through :func:`fapiao.formats.spreadsheet.read_rows` (the zip guard, then a streaming
count of every part).  A number cell is a binary float: amounts are read by its shortest decimal
form (:func:`fapiao.formats.amounts.fen_from_cell`), and an invoice number stored as a number is
refused when it could have lost digits (above 2**53): format that column as text.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fapiao.core.errors import FieldError, InvalidValueError, _
from fapiao.formats.amounts import decimal_text, fen_from_cell
from fapiao.formats.einvoice_xml import normalise_rate, parse_date
from fapiao.formats.mapping import HEADER_FIELDS, ColumnMapping
from fapiao.formats.records import (
    InvoiceLine,
    InvoiceRecord,
    ReadProblem,
    ReadResult,
    check_record,
)
from fapiao.formats.safezip import UnsafeZipError, ZipLimits
from fapiao.formats.spreadsheet import SheetLimits, SpreadsheetError, read_rows

MAX_TABLE_BYTES = 64 * 2**20
MAX_ROWS = 200_000
FLOAT_SAFE = 2**53
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MOJIBAKE = ("\ufffd", "锟斤拷")
TABLE_ZIP_LIMITS = ZipLimits(max_total_bytes=256 * 2**20)
TABLE_SHEET_LIMITS = SheetLimits(
    max_cols=256, max_cells=8_000_000, max_elements=2_000_000, max_part_bytes=200 * 2**20
)
KINDS = {"普通发票": "ordinary", "普票": "ordinary", "ordinary": "ordinary", "专用发票": "special",
         "增值税专用发票": "special", "专票": "special", "special": "special"}  # fmt: skip
COLOURS = {"蓝字": "blue", "blue": "blue", "正数": "blue", "红字": "red", "red": "red", "负数": "red"}


@dataclass
class _Invoice:
    key: tuple[str, str]
    row: int
    header: dict[str, Any]
    lines: list[InvoiceLine]
    problems: list[ReadProblem]


def read_table(data: bytes, mapping: ColumnMapping, *, max_rows: int = MAX_ROWS) -> ReadResult:
    """Read a CSV or XLSX export (decided by the bytes) with ``mapping``; never raises."""
    records: list[InvoiceRecord] = []
    problems: list[ReadProblem] = []
    for record, found in stream_table(data, mapping, max_rows=max_rows):
        if record is not None:
            records.append(record)
        problems.extend(found)
    return ReadResult(table_kind(data), tuple(records), tuple(problems))


def table_kind(data: bytes) -> str:
    return "xlsx" if data.startswith((b"PK\x03\x04", _OLE2)) else "csv"


def stream_table(
    data: bytes, mapping: ColumnMapping, *, max_rows: int = MAX_ROWS
) -> Iterator[tuple[InvoiceRecord | None, tuple[ReadProblem, ...]]]:
    """The export's invoices one at a time, each with its problems (``record`` is its index in the
    stream), in constant memory but for the set of numbers seen.  ``(None, problems)`` is a
    problem of the whole file and ends the stream; it may come after some invoices (a damaged
    XLSX is found damaged where it is damaged), and it rejects them all.  Never raises."""
    if len(data) > MAX_TABLE_BYTES:
        message = _("The file is larger than {max} MB.")
        yield None, _of_file(FieldError("", "too_large", message, {"max": MAX_TABLE_BYTES // 2**20}))
        return
    if data.startswith(_OLE2):
        message = _(
            "The spreadsheet is password-protected or in the old .xls format; save it as a plain .xlsx."
        )
        yield None, _of_file(FieldError("", "password_protected", message))
        return
    try:
        limit = max_rows + mapping.header_row + 1  # one row more than allowed: enough to know
        rows = _xlsx_rows(data, limit) if data.startswith(b"PK\x03\x04") else _csv_rows(data, mapping, limit)
        yield from _stream_rows(rows, mapping, max_rows)
    except (UnsafeZipError, SpreadsheetError) as error:
        yield None, _of_file(FieldError("", error.code, error.message, dict(error.params)))
    except _Unreadable as error:
        yield None, _of_file(error.problem)
    except Exception:  # openpyxl and csv meeting a damaged file raise many kinds of error
        message = _("The file is damaged or truncated and cannot be read.")
        yield None, _of_file(FieldError("", "damaged", message))


def _of_file(problem: FieldError) -> tuple[ReadProblem, ...]:
    return (ReadProblem(problem.field, problem.code, problem.message, dict(problem.params)),)


class _Unreadable(Exception):
    def __init__(self, problem: FieldError) -> None:
        super().__init__(problem.code)
        self.problem = problem


def _xlsx_rows(data: bytes, limit: int) -> Iterator[Sequence[object]]:
    return read_rows(data, zip_limits=TABLE_ZIP_LIMITS, limits=TABLE_SHEET_LIMITS, max_rows=limit)


def _csv_rows(data: bytes, mapping: ColumnMapping, limit: int) -> Iterator[Sequence[object]]:
    text = _decode(data, mapping.encoding)
    for bad in _MOJIBAKE:
        if bad in text:
            message = _(
                "The file's text has been mis-encoded before (it holds {text}); export it again as UTF-8."
            )
            raise _Unreadable(FieldError("", "mis_encoded", message, {"text": bad}))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=mapping.delimiter)
    for count, row in enumerate(reader):
        if count >= limit:
            break
        yield row


def _decode(data: bytes, encoding: str) -> str:
    if data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif encoding == "utf-8":
        candidates = ["utf-8"]
    elif encoding == "gbk":
        candidates = ["gb18030"]
    else:
        candidates = ["utf-8", "gb18030"]
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            continue
    shown = "UTF-8" if candidates == ["utf-8"] else ("GBK" if candidates == ["gb18030"] else "UTF-8 or GBK")
    message = _("The file is not valid {encoding} text.")
    raise _Unreadable(FieldError("", "bad_encoding", message, {"encoding": shown}))


def _stream_rows(
    rows: Iterator[Sequence[object]], mapping: ColumnMapping, max_rows: int
) -> Iterator[tuple[InvoiceRecord | None, tuple[ReadProblem, ...]]]:
    header: Sequence[object] = ()
    for number, row in enumerate(rows, start=1):
        if number == mapping.header_row:
            header = row
            break
    positions, missing = _positions(header, mapping)
    if missing:
        yield None, tuple(ReadProblem(p.field, p.code, p.message, dict(p.params)) for p in missing)
        return
    seen: set[tuple[str, str]] = set()
    current: _Invoice | None = None
    index = 0
    for number, row in enumerate(rows, start=mapping.header_row + 1):
        if number - mapping.header_row > max_rows:
            message = _("The file has more than {max} rows; split it.")
            yield None, _of_file(FieldError("", "too_many_rows", message, {"max": max_rows}))
            return
        cells = {key: _cell(row, position) for key, position in positions.items()}
        if all(value is None for value in cells.values()):
            continue
        key = _key(cells, number)
        if current is not None and key != current.key:
            yield _finished(current, index, mapping)
            index, current = index + 1, None
        if current is None:
            current = _Invoice(key, number, {}, [], [])
            if key in seen:
                message = _(
                    "Row {row} belongs to an invoice whose rows ended earlier; keep its rows together."
                )
                current.problems.append(
                    ReadProblem("number", "rows_not_adjacent", message, {"row": number}, row=number)
                )
            seen.add(key)
        _add_row(current, number, cells, mapping)
    if current is not None:
        yield _finished(current, index, mapping)


def _key(cells: dict[str, object], row: int) -> tuple[str, str]:
    number, code = cells.get("number"), cells.get("code")
    return (str(code) if code is not None else "", str(number) if number is not None else f"?row{row}")


def _finished(
    invoice: _Invoice, index: int, mapping: ColumnMapping
) -> tuple[InvoiceRecord, tuple[ReadProblem, ...]]:
    record = _record(invoice, mapping)
    problems = [_with_record(problem, index) for problem in invoice.problems]
    problems.extend(
        ReadProblem(p.field, p.code, p.message, p.params, record=index, row=invoice.row)
        for p in check_record(record)
    )
    return record, tuple(problems)


def _positions(header: Sequence[object], mapping: ColumnMapping) -> tuple[dict[str, int], list[FieldError]]:
    names = {
        str(cell).strip().lstrip("\ufeff"): index for index, cell in enumerate(header) if cell is not None
    }
    positions: dict[str, int] = {}
    missing: list[FieldError] = []
    for key, column in mapping.columns.items():
        if column in names:
            positions[key] = names[column]
        else:
            message = _("The file has no column {column} (the mapping {mapping} reads {field} from it).")
            params = {"column": column, "mapping": mapping.name, "field": key}
            missing.append(FieldError(key, "column_missing", message, params))
    return positions, missing


def _cell(row: Sequence[object], index: int) -> object:
    value = row[index] if index < len(row) else None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _add_row(invoice: _Invoice, row: int, cells: dict[str, object], mapping: ColumnMapping) -> None:
    problems: list[FieldError] = []
    if not invoice.header:
        invoice.header = {name: cells.get(name) for name in HEADER_FIELDS}
        invoice.header["number"] = _identity("number", cells.get("number"), problems)
        invoice.header["code"] = _identity("code", cells.get("code"), problems)
    else:
        for name in HEADER_FIELDS:
            if (
                cells.get(name) is not None
                and name not in ("number", "code")
                and cells[name] != invoice.header.get(name)
            ):
                message = _(
                    "Row {row} gives {field} as {value}, but an earlier row of this invoice gives {earlier}."
                )
                params = {
                    "row": row,
                    "field": name,
                    "value": str(cells[name])[:40],
                    "earlier": str(invoice.header.get(name))[:40],
                }
                problems.append(FieldError(name, "rows_disagree", message, params))
    if mapping.has_lines:
        position = len(invoice.lines)
        prefix = f"lines.{position}."
        invoice.lines.append(
            InvoiceLine(
                name=_text(cells.get("line_name")),
                quantity=_number_text(cells.get("quantity")),
                unit_price=_number_text(cells.get("unit_price")),
                amount_fen=_fen(prefix + "amount_fen", cells.get("amount"), mapping, problems, required=True),
                tax_rate=_rate(cells.get("tax_rate")),
                tax_fen=_fen(prefix + "tax_fen", cells.get("tax"), mapping, problems, required=False),
                spec=_text(cells.get("spec")),
                unit=_text(cells.get("unit")),
                tax_code=_text(cells.get("tax_code")),
            )
        )
        if cells.get("line_name") is None:
            problems.append(
                FieldError(prefix + "name", "missing", _("Row {row} has no item name."), {"row": row})
            )
    invoice.problems.extend(ReadProblem(p.field, p.code, p.message, p.params, row=row) for p in problems)


def _record(invoice: _Invoice, mapping: ColumnMapping) -> InvoiceRecord:
    header = invoice.header
    problems: list[FieldError] = []
    amount = _fen("total_amount_fen", header.get("total_amount"), mapping, problems, required=False)
    tax = _fen("total_tax_fen", header.get("total_tax"), mapping, problems, required=False)
    total = _fen("total_with_tax_fen", header.get("total_with_tax"), mapping, problems, required=False)
    lines = tuple(invoice.lines)
    if not mapping.has_lines and amount is not None:
        lines = (InvoiceLine(mapping.default_line_name, None, None, amount, None, tax),)
    if amount is None and lines and all(line.amount_fen is not None for line in lines):
        amount = sum(line.amount_fen or 0 for line in lines)
    if tax is None and lines and all(line.tax_fen is not None for line in lines):
        tax = sum(line.tax_fen or 0 for line in lines)
    if total is None and amount is not None and tax is not None:
        total = amount + tax
    issued_on = _date(header.get("issued_on"), problems)
    for name in ("number", "seller_tax_id", "seller_name", "buyer_name"):
        if header.get(name) is None:
            problems.append(
                FieldError(
                    name, "missing", _("Row {row} has no {field}."), {"row": invoice.row, "field": name}
                )
            )
    invoice.problems.extend(
        ReadProblem(p.field, p.code, p.message, p.params, row=invoice.row) for p in problems
    )
    return InvoiceRecord(
        number=_text(header.get("number")),
        issued_on=issued_on,
        seller_tax_id=(_text(header.get("seller_tax_id")) or "").upper() or None,
        seller_name=_text(header.get("seller_name")),
        buyer_tax_id=(_text(header.get("buyer_tax_id")) or "").upper() or None,
        buyer_name=_text(header.get("buyer_name")),
        total_amount_fen=amount,
        total_tax_fen=tax,
        total_with_tax_fen=total,
        lines=lines,
        kind=KINDS.get(_text(header.get("kind")) or ""),
        colour=COLOURS.get(_text(header.get("colour")) or ""),
        original_number=_text(header.get("original_number")),
        remark=_text(header.get("remark")),
        code=_text(header.get("code")),
        row=invoice.row,
    )


def _with_record(problem: ReadProblem, index: int) -> ReadProblem:
    return ReadProblem(
        problem.field, problem.code, problem.message, problem.params, record=index, row=problem.row
    )


def _identity(field: str, value: object, problems: list[FieldError]) -> str | None:
    """An invoice number or code exactly as written; a number cell only when it cannot have lost digits."""
    if value is None:
        return None
    if isinstance(value, bool) or (
        isinstance(value, float) and not (value.is_integer() and abs(value) < FLOAT_SAFE)
    ):
        message = _(
            "The {field} {value} is stored as a number and may have lost digits; format the column as text."
        )
        problems.append(
            FieldError(field, "number_as_float", message, {"field": field, "value": str(value)[:40]})
        )
        return None
    if isinstance(value, float):
        return str(int(value))
    return str(value).strip()


def _fen(
    field: str, value: object, mapping: ColumnMapping, problems: list[FieldError], *, required: bool
) -> int | None:
    if value is None:
        if required:
            problems.append(FieldError(field, "missing", _("The amount is missing."), {}))
        return None
    try:
        return fen_from_cell(value, thousands=mapping.thousands)
    except InvalidValueError as error:
        problems.append(error.at(field))
        return None


def _date(value: object, problems: list[FieldError]) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if value is None:
        problems.append(FieldError("issued_on", "missing", _("The date is missing."), {}))
        return None
    parsed = parse_date(str(value))
    if parsed is None:
        problems.append(
            FieldError(
                "issued_on", "bad_date", _("The date {value} cannot be read."), {"value": str(value)[:40]}
            )
        )
    return parsed


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float | Decimal):
        return decimal_text(value)
    return str(value).strip() or None


def _number_text(value: object) -> str | None:
    return _text(value)


def _rate(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float | Decimal):
        return decimal_text(value)
    return normalise_rate(str(value))
