"""The batch-issuing spreadsheet (XLSX or CSV): one row, one invoice with one line.

:func:`read_batch` returns ``(records, problems)`` and never raises on a bad row or a bad
file: every problem is a value naming the spreadsheet row (the header is row 1) and the
column.  Each good row is already turned into the body of ``POST /api/v1/invoices`` and
checked with the same rules as the API (:func:`fapiao.core.invoice.parse_invoice_request`),
so a row that passes here is issued as it was previewed.  Nothing here touches the database.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from fapiao.core.entry import exclusive_unit_price, normalise_text, number_text, rate_code
from fapiao.core.errors import FieldError, InvalidValueError, ValidationFailed, _
from fapiao.core.invoice import parse_invoice_request
from fapiao.core.money import parse_decimal
from fapiao.core.tax import resolve_rate
from fapiao.formats.safezip import UnsafeZipError, ZipLimits
from fapiao.formats.spreadsheet import SheetLimits, SpreadsheetError, read_rows

MAX_ROWS = 1000
MAX_BYTES = 5 * 1024 * 1024
FLOAT_SAFE = 2**53  # larger whole numbers lose digits as a spreadsheet number
# A batch sheet has 12 columns and at most 1,000 rows: room for notes beside it, nothing like a bomb.
SHEET_LIMITS = SheetLimits(max_cols=1024, max_cells=200_000, max_elements=250_000)


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # the Chinese header, as the template writes it
    required: bool = False
    text: bool = False  # formatted as text in the template (long digit strings)


COLUMNS: tuple[Column, ...] = (
    Column("buyer_name", "购买方名称", required=True),
    Column("buyer_tax_id", "购买方纳税人识别号", text=True),
    Column("kind", "发票种类"),
    Column("item_name", "项目名称", required=True),
    Column("tax_code", "税收分类编码", text=True),
    Column("spec", "规格型号"),
    Column("unit", "单位"),
    Column("quantity", "数量", required=True),
    Column("unit_price", "单价", required=True),
    Column("price_includes_tax", "单价含税"),
    Column("tax_rate", "税率", required=True),
    Column("remark", "备注"),
)
HEADER = [f"{column.label} {column.key}" for column in COLUMNS]
EXAMPLE = [
    "北京买方贸易有限公司",
    "91110000MA01XKQ2TQ",
    "普通发票",
    "*信息技术服务*软件开发",
    "3040201000000000000",
    "",
    "项",
    "1",
    "1,000.00",
    "否",
    "6%",
    "",
]
KINDS = {
    **dict.fromkeys(("", "普通发票", "普票", "ordinary"), "ordinary"),
    **dict.fromkeys(("专用发票", "增值税专用发票", "专票", "special"), "special"),
}
YES = {"是", "含税", "y", "yes", "true", "1"}
NO = {"", "否", "不含税", "n", "no", "false", "0"}
# Where the API's field paths land in the spreadsheet.
PATH_TO_COLUMN = {
    "kind": "kind",
    "buyer.name": "buyer_name",
    "buyer.tax_id": "buyer_tax_id",
    "remark": "remark",
    "lines": "unit_price",
    "lines.0.name": "item_name",
    "lines.0.tax_code": "tax_code",
    "lines.0.spec": "spec",
    "lines.0.unit": "unit",
    "lines.0.quantity": "quantity",
    "lines.0.unit_price": "unit_price",
    "lines.0.tax_rate": "tax_rate",
    "lines.0.amount": "unit_price",
    "lines.0.tax": "tax_rate",
}


@dataclass(frozen=True)
class RowProblem:
    """Why a row (``row`` 0: the whole file) cannot be issued; ``message`` is an English msgid."""

    row: int
    field: str
    message: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def render(self, translate: Any = None) -> str:
        text = translate(self.message) if translate else self.message
        return text.format(**self.params) if self.params else text


@dataclass(frozen=True)
class BatchRecord:
    """A good row: the API body to issue and what the preview shows."""

    row: int
    payload: dict[str, Any]
    buyer_name: str
    total_with_tax: int


def read_batch(
    data: bytes, filename: str, *, on: date, zip_limits: ZipLimits | None = None
) -> tuple[list[BatchRecord], list[RowProblem]]:
    """Read and check every row of an uploaded batch file for invoices dated ``on``.

    An XLSX is an archive: it is opened only if it passes ``zip_limits`` (the upload guard's
    settings; the defaults of :class:`ZipLimits` when not given) and :data:`SHEET_LIMITS`.
    """
    data_rows, positions, problem = _data_rows(data, filename, zip_limits or ZipLimits())
    if problem is not None:
        return [], [problem]
    records: list[BatchRecord] = []
    problems: list[RowProblem] = []
    for number, cells in data_rows:
        values = {key: cells[index] if index < len(cells) else None for key, index in positions.items()}
        record, row_problems = _read_row(number, values, on)
        if record is not None:
            records.append(record)
        problems.extend(row_problems)
    return records, problems


Rows = list[tuple[int, Sequence[object]]]


def _data_rows(
    data: bytes, filename: str, zip_limits: ZipLimits
) -> tuple[Rows, dict[str, int], RowProblem | None]:
    """The non-blank data rows (with their spreadsheet row numbers) and the column positions, or
    the one problem that makes the whole file unusable."""
    if len(data) > MAX_BYTES:
        return [], {}, RowProblem(0, "", _("The file is larger than {max} MB."), {"max": MAX_BYTES // 2**20})
    suffix = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    if suffix not in {"csv", "xlsx"}:
        return [], {}, RowProblem(0, "", _("Upload the template as an .xlsx or .csv file."))
    try:
        rows = list(_xlsx_rows(data, zip_limits) if suffix == "xlsx" else _csv_rows(data))
    except (UnsafeZipError, SpreadsheetError) as refused:  # a zip bomb or a sheet too big to read
        return [], {}, RowProblem(0, "", refused.message, dict(refused.params))
    except Exception:  # any unreadable file is one problem, never a traceback
        return [], {}, RowProblem(0, "", _("The file cannot be read as {kind}."), {"kind": suffix.upper()})
    if not rows:
        return [], {}, RowProblem(0, "", _("The file is empty."))
    positions, problem = _header(rows[0])
    data_rows: Rows = [
        (number, cells) for number, cells in enumerate(rows[1:], start=2) if any(_filled(cells))
    ]
    if problem is None and len(data_rows) > MAX_ROWS:
        problem = RowProblem(0, "", _("Put at most {max} rows in one file."), {"max": MAX_ROWS})
    if problem is None and not data_rows:
        problem = RowProblem(0, "", _("The file has a header but no rows to issue."))
    return data_rows, positions, problem


def _filled(cells: Sequence[object]) -> Iterator[bool]:
    return (cell is not None and str(cell).strip() != "" for cell in cells)


def _xlsx_rows(data: bytes, zip_limits: ZipLimits) -> Iterator[tuple[object, ...]]:
    rows = read_rows(data, zip_limits=zip_limits, limits=SHEET_LIMITS, max_rows=MAX_ROWS + 52)
    for count, row in enumerate(rows):
        if count > MAX_ROWS + 50:  # header, blank rows: enough to say "too many rows"
            yield ("…",)
            break
        yield row


def _csv_rows(data: bytes) -> Iterator[tuple[object, ...]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030")  # what Excel on a Chinese Windows saves as "CSV"
    if "\x00" in text:
        raise ValueError("NUL in a CSV file")
    for row in csv.reader(io.StringIO(text)):
        yield tuple(row)


def _header(cells: Sequence[object]) -> tuple[dict[str, int], RowProblem | None]:
    known: dict[str, str] = {}
    for column in COLUMNS:
        for spelling in (column.key, column.label, f"{column.label} {column.key}"):
            known[normalise_text(spelling).lower()] = column.key
    positions: dict[str, int] = {}
    for index, cell in enumerate(cells):
        key = known.get(" ".join(normalise_text(str(cell or "")).split()).lower())
        if key is not None and key not in positions:
            positions[key] = index
    missing = [f"{c.label} {c.key}" for c in COLUMNS if c.required and c.key not in positions]
    if missing:
        return positions, RowProblem(
            1, "", _("The header lacks these columns: {columns}. Start from the template."),
            {"columns": "、".join(missing)},
        )  # fmt: skip
    return positions, None


def _cell_text(value: object, column: str) -> str:
    """A cell as text; a number that lost digits in the spreadsheet is an error."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= FLOAT_SAFE:
            message = _("This long number lost digits as a spreadsheet number; format the column as text.")
            raise InvalidValueError(message, code="lost_digits")
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, int):
        return str(value)
    return " ".join(normalise_text(str(value)).split()) if column != "remark" else str(value).strip()


def _read_row(number: int, cells: dict[str, object], on: date) -> tuple[BatchRecord | None, list[RowProblem]]:
    problems: list[RowProblem] = []

    def problem(column: str, error: InvalidValueError | FieldError) -> None:
        problems.append(RowProblem(number, column, error.message, dict(error.params)))

    text: dict[str, str] = {}
    for column in COLUMNS:
        try:
            text[column.key] = _cell_text(cells.get(column.key), column.key)
        except InvalidValueError as error:
            problem(column.key, error)
            text[column.key] = ""
    line: dict[str, Any] = {"name": text["item_name"]}
    for key in ("tax_code", "spec", "unit"):
        if text[key]:
            line[key] = text[key]
    converted = _numbers(text, on, problem)
    line.update(converted)
    kind = KINDS.get(text["kind"].lower())
    if kind is None:
        problems.append(RowProblem(number, "kind", _("Write 普通发票 or 专用发票 (empty means 普通发票).")))
    buyer: dict[str, Any] = {"name": text["buyer_name"]}
    if text["buyer_tax_id"]:
        buyer["tax_id"] = text["buyer_tax_id"].upper()
    payload: dict[str, Any] = {"kind": kind or "ordinary", "buyer": buyer, "lines": [line]}
    if text["remark"]:
        payload["remark"] = text["remark"]
    try:
        draft = parse_invoice_request(payload, on=on)
    except ValidationFailed as failed:
        taken = {p.field for p in problems}
        for found in failed.errors:
            at = PATH_TO_COLUMN.get(found.field, "")
            if at not in taken or at == "":
                problem(at, found)
        return None, problems
    if problems:
        return None, problems
    return BatchRecord(number, payload, draft.buyer.name, draft.total_with_tax), []


def _numbers(text: dict[str, str], on: date, problem: Any) -> dict[str, str]:
    """Quantity, unit price (converted when it includes tax) and rate as API strings."""

    found: dict[str, str] = {}
    for key, target in (("quantity", "quantity"), ("unit_price", "unit_price")):
        if not text[key]:
            problem(key, InvalidValueError(_("This field is required."), code="required"))
            continue
        try:
            found[target] = number_text(text[key])
            parse_decimal(found[target])
        except InvalidValueError as error:
            problem(key, error)
            found.pop(target, None)
    if not text["tax_rate"]:
        problem("tax_rate", InvalidValueError(_("This field is required."), code="required"))
    else:
        try:
            found["tax_rate"] = rate_code(text["tax_rate"], on)
        except InvalidValueError as error:
            problem("tax_rate", error)
    includes = text["price_includes_tax"].lower()
    if includes not in YES | NO:
        problem("price_includes_tax", InvalidValueError(_("Write 是 or 否."), code="bad_choice"))
    elif includes in YES and "unit_price" in found and "tax_rate" in found:
        try:
            price = Decimal(found["unit_price"])
        except InvalidOperation:  # pragma: no cover - checked by parse_decimal above
            return found
        found["unit_price"] = format(exclusive_unit_price(price, resolve_rate(found["tax_rate"], on)), "f")
    return found
