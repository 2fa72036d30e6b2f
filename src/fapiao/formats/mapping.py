"""A named column mapping: which column of another system's CSV/XLSX export holds which invoice field.

A mapping is data (saved by name, e.g. as JSON, and chosen at import with ``--mapping NAME``)::

    ColumnMapping.from_dict({
        "name": "old-erp",
        "columns": {"number": "发票号码", "issued_on": "开票日期", "seller_tax_id": "销方税号", ...},
        "thousands": true,
    })

``columns`` maps our field names (:data:`FIELDS`) to the export's column headers.  Adjacent rows
that carry the same invoice (``code`` and ``number``) are that invoice's lines, in file order; the
header fields are taken from its first row and must be the same on the others.  When the export has no
line columns, each invoice is one line holding its totals, named ``default_line_name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from fapiao.core.errors import FieldError, _

#: Invoice-level fields, then line-level fields.
HEADER_FIELDS: Final = (
    "number",
    "code",
    "issued_on",
    "kind",
    "colour",
    "seller_name",
    "seller_tax_id",
    "buyer_name",
    "buyer_tax_id",
    "total_amount",
    "total_tax",
    "total_with_tax",
    "original_number",
    "remark",
)
LINE_FIELDS: Final = (
    "line_name",
    "spec",
    "unit",
    "quantity",
    "unit_price",
    "amount",
    "tax_rate",
    "tax",
    "tax_code",
)
FIELDS: Final = HEADER_FIELDS + LINE_FIELDS
REQUIRED: Final = ("number", "issued_on", "seller_tax_id", "seller_name", "buyer_name")
ENCODINGS: Final = ("auto", "utf-8", "gbk")


@dataclass(frozen=True)
class ColumnMapping:
    name: str
    columns: Mapping[str, str]
    encoding: str = "auto"  # "auto" (BOM, else UTF-8, else GBK), "utf-8" or "gbk"
    delimiter: str = ","
    header_row: int = 1  # the row (1 = first) holding the column headers
    thousands: bool = False  # amounts may be written "1,060.00"
    default_line_name: str | None = None

    @property
    def has_lines(self) -> bool:
        return "amount" in self.columns

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "columns": dict(self.columns),
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "header_row": self.header_row,
            "thousands": self.thousands,
            "default_line_name": self.default_line_name,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> tuple[ColumnMapping | None, list[FieldError]]:
        """A mapping from saved data, or None and what is wrong with it."""
        problems: list[FieldError] = []
        name = data.get("name")
        columns = data.get("columns")
        if not isinstance(name, str) or not name.strip():
            problems.append(FieldError("name", "missing", _("The column mapping has no name.")))
        if not isinstance(columns, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) and value.strip()
            for key, value in columns.items()
        ):
            message = _("The column mapping's columns must name a column header for each field.")
            problems.append(FieldError("columns", "bad_columns", message))
            return None, problems
        for key in columns:
            if key not in FIELDS:
                message = _("The column mapping names an unknown field {value}.")
                problems.append(FieldError(f"columns.{key}", "unknown_field", message, {"value": key[:40]}))
        for key in REQUIRED:
            if key not in columns:
                message = _("The column mapping does not say which column holds {value}.")
                problems.append(FieldError(f"columns.{key}", "missing", message, {"value": key}))
        if "amount" not in columns and "total_amount" not in columns:
            message = _("The column mapping needs a column for the amount, of each line or of the invoice.")
            problems.append(FieldError("columns.amount", "missing", message))
        encoding = data.get("encoding", "auto")
        if encoding not in ENCODINGS:
            message = _("The encoding {value} is not one of auto, utf-8 and gbk.")
            problems.append(
                FieldError("encoding", "bad_encoding_name", message, {"value": str(encoding)[:20]})
            )
        delimiter = data.get("delimiter", ",")
        header_row = data.get("header_row", 1)
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            problems.append(
                FieldError("delimiter", "bad_delimiter", _("The delimiter must be one character."))
            )
        if not isinstance(header_row, int) or isinstance(header_row, bool) or not 1 <= header_row <= 100:
            problems.append(
                FieldError("header_row", "bad_header_row", _("The header row must be between 1 and 100."))
            )
        if problems:
            return None, problems
        mapping = cls(
            name=str(name).strip(),
            columns=MappingProxyType({key: value.strip() for key, value in columns.items()}),
            encoding=str(encoding),
            delimiter=str(delimiter),
            header_row=int(header_row),
            thousands=bool(data.get("thousands", False)),
            default_line_name=data.get("default_line_name") or None,
        )
        return mapping, []
