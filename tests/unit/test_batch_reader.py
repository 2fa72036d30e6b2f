"""The batch spreadsheet reader: (records, problems), never an exception for a bad row or file."""

from __future__ import annotations

import csv
import io
import re
import time
import tracemalloc
import zlib
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fapiao.formats.batch import HEADER, RowProblem, read_batch
from fapiao.formats.batch_template import write_template
from fapiao.formats.safezip import ZipBombError, ZipDamagedError
from fapiao.formats.spreadsheet import SpreadsheetRowTooWideError, SpreadsheetTooManyCellsError
from tests.zipbombs import MIB, SHARED_STRINGS, build_zip, deflated, members_of, xlsx_bomb

ON = date(2026, 11, 28)
GOOD = [
    "北京买方贸易有限公司",
    "91110000MA01XKQ2TQ",
    "",
    "*信息技术服务*软件开发",
    "3040201000000000000",
    "",
    "项",
    "2",
    "1,000.00",
    "",
    "6%",
    "",
]


def as_csv(rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8-sig") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def test_good_rows_become_api_bodies() -> None:
    inclusive = GOOD.copy()
    inclusive[8], inclusive[9] = "１０６０", "是"
    records, problems = read_batch(as_csv([GOOD, [], inclusive]), "x.csv", on=ON)
    assert problems == []
    assert [record.row for record in records] == [2, 4]  # spreadsheet rows; the blank row 3 skipped
    first, second = records
    assert first.payload["lines"][0] == {
        "name": "*信息技术服务*软件开发", "tax_code": "3040201000000000000", "unit": "项",
        "quantity": "2", "unit_price": "1000.00", "tax_rate": "0.06",
    }  # fmt: skip
    assert first.total_with_tax == 212000
    assert second.payload["lines"][0]["unit_price"] == "1000.00"  # 1060 with 6% included


def test_every_bad_row_with_its_reasons() -> None:
    bad_quantity = GOOD.copy()
    bad_quantity[7] = "two"
    special_no_tax_id = GOOD.copy()
    special_no_tax_id[1], special_no_tax_id[2], special_no_tax_id[10] = "", "专用发票", "7%"
    records, problems = read_batch(as_csv([GOOD, bad_quantity, special_no_tax_id]), "x.csv", on=ON)
    assert [record.row for record in records] == [2]
    by_row = {(problem.row, problem.field) for problem in problems}
    assert (3, "quantity") in by_row
    assert {(4, "buyer_tax_id"), (4, "tax_rate")} <= by_row
    assert all(problem.render() for problem in problems)


def test_gb18030_csv_from_chinese_excel() -> None:
    records, problems = read_batch(as_csv([GOOD], encoding="gb18030"), "x.csv", on=ON)
    assert problems == [] and len(records) == 1


def test_header_by_chinese_label_or_key() -> None:
    header = [cell.split(" ")[0] for cell in HEADER]  # 购买方名称, 购买方纳税人识别号, …
    records, problems = read_batch(as_csv([GOOD], header=header), "x.csv", on=ON)
    assert problems == [] and len(records) == 1


@pytest.mark.parametrize(
    ("data", "name", "row"),
    [
        (b"", "x.csv", 0),
        (b"a,b,c\n1,2,3\n", "x.csv", 1),
        (b"\x00\x01garbage", "x.xlsx", 0),
        (as_csv([]), "x.csv", 0),
        (as_csv([GOOD]), "x.txt", 0),
    ],
)
def test_unusable_files_are_one_problem(data: bytes, name: str, row: int) -> None:
    records, problems = read_batch(data, name, on=ON)
    assert records == [] and len(problems) == 1 and problems[0].row == row


def test_the_xlsx_template_reads_back() -> None:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(write_template("xlsx")))
    sheet = workbook.worksheets[0]
    sheet.append(GOOD)
    sheet.append(["北京个人", "", "", "服务", 3040201000000000000.0, "", "", 1, 99.5, "否", 0.06, ""])
    out = io.BytesIO()
    workbook.save(out)
    records, problems = read_batch(out.getvalue(), "t.xlsx", on=ON)
    assert [record.row for record in records] == [2]
    assert {(problem.row, problem.field) for problem in problems} == {(3, "tax_code")}  # lost digits


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.one_of(st.text(max_size=30), st.just("")), min_size=0, max_size=14), max_size=6))
def test_never_raises_on_any_cells(rows: list[list[str]]) -> None:
    records, problems = read_batch(as_csv(rows), "x.csv", on=ON)
    assert len(records) + len({p.row for p in problems}) >= 0


def sheet_with(rows: bytes) -> bytes:
    """The template with its first sheet's data replaced by ``rows`` (XML)."""
    members = members_of(write_template("xlsx"))
    for index, member in enumerate(members):
        if member.name == "xl/worksheets/sheet1.xml":
            xml = re.sub(rb"<sheetData>.*</sheetData>", b"<sheetData>" + rows + b"</sheetData>",
                         zlib.decompress(member.packed, -15), flags=re.S)  # fmt: skip
            members[index] = deflated(member.name, xml)
    return build_zip(members)


def wide_row_sheet(cells: int) -> bytes:
    """One row of ``cells`` empty cells: 2 MB that openpyxl would hold whole (8 s, 500 MB before)."""
    return sheet_with(b'<row r="1">' + "".join(f'<c r="A{i}"/>' for i in range(cells)).encode() + b"</row>")


def read_measured(data: bytes) -> tuple[list[RowProblem], float, int]:
    started = time.perf_counter()
    tracemalloc.start()
    try:
        records, problems = read_batch(data, "batch.xlsx", on=ON)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert records == []
    return problems, time.perf_counter() - started, peak


@pytest.mark.parametrize(
    ("make", "message", "params"),
    [
        pytest.param(
            lambda: xlsx_bomb(80 * MIB), ZipBombError.__doc__, {"name": SHARED_STRINGS, "max": 100}, id="80MB"
        ),
        pytest.param(  # issue 13 finding 4: 135 s and 3 GB before the guard
            lambda: xlsx_bomb(1390 * MIB),
            ZipBombError.__doc__,
            {"name": SHARED_STRINGS, "max": 100},
            id="1.39GB",
        ),
        pytest.param(
            lambda: xlsx_bomb(256 * MIB, declared=4 * MIB), ZipDamagedError.__doc__, {}, id="lying-directory"
        ),
        pytest.param(
            lambda: wide_row_sheet(1_000_000),
            SpreadsheetRowTooWideError.__doc__,
            {"max": 1024},
            id="wide-row",
        ),
    ],
)
def test_a_bomb_is_one_problem_found_quickly_in_bounded_memory(make: Any, message: Any, params: Any) -> None:
    problems, elapsed, peak = read_measured(make())
    assert [(p.row, p.message, p.params) for p in problems] == [(0, message, params)]
    assert elapsed < 3
    assert peak < 16 * MIB


def test_too_many_cells_in_a_sheet() -> None:
    rows = (
        f'<row r="{r}">' + "".join(f"<c><v>{r * 7919 + i * 104729}</v></c>" for i in range(100)) + "</row>"
        for r in range(1, 2101)
    )
    data = sheet_with("".join(rows).encode())
    problems, _elapsed, _peak = read_measured(data)
    assert [(p.message, p.params) for p in problems] == [
        (SpreadsheetTooManyCellsError.__doc__, {"max": 200_000})
    ]
