"""Reading an uploaded XLSX with bounded memory and time.

openpyxl in read-only mode streams a worksheet's rows, but it still builds a whole row before
handing it over and parses the other parts (shared strings, styles) whole.  So a file is opened
only after two checks: :func:`fapiao.formats.safezip.check_zip` (sizes, ratios, what really
unpacks) and a streaming count of every part's XML with expat — elements per part, cells per row
and per sheet, no DTD — under :class:`SheetLimits`.  Both keep memory flat whatever the file holds;
then openpyxl reads at most ``max_rows`` rows of the first sheet.  Nothing here touches Django.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final
from xml.parsers import expat

from openpyxl import load_workbook

from fapiao.core.errors import InvalidValueError
from fapiao.formats.safezip import CHUNK, MIB, ZipLimits, check_zip

_ROW: Final = "row"
_CELL: Final = "c"


@dataclass(frozen=True)
class SheetLimits:
    """What one workbook may hold, whatever its zip says (defaults fit a batch of 1,000 rows)."""

    max_cols: int = 1024  # cells in one row
    max_cells: int = 200_000  # cells in one worksheet
    max_elements: int = 250_000  # XML elements of one part outside its rows (shared strings, styles…)
    max_part_bytes: int = 16 * MIB  # one part, unpacked


class SpreadsheetError(InvalidValueError):
    """The spreadsheet cannot be read."""

    code = "spreadsheet_unreadable"


class SpreadsheetRowTooWideError(SpreadsheetError):
    """A row of the spreadsheet has more than {max} cells."""

    code = "spreadsheet_row_too_wide"


class SpreadsheetTooManyCellsError(SpreadsheetError):
    """The spreadsheet has more than {max} cells in one sheet."""

    code = "spreadsheet_too_many_cells"


class SpreadsheetPartTooLargeError(SpreadsheetError):
    """The part {name} of the spreadsheet is too large or too complex to read."""

    code = "spreadsheet_part_too_large"


def read_rows(
    data: bytes, *, zip_limits: ZipLimits, limits: SheetLimits, max_rows: int
) -> Iterator[tuple[object, ...]]:
    """The first sheet's rows as cell values (a formula as its last computed value), at most ``max_rows``.

    Raises :class:`fapiao.formats.safezip.UnsafeZipError` or :class:`SpreadsheetError` before
    anything is parsed; a file openpyxl then cannot read raises whatever openpyxl raises.
    """
    check_zip(data, zip_limits)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            _scan_part(archive, info, limits)
    return _rows(data, limits, max_rows)


def _rows(data: bytes, limits: SheetLimits, max_rows: int) -> Iterator[tuple[object, ...]]:
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True, max_col=limits.max_cols)
        for count, row in enumerate(rows):
            if count >= max_rows:
                break
            yield row
    finally:
        workbook.close()


class _Counter:
    """Expat handlers that count as the XML streams past and stop it at the first limit.

    openpyxl holds one row of a sheet at a time but every other part whole, so elements inside a
    row are bounded per row (``max_cols`` cells, and 16 elements a cell: values, formulas, rich
    text runs) and elements outside rows per part (``max_elements``).
    """

    def __init__(self, name: str, limits: SheetLimits) -> None:
        self.name, self.limits = name, limits
        self.depth = self.row_depth = 0
        self.elements = self.cells = self.row_cells = self.row_elements = 0

    def start(self, tag: str, _attributes: Any) -> None:
        self.depth += 1
        local = tag.rpartition("}")[2]
        if self.row_depth:
            self.row_elements += 1
            if self.row_elements > 16 * self.limits.max_cols:
                raise SpreadsheetPartTooLargeError(name=self.name)
            if local == _CELL:
                self.row_cells += 1
                self.cells += 1
                if self.row_cells > self.limits.max_cols:
                    raise SpreadsheetRowTooWideError(max=self.limits.max_cols)
                if self.cells > self.limits.max_cells:
                    raise SpreadsheetTooManyCellsError(max=self.limits.max_cells)
            return
        self.elements += 1
        if self.elements > self.limits.max_elements:
            raise SpreadsheetPartTooLargeError(name=self.name)
        if local == _ROW:
            self.row_depth, self.row_cells, self.row_elements = self.depth, 0, 0

    def end(self, _tag: str) -> None:
        if self.depth == self.row_depth:
            self.row_depth = 0
        self.depth -= 1

    @staticmethod
    def doctype(*_args: Any) -> None:
        raise SpreadsheetError()  # no part of a real workbook declares a DTD (or entities)


def _scan_part(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: SheetLimits) -> None:
    """Count one part's XML in constant memory.  A part that is not XML stops the count at once; openpyxl
    parses only XML, and the same parser stops where this one did."""
    name = "".join(char for char in info.filename[:100] if char.isprintable())
    if info.file_size > limits.max_part_bytes:
        raise SpreadsheetPartTooLargeError(name=name)
    counter = _Counter(name, limits)
    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartElementHandler = counter.start
    parser.EndElementHandler = counter.end
    parser.StartDoctypeDeclHandler = counter.doctype
    parser.EntityDeclHandler = counter.doctype
    with archive.open(info) as stream:
        try:
            while chunk := stream.read(CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except expat.ExpatError:
            return
