"""CSV and XLSX exports from other systems, read through a named column mapping."""

from __future__ import annotations

import codecs
import io
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from fapiao.formats.mapping import ColumnMapping
from fapiao.formats.readers import read_invoice_file
from fapiao.formats.records import ReadResult
from fapiao.formats.table_invoices import read_table, stream_table

COLUMNS = {
    "number": "发票号码",
    "issued_on": "开票日期",
    "seller_tax_id": "销方税号",
    "seller_name": "销方名称",
    "buyer_name": "购方名称",
    "buyer_tax_id": "购方税号",
    "total_with_tax": "价税合计",
    "line_name": "项目名称",
    "quantity": "数量",
    "amount": "金额",
    "tax_rate": "税率",
    "tax": "税额",
}
HEADER = list(COLUMNS.values())
SELLER = ["91110108MA01ABCD84", "北京示例科技有限公司"]
BUYER = ["北京买方贸易有限公司", "91110000MA01XKQ2TQ"]
ROWS = [
    [
        "26110000000000000007",
        "2026-11-28",
        *SELLER,
        *BUYER,
        "1399.00",
        "*信息技术服务*软件开发",
        "1",
        "1000.00",
        "6%",
        "60.00",
    ],
    [
        "26110000000000000007",
        "2026-11-28",
        *SELLER,
        *BUYER,
        "1399.00",
        "*计算机外部设备*键盘",
        "2",
        "300.00",
        "13%",
        "39.00",
    ],
    [
        "26110000000000000008",
        "2026/11/29",
        *SELLER,
        "张三",
        "",
        "10.60",
        "*餐饮服务*餐费",
        "",
        "10.00",
        "6%",
        "0.60",
    ],
]


def mapping(**extra: object) -> ColumnMapping:
    found, problems = ColumnMapping.from_dict({"name": "old-erp", "columns": COLUMNS, **extra})
    assert problems == []
    assert found is not None
    return found


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    text = "\r\n".join(",".join(row) for row in [HEADER, *rows]) + "\r\n"
    return text.encode(encoding)


def codes(result: ReadResult) -> list[tuple[int | None, int | None, str, str]]:
    return [(problem.record, problem.row, problem.field, problem.code) for problem in result.problems]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_rows_of_one_invoice_become_its_lines_in_any_encoding(encoding: str) -> None:
    result = read_invoice_file(csv_bytes(ROWS, encoding), mapping=mapping())
    assert (result.format, codes(result)) == ("csv", [])
    first, second = result.records
    assert (first.number, first.issued_on, first.row, len(first.lines)) == (
        "26110000000000000007",
        date(2026, 11, 28),
        2,
        2,
    )
    assert (first.total_amount_fen, first.total_tax_fen, first.total_with_tax_fen) == (130000, 9900, 139900)
    assert (first.lines[1].name, first.lines[1].quantity, first.lines[1].tax_rate) == (
        "*计算机外部设备*键盘",
        "2",
        "0.13",
    )
    assert (second.buyer_name, second.buyer_tax_id, second.issued_on, second.row) == (
        "张三",
        None,
        date(2026, 11, 29),
        4,
    )


def test_a_bad_row_is_a_problem_of_its_invoice_only() -> None:
    rows = [row[:] for row in ROWS]
    rows[1][9] = "300.001"
    result = read_invoice_file(csv_bytes(rows), mapping=mapping())
    assert codes(result) == [(0, 3, "lines.1.amount_fen", "fraction_of_fen")]
    assert [record.number for record in result.accepted()] == ["26110000000000000008"]


def test_rows_of_one_invoice_that_disagree_or_do_not_add_up() -> None:
    rows = [row[:] for row in ROWS]
    rows[1][6] = "1400.00"
    result = read_invoice_file(csv_bytes(rows), mapping=mapping())
    assert (0, 3, "total_with_tax", "rows_disagree") in codes(result)
    rows = [row[:] for row in ROWS]
    rows[0][6] = rows[1][6] = "1400.00"
    assert codes(read_invoice_file(csv_bytes(rows), mapping=mapping())) == [
        (0, 2, "total_with_tax_fen", "totals_inconsistent")
    ]


def test_a_mapped_column_missing_from_the_file_is_one_problem_of_the_file() -> None:
    data = csv_bytes(ROWS).replace("价税合计".encode(), "合计".encode(), 1)
    result = read_invoice_file(data, mapping=mapping())
    assert (codes(result), result.records) == ([(None, None, "total_with_tax", "column_missing")], ())
    assert (
        result.problems[0].render()
        == "The file has no column 价税合计 (the mapping old-erp reads total_with_tax from it)."
    )


def test_gbk_read_as_utf8_or_mojibake_is_a_clear_problem() -> None:
    assert codes(read_invoice_file(csv_bytes(ROWS, "gbk"), mapping=mapping(encoding="utf-8"))) == [
        (None, None, "", "bad_encoding")
    ]
    garbled = csv_bytes(ROWS).decode().replace("北京", "锟斤拷").encode()
    assert codes(read_invoice_file(garbled, mapping=mapping())) == [(None, None, "", "mis_encoded")]
    assert codes(read_invoice_file(b"\xff\xfe\xfa" * 10 + b"\n,\n", mapping=mapping())) != []


def test_a_csv_without_a_mapping_is_a_problem() -> None:
    assert codes(read_invoice_file(csv_bytes(ROWS))) == [(None, None, "", "mapping_needed")]


def test_mappings_are_validated() -> None:
    found, problems = ColumnMapping.from_dict({"name": "", "columns": {"number": "号码", "colour_x": "x"}})
    assert found is None
    assert {problem.code for problem in problems} >= {"missing", "unknown_field"}
    saved = mapping(thousands=True).as_dict()
    assert ColumnMapping.from_dict(saved)[0] == mapping(thousands=True)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_number_cells_are_read_by_their_decimal_digits() -> None:
    row: list[object] = list(ROWS[2])
    row[1] = date(2026, 11, 29)
    row[6], row[9], row[11] = 10.6, 10, 0.6  # floats and an int, as a spreadsheet stores them
    row[10] = 0.06
    result = read_invoice_file(xlsx_bytes([row]), mapping=mapping())
    assert (result.format, codes(result)) == ("xlsx", [])
    record = result.records[0]
    assert (record.total_with_tax_fen, record.lines[0].amount_fen, record.lines[0].tax_fen) == (
        1060,
        1000,
        60,
    )
    assert (record.issued_on, record.lines[0].tax_rate) == (date(2026, 11, 29), "0.06")


def test_an_invoice_number_stored_as_a_float_is_refused() -> None:
    row: list[object] = list(ROWS[2])
    row[0] = 26110000000000000008.0
    result = read_invoice_file(xlsx_bytes([row]), mapping=mapping())
    assert (0, 2, "number", "number_as_float") in codes(result)


def test_password_protected_and_damaged_spreadsheets() -> None:
    ole2 = codecs.decode("d0cf11e0a1b11ae1", "hex") + b"\0" * 512
    assert codes(read_invoice_file(ole2, mapping=mapping())) == [(None, None, "", "password_protected")]
    data = xlsx_bytes([list(ROWS[0])])
    assert codes(read_invoice_file(data[:-200], mapping=mapping())) == [(None, None, "", "zip_damaged")]


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=400), encoding=st.sampled_from(["utf-8", "gb18030", "utf-16"]))
def test_reading_any_text_as_a_table_never_raises(text: str, encoding: str) -> None:
    result = read_invoice_file(
        (",".join(HEADER) + "\n" + text).encode(encoding, "replace"), mapping=mapping()
    )
    assert result.format in (
        "csv",
        "xlsx",
        "unknown",
        "pdf",
        "xml",
        "ofd",
        "einvoice_xml",
        "legacy_xml",
        "xbrl",
    )


def test_an_oversized_export_is_refused_before_it_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fapiao.formats.table_invoices.MAX_TABLE_BYTES", 100)
    assert codes(read_invoice_file(csv_bytes(ROWS), mapping=mapping())) == [(None, None, "", "too_large")]


def test_an_export_is_streamed_one_invoice_at_a_time() -> None:
    stream = stream_table(csv_bytes(ROWS), mapping())
    first, problems = next(stream)
    assert first is not None
    assert (first.number, len(first.lines), problems) == ("26110000000000000007", 2, ())
    assert [record.number for record, _problems in stream if record is not None] == ["26110000000000000008"]


def test_rows_of_one_invoice_must_be_together() -> None:
    rows = [ROWS[0], ROWS[2], ROWS[1]]
    result = read_invoice_file(csv_bytes(rows), mapping=mapping())
    assert [record.number for record in result.records] == [
        "26110000000000000007",
        "26110000000000000008",
        "26110000000000000007",
    ]
    assert (2, 4, "number", "rows_not_adjacent") in codes(result)


def test_the_row_limit_is_the_callers() -> None:
    assert codes(read_table(csv_bytes(ROWS), mapping(), max_rows=3)) == []
    assert codes(read_table(csv_bytes(ROWS), mapping(), max_rows=2)) == [(None, None, "", "too_many_rows")]
