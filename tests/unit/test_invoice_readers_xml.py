"""The XML readers through the one entry point: 数电票 (blue and red), legacy 增值税电子发票, XBRL."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fapiao.core.choices import Colour
from fapiao.core.errors import InvalidValueError
from fapiao.formats.amounts import fen_from_cell, fen_from_text
from fapiao.formats.readers import read_invoice_file
from fapiao.formats.records import ReadResult
from tests.unit.invoice_files_factory import document, einvoice_xml, legacy_xml, line, red_document, xbrl


def codes(result: ReadResult) -> list[tuple[str, str]]:
    return [(problem.field, problem.code) for problem in result.problems]


def test_a_written_einvoice_reads_back_to_the_api_shape() -> None:
    invoice = document()
    result = read_invoice_file(einvoice_xml(invoice))
    assert (result.format, codes(result)) == ("einvoice_xml", [])
    shaped = result.records[0].as_api()
    for key in ("number", "issued_on", "kind", "colour", "total_amount", "total_tax", "total_with_tax"):
        assert shaped[key] == str(invoice[key]), key
    assert shaped["seller"] == invoice["seller"]
    assert shaped["buyer"] == {"name": invoice["buyer"]["name"], "tax_id": invoice["buyer"]["tax_id"]}
    wanted = ("name", "spec", "unit", "quantity", "unit_price", "amount", "tax_rate", "tax", "tax_code")
    assert [{key: line[key] for key in wanted} for line in shaped["lines"]] == [
        {key: line[key] for key in wanted} for line in invoice["lines"]
    ]
    assert result.accepted() == list(result.records)


def test_a_red_invoice_is_negative_and_names_its_blue_one() -> None:
    result = read_invoice_file(einvoice_xml(red_document()))
    assert codes(result) == []
    record = result.records[0]
    assert (record.colour, record.is_red, record.original_number) == ("red", True, "26110000000000000007")
    assert (record.total_amount_fen, record.total_tax_fen, record.total_with_tax_fen) == (
        -100000,
        -6000,
        -106000,
    )


def test_a_red_mark_on_a_positive_total_is_a_problem() -> None:
    data = einvoice_xml(document()).replace(b"<LabelCode>Y</LabelCode>", b"<LabelCode>N</LabelCode>")
    assert ("total_with_tax_fen", "sign_mismatch") in codes(read_invoice_file(data))


def test_lines_that_do_not_add_up_to_the_totals_are_a_problem() -> None:
    data = einvoice_xml().replace(b"<Amount>300.00</Amount>", b"<Amount>300.01</Amount>")
    result = read_invoice_file(data)
    assert codes(result) == [
        ("lines.1.with_tax_fen", "line_inconsistent"),
        ("total_amount_fen", "lines_do_not_add_up"),
    ]
    assert result.problems[0].render() == "Line 2 does not add up: 300.01 + 39.00 is not 339.00."
    assert result.problems[1].render() == "The lines add up to 1300.01, but the invoice's total says 1300.00."
    assert {problem.record for problem in result.problems} == {0}
    assert result.accepted() == []


def test_a_lines_total_is_never_taken_for_the_invoices_total() -> None:
    data = einvoice_xml().replace(b"<TotalTax-includedAmount>1399.00</TotalTax-includedAmount>", b"")
    result = read_invoice_file(data)
    assert codes(result) == [("total_with_tax_fen", "missing")]  # not the first line's 1060.00
    assert result.records[0].total_with_tax_fen is None


def test_a_line_that_cannot_be_read_is_a_problem_and_the_sum_is_not_guessed() -> None:
    data = einvoice_xml().replace(b"<ComTaxAm>39.00</ComTaxAm>", b"<ComTaxAm>39,00</ComTaxAm>")
    assert codes(read_invoice_file(data)) == [("lines.1.tax_fen", "bad_amount")]


@pytest.mark.parametrize(
    ("text", "fen"),
    [("1060", 106000), ("1060.0", 106000), ("1060.000000000", 106000), ("-0.10", -10), ("+5.5", 550)],
)
def test_any_number_of_decimals_is_read_exactly(text: str, fen: int) -> None:
    assert fen_from_text(text) == fen


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1.001", "fraction_of_fen"),
        ("0.0000001", "fraction_of_fen"),
        ("1e2", "bad_amount"),
        ("1,000", "bad_amount"),
        (".5", "bad_amount"),
        ("9" * 40, "amount_too_large"),
    ],
)
def test_what_is_not_a_whole_number_of_fen_is_refused(text: str, code: str) -> None:
    with pytest.raises(InvalidValueError) as refused:
        fen_from_text(text)
    assert refused.value.code == code


def test_spreadsheet_cells_never_go_through_binary_fractions() -> None:
    assert fen_from_cell(0.1) == 10  # the float 0.1 is 0.1000000000000000055…: its shortest form is used
    assert fen_from_cell(1060) == 106000
    assert fen_from_cell("¥1,060.00", thousands=True) == 106000
    with pytest.raises(InvalidValueError):
        fen_from_cell(True)


@settings(max_examples=200, deadline=None)
@given(fen=st.integers(min_value=-(10**14 - 1), max_value=10**14 - 1), zeros=st.integers(0, 30))
def test_money_text_round_trips_exactly(fen: int, zeros: int) -> None:
    sign = "-" if fen < 0 else ""
    whole, rest = divmod(abs(fen), 100)
    assert fen_from_text(f"{sign}{whole}.{rest:02d}{'0' * zeros}") == fen


def test_the_legacy_xml_keeps_code_and_8_digit_number() -> None:
    result = read_invoice_file(legacy_xml())
    assert (result.format, codes(result)) == ("legacy_xml", [])
    record = result.records[0]
    assert (record.code, record.number, record.check_code) == (
        "011001900111",
        "80100798",
        "85342965681116380258",
    )
    assert record.issued_on == date(2020, 5, 20)
    assert (record.seller_tax_id, record.buyer_name) == ("91110108MA01ABCD84", "北京买方贸易有限公司")
    assert (record.total_amount_fen, record.total_tax_fen, record.total_with_tax_fen) == (10000, 600, 10600)
    assert (record.lines[0].name, record.lines[0].tax_rate, record.lines[0].amount_fen) == (
        "*餐饮服务*餐费",
        "0.06",
        10000,
    )
    assert (record.as_api()["number"], record.as_api()["code"]) == ("011001900111-80100798", "011001900111")
    assert record.as_mapping()["number"] == "011001900111-80100798"  # as a claim names it


def test_a_legacy_red_invoice_names_its_blue_one_by_code_and_number() -> None:
    note = "对应正数发票代码:011001900111号码:80100798"
    result = read_invoice_file(
        legacy_xml(number="80100799", amount="-100.00", tax="-6.00", total="-106.00", note=note)
    )
    assert codes(result) == []
    record = result.records[0]
    assert (record.is_red, record.original_code, record.original_number) == (True, "011001900111", "80100798")
    assert record.as_api()["original_number"] == "011001900111-80100798"


def test_a_legacy_number_of_the_wrong_length_is_a_problem() -> None:
    assert codes(read_invoice_file(legacy_xml(number="8010079"))) == [("number", "not_8_digits")]


def test_the_flat_issuing_export_names_are_read() -> None:
    data = (
        "<REQUEST_FPKJXX><FPKJXX_FPTXX><FP_DM>011001900111</FP_DM><FP_HM>80100798</FP_HM>"
        "<KPRQ>20200520101112</KPRQ><XSF_NSRSBH>91110108MA01ABCD84</XSF_NSRSBH><XSF_MC>甲</XSF_MC>"
        "<GMF_MC>乙</GMF_MC><HJJE>100.00</HJJE><HJSE>6.00</HJSE><JSHJ>106.00</JSHJ></FPKJXX_FPTXX>"
        "<FPKJXX_XMXXS><FPKJXX_XMXX><XMMC>*餐饮服务*餐费</XMMC><XMSL>1</XMSL><XMDJ>100</XMDJ><XMJE>100.00</XMJE>"
        "<SL>0.06</SL><SE>6.00</SE></FPKJXX_XMXX></FPKJXX_XMXXS></REQUEST_FPKJXX>"
    ).encode()
    result = read_invoice_file(data)
    assert codes(result) == []
    record = result.records[0]
    assert (record.code, record.number, record.issued_on) == ("011001900111", "80100798", date(2020, 5, 20))
    assert (record.lines[0].quantity, record.lines[0].tax_rate, record.lines[0].tax_fen) == ("1", "0.06", 600)


def test_the_xbrl_accounting_file_is_read_with_lines_by_context() -> None:
    result = read_invoice_file(xbrl())
    assert (result.format, codes(result)) == ("xbrl", [])
    record = result.records[0]
    assert (record.number, record.issued_on, record.colour) == (
        "26110000000000000007",
        date(2026, 11, 28),
        "blue",
    )
    assert (record.total_amount_fen, record.total_tax_fen, record.total_with_tax_fen) == (
        130000,
        9900,
        139900,
    )
    assert [(line.name, line.amount_fen, line.tax_rate, line.tax_fen) for line in record.lines] == [
        ("*信息技术服务*软件开发", 100000, "0.06", 6000),
        ("*计算机外部设备*键盘", 30000, "0.13", 3900),
    ]


def test_an_xbrl_amount_in_another_currency_is_a_problem() -> None:
    assert ("", "not_cny") in codes(read_invoice_file(xbrl(unit="iso4217:USD")))


def test_an_xbrl_line_that_does_not_add_up_is_a_problem() -> None:
    data = xbrl().replace(b">300<", b">300.5<")  # one line changed, the totals not
    assert codes(read_invoice_file(data)) == [("total_amount_fen", "lines_do_not_add_up")]
    lines = [("a", "10.00", "0.06", "0.60"), ("b", "5.001", "0.06", "0.30")]
    assert ("lines.1.amount_fen", "fraction_of_fen") in codes(read_invoice_file(xbrl(lines=lines)))


def test_gbk_text_declared_as_utf8_is_a_clear_problem() -> None:
    data = einvoice_xml().decode().encode("gb18030")  # declared UTF-8, written GBK
    result = read_invoice_file(data)
    assert (codes(result), result.records) == ([("", "bad_encoding")], ())


def test_a_truncated_file_is_a_problem() -> None:
    data = einvoice_xml()
    result = read_invoice_file(data[: len(data) // 2])
    assert codes(result) == [("", "not_xml")]


def test_deep_nesting_and_too_many_elements_are_refused_before_a_tree_is_built() -> None:
    deep = b"<EInvoice>" + b"<a>" * 100 + b"</a>" * 100 + b"</EInvoice>"
    assert codes(read_invoice_file(deep)) == [("", "too_deep")]
    wide = b"<EInvoice>" + b"<a/>" * 200_001 + b"</EInvoice>"
    assert codes(read_invoice_file(wide)) == [("", "too_many_elements")]


def test_billion_laughs_is_refused() -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<EInvoice><BuyerName>&b;</BuyerName></EInvoice>"
    )
    assert codes(read_invoice_file(data)) == [("", "forbidden_markup")]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048))
def test_reading_random_bytes_never_raises(data: bytes) -> None:
    result = read_invoice_file(data)
    assert result.records or result.problems


@settings(max_examples=150, deadline=None)
@given(position=st.integers(0, 10**6), byte=st.integers(0, 255), cut=st.booleans())
def test_reading_damaged_xml_and_xbrl_never_raises(position: int, byte: int, cut: bool) -> None:
    for original in (einvoice_xml(), xbrl(), legacy_xml()):
        at = position % len(original)
        data = original[:at] if cut else original[:at] + bytes([byte]) + original[at + 1 :]
        result = read_invoice_file(data)
        assert result.records or result.problems


line_strategy = st.tuples(
    st.sampled_from(["0.06", "0.13", "0.09", "0.03", "exempt"]),
    st.integers(min_value=1, max_value=1000),
    st.integers(min_value=1, max_value=10**8),
)


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(line_strategy, min_size=1, max_size=8), red=st.booleans())
def test_any_written_invoice_reads_back_as_itself(lines: list[tuple[str, int, int]], red: bool) -> None:
    sign = "-" if red else ""
    made = [
        line(no, f"*项目*{no}", f"{sign}{quantity}", f"{cents // 100}.{cents % 100:02d}", rate)
        for no, (rate, quantity, cents) in enumerate(lines, start=1)
    ]
    extra = {"colour": Colour.RED, "original_number": "26110000000000000007"} if red else {}
    invoice = document(lines=made, **extra)
    result = read_invoice_file(einvoice_xml(invoice))
    assert codes(result) == []
    shaped = result.records[0].as_api()
    for key in ("total_amount", "total_tax", "total_with_tax", "colour", "original_number"):
        assert shaped[key] == (str(invoice[key]) if invoice[key] is not None else None), key
    assert [(item["amount"], item["tax"], item["tax_rate"]) for item in shaped["lines"]] == [
        (item["amount"], item["tax"], item["tax_rate"]) for item in invoice["lines"]
    ]
