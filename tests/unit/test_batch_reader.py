"""The batch spreadsheet reader: (records, problems), never an exception for a bad row or file."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fapiao.formats.batch import HEADER, read_batch
from fapiao.formats.batch_template import write_template

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
