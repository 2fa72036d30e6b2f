"""The 数电票 XML reader: exact fen, tolerant names, problems instead of exceptions, no entity tricks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fapiao.core.errors import FieldError
from fapiao.core.money import MAX_MONEY_FEN, format_money
from fapiao.formats.einvoice_xml import MAX_XML_BYTES, EInvoiceLine, read_einvoice_xml

FIXTURES = Path(__file__).parent / "fixtures" / "einvoice"


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def minimal(
    *,
    number: str = "26112000000000012345",
    amount: str = "1000.00",
    tax: str = "60.00",
    total: str = "1060.00",
    issue_time: str = "2026-03-05 10:11:12",
    encoding: str = "UTF-8",
) -> bytes:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>'
        "<EInvoice><EInvoiceData>"
        "<SellerInformation><SellerIdNum>91110108MA01ABCD84</SellerIdNum>"
        "<SellerName>北京示例科技有限公司</SellerName></SellerInformation>"
        "<BuyerInformation><BuyerIdNum>91110000MA01XKQ2TQ</BuyerIdNum>"
        "<BuyerName>北京买方贸易有限公司</BuyerName></BuyerInformation>"
        f"<BasicInformation><TotalAmWithoutTax>{amount}</TotalAmWithoutTax><TotalTaxAm>{tax}</TotalTaxAm>"
        f"<TotalTax-includedAmount>{total}</TotalTax-includedAmount></BasicInformation>"
        f"<IssuItemInformation><ItemName>*信息技术服务*软件开发</ItemName><Amount>{amount}</Amount>"
        f"<TaxRate>0.06</TaxRate><ComTaxAm>{tax}</ComTaxAm></IssuItemInformation>"
        f"</EInvoiceData><TaxSupervisionInfo><InvoiceNumber>{number}</InvoiceNumber>"
        f"<IssueTime>{issue_time}</IssueTime></TaxSupervisionInfo></EInvoice>"
    ).encode("gb18030" if encoding == "GBK" else "utf-8")


def codes(problems: list[FieldError]) -> list[tuple[str, str]]:
    return [(problem.field, problem.code) for problem in problems]


def test_ordinary_invoice_utf8() -> None:
    fields, problems = read_einvoice_xml(read("ordinary_utf8.xml"))
    assert problems == []
    assert fields is not None
    assert fields.number == "26112000000000012345"
    assert fields.issued_on == date(2026, 3, 5)  # TaxSupervisionInfo/IssueTime, not RequestTime
    assert (fields.seller_tax_id, fields.seller_name) == ("91110108MA01ABCD84", "北京示例科技有限公司")
    assert (fields.buyer_tax_id, fields.buyer_name) == ("91110000MA01XKQ2TQ", "北京买方贸易有限公司")
    assert (fields.total_amount_fen, fields.total_tax_fen, fields.total_with_tax_fen) == (
        130000,
        9900,
        139900,
    )
    assert fields.lines == (
        EInvoiceLine(
            "*信息技术服务*软件开发", "1", "1000.00", 100000, "0.06", 6000, None, "项", "3040201000000000000"
        ),
        EInvoiceLine(
            "*计算机外部设备*键盘",
            "2",
            "150.00000000",
            30000,
            "0.13",
            3900,
            "K-104",
            "个",
            "1090511010000000000",
        ),
    )
    assert (fields.kind, fields.colour, fields.original_number) == ("ordinary", None, None)
    for value in (fields.total_amount_fen, fields.lines[0].amount_fen, fields.lines[1].tax_fen):
        assert type(value) is int


def test_gbk_declared_special_invoice() -> None:
    data = read("special_gbk.xml")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the fixture really is GBK
    fields, problems = read_einvoice_xml(data)
    assert problems == []
    assert fields is not None
    assert fields.buyer_name == "北京买方贸易有限公司（朝阳分公司）"
    assert fields.buyer_tax_id == "91110000MA01XKQ2TQ"  # written lower-case in the file
    assert fields.total_with_tax_fen == 872000  # the TotalTaxIncludedAmount alias
    assert fields.issued_on == date(2026, 3, 6)  # 2026年3月6日
    assert fields.lines[0].tax_rate == "0.09"  # 9% in the file


def test_red_invoice_with_namespace_prefixes() -> None:
    fields, problems = read_einvoice_xml(read("red_namespaced.xml"))
    assert problems == []  # an individual buyer has no tax id, which is not a problem
    assert fields is not None
    assert fields.buyer_tax_id is None
    assert fields.buyer_name == "张三"
    assert (fields.total_amount_fen, fields.total_tax_fen, fields.total_with_tax_fen) == (
        -100000,
        -6000,
        -106000,
    )
    assert fields.issued_on == date(2026, 3, 20)  # only RequestTime is present
    assert fields.lines[0].quantity == "-1"


def test_as_mapping_leaves_out_what_was_not_found_and_gives_an_iso_date() -> None:
    fields, _problems = read_einvoice_xml(read("red_namespaced.xml"))
    assert fields is not None
    assert fields.as_mapping() == {
        "number": "26112000000000012399",
        "issued_on": "2026-03-20",
        "seller_tax_id": "91110108MA01ABCD84",
        "buyer_name": "张三",
        "total_with_tax_fen": -106000,
        "total_amount_fen": -100000,
        "total_tax_fen": -6000,
    }


def test_element_names_are_matched_without_case_dashes_underscores_or_namespaces() -> None:
    data = (
        '<r xmlns="urn:x"><invoice_number>26112000000000012345</invoice_number>'
        "<ISSUETIME>20260305</ISSUETIME>"
        "<sellername>甲</sellername><SellerTaxNo>91110108MA01ABCD84</SellerTaxNo><Gfmc>乙</Gfmc>"
        "<totalamwithouttax>1.00</totalamwithouttax><Total_Tax_Am>0.06</Total_Tax_Am><Jshj>1.06</Jshj></r>"
    ).encode()
    fields, problems = read_einvoice_xml(data)
    assert codes(problems) == [("lines", "no_lines")]  # a header alone cannot be checked against lines
    assert fields is not None
    assert fields.number == "26112000000000012345"
    assert fields.issued_on == date(2026, 3, 5)
    assert (fields.seller_name, fields.buyer_name, fields.total_with_tax_fen) == ("甲", "乙", 106)


def test_missing_fields_are_problems_not_failures() -> None:
    data = (
        b"<EInvoice><EInvoiceData><BasicInformation><TotalTax-includedAmount>19.19</TotalTax-includedAmount>"
        b"</BasicInformation><IssuItemInformation><TaxRate>0.03</TaxRate></IssuItemInformation></EInvoiceData>"
        b"</EInvoice>"
    )
    fields, problems = read_einvoice_xml(data)
    assert fields is not None
    assert fields.total_with_tax_fen == 1919
    assert fields.number is None
    assert codes(problems) == [
        ("number", "missing"),
        ("issued_on", "missing"),
        ("seller_tax_id", "missing"),
        ("seller_name", "missing"),
        ("buyer_name", "missing"),
        ("total_amount_fen", "missing"),
        ("total_tax_fen", "missing"),
        ("lines.0.name", "missing"),
        ("lines.0.amount_fen", "missing"),
    ]
    assert problems[0].render() == "The e-invoice XML has no InvoiceNumber element."


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1,060.00", "bad_amount"),
        ("1e3", "bad_amount"),
        ("1060.005", "fraction_of_fen"),
        ("1060.0000001", "fraction_of_fen"),
        ("-", "bad_amount"),
        ("一千", "bad_amount"),
        ("NaN", "bad_amount"),
        ("1000000000000.00", "amount_too_large"),
    ],
)
def test_an_unreadable_amount_is_a_problem_and_no_value(text: str, code: str) -> None:
    fields, problems = read_einvoice_xml(minimal(total=text))
    assert fields is not None
    assert fields.total_with_tax_fen is None
    assert codes(problems) == [("total_with_tax_fen", code)]


def test_totals_that_do_not_add_up() -> None:
    fields, problems = read_einvoice_xml(minimal(total="1060.01"))
    assert fields is not None
    assert codes(problems) == [("total_with_tax_fen", "totals_inconsistent")]
    assert problems[0].render() == "The totals do not add up: 1000.00 + 60.00 is not 1060.01."


def test_a_number_that_is_not_20_digits_is_kept_and_flagged() -> None:
    fields, problems = read_einvoice_xml(minimal(number="2611200000001234"))
    assert fields is not None
    assert fields.number == "2611200000001234"
    assert codes(problems) == [("number", "not_20_digits")]


def test_an_unreadable_date() -> None:
    fields, problems = read_einvoice_xml(minimal(issue_time="2026-02-30"))
    assert fields is not None
    assert fields.issued_on is None
    assert codes(problems) == [("issued_on", "bad_date")]


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'.encode()
        for n in range(1, 10)
    )
    + b"]><EInvoice><BuyerName>&lol9;</BuyerName></EInvoice>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<EInvoice><BuyerName>&x;</BuyerName></EInvoice>"
)


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_entity_tricks_are_refused_as_a_problem(data: bytes) -> None:
    fields, problems = read_einvoice_xml(data)
    assert fields is None
    assert codes(problems) == [("", "forbidden_markup")]


def test_a_file_over_5_mb_is_not_parsed() -> None:
    data = minimal()

    def padded(size: int) -> bytes:
        return data.replace(b"<EInvoice>", b"<EInvoice>" + b" " * (size - len(data)))

    fields, problems = read_einvoice_xml(padded(MAX_XML_BYTES + 1))
    assert fields is None
    assert codes(problems) == [("", "too_large")]
    assert problems[0].render() == "The XML file is larger than 5 MB."
    fields, problems = read_einvoice_xml(padded(MAX_XML_BYTES))  # exactly 5 MB is read
    assert fields is not None
    assert problems == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"<EInvoice><InvoiceNumber>1</EInvoice>", "not_xml"),
        (b"%PDF-1.7 not xml", "not_xml"),
        (b'<?xml version="1.0" encoding="x-no-such-codec"?><a/>', "unknown_encoding"),
        (b'<?xml version="1.0" encoding="GBK"?><a>\xff\xff</a>', "bad_encoding"),
        (b"<a>\xff</a>", "bad_encoding"),
        (b"<html><body><p>hello</p></body></html>", "not_einvoice"),
    ],
)
def test_unreadable_files_give_one_problem_and_no_fields(data: bytes, code: str) -> None:
    fields, problems = read_einvoice_xml(data)
    assert fields is None
    assert codes(problems) == [("", code)]
    assert "\n" not in problems[0].render()


def test_the_syntax_error_says_where() -> None:
    _fields, problems = read_einvoice_xml(b"<EInvoice>\n<InvoiceNumber>1</EInvoice>")
    assert problems[0].params["line"] == 2
    assert problems[0].render().startswith("The file is not well-formed XML (line 2, column ")


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(min_value=-(MAX_MONEY_FEN // 2), max_value=MAX_MONEY_FEN // 2),
    tax=st.integers(min_value=-(MAX_MONEY_FEN // 2), max_value=MAX_MONEY_FEN // 2),
)
def test_money_is_exact_fen_for_any_amount(amount: int, tax: int) -> None:
    data = minimal(amount=format_money(amount), tax=format_money(tax), total=format_money(amount + tax))
    fields, problems = read_einvoice_xml(data)
    assert problems == []
    assert fields is not None
    assert (fields.total_amount_fen, fields.total_tax_fen, fields.total_with_tax_fen) == (
        amount,
        tax,
        amount + tax,
    )
    assert fields.lines[0].amount_fen == amount


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=1024) | st.text(max_size=300).map(lambda text: f"<EInvoice>{text}".encode()))
def test_reading_never_raises(data: bytes) -> None:
    fields, problems = read_einvoice_xml(data)
    assert fields is not None or problems
