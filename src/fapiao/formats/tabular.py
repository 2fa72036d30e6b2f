"""CSV and XLSX writers.  Cells that a spreadsheet would run as a formula are escaped."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from openpyxl import Workbook

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def escape_cell(value: object) -> object:
    """Prefix text that starts like a formula with a quote (OWASP CSV injection advice).

    A plain number such as a red invoice's "-1060.00" is not a formula and stays as it is.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8-sig") as handle:  # BOM: Excel opens UTF-8 correctly
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([escape_cell(cell) for cell in row])
            count += 1
    return count


def write_xlsx(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], *, title: str = "Sheet1"
) -> int:

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(list(header))
    count = 0
    for row in rows:
        sheet.append([escape_cell(cell) for cell in row])
        count += 1
    workbook.save(path)
    return count


def write_table(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], *, title: str = "Sheet1"
) -> int:
    """Write CSV or XLSX by the file's suffix; returns the number of data rows."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return write_csv(path, header, rows)
    if suffix == ".xlsx":
        return write_xlsx(path, header, rows, title=title)
    raise ValueError(f"unsupported export format {suffix!r}: use .csv or .xlsx")
