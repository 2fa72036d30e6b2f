"""The files an invoice is handed over in: the PDF form, the 数电票 XML, the receipt PDF, the QR text.

Each is read back the way a recipient would: the PDF's text extracted with pdfplumber and its QR
codes decoded with zxing-cpp from a rendered page; the XML through the project's own reader; the
receipt PDF's attachment taken out with pypdf.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pdfplumber
import pypdfium2
import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fapiao.core.choices import Colour, InvoiceKind
from fapiao.core.errors import InvalidValueError
from fapiao.core.identifiers import TaxId, TaxIdKind
from fapiao.core.invoice import Buyer
from fapiao.core.invoice_qr import crc16, invoice_qr_text, read_invoice_qr
from fapiao.core.money import format_money
from fapiao.core.receipt import verify_receipt
from fapiao.core.words import amount_in_words
from fapiao.formats.einvoice_xml import read_einvoice_xml
from fapiao.formats.einvoice_xml_write import write_einvoice_xml
from fapiao.formats.invoice_pdf import TITLES, invoice_form, render_invoice_pdf
from fapiao.formats.receipt_pdf import ReceiptPage, embedded_receipt, render_receipt_pdf
from tests.unit.invoice_files_factory import document, line

ROOT = Path(__file__).resolve().parents[2]
CHECK_URL = (
    "https://fapiao.example.cn/check/?number=26110000000000000007&issued_on=2026-11-28&total_with_tax=1399.00"
)


def pdf_text(data: bytes) -> str:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return "\n".join(page.extract_text() or "" for page in pdf.pages)


def qr_codes(data: bytes) -> list[str]:
    """Every QR code on the first page, as a phone camera would read it (rendered at 200 dpi)."""
    page = pypdfium2.PdfDocument(data)[0]
    image = page.render(scale=200 / 72).to_pil()
    return sorted(result.text for result in zxingcpp.read_barcodes(image))


# --- the QR text --------------------------------------------------------------------------------------


def test_the_qr_text_has_the_official_fields_in_order() -> None:
    text = invoice_qr_text(
        kind=InvoiceKind.ORDINARY,
        number="26110000000000000001",
        total_with_tax=106000,
        issued_on=date(2026, 11, 28),
    )
    fields = text.split(",")
    assert fields[:7] == ["01", "32", "", "26110000000000000001", "1060.00", "20261128", ""]
    assert fields[7] == f"{crc16(','.join(fields[:7]).encode() + b','):04X}"
    assert crc16(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value
    special = invoice_qr_text(
        kind=InvoiceKind.SPECIAL,
        number="26110000000000000001",
        total_with_tax=-106000,
        issued_on=date(2026, 1, 2),
    )
    assert special.split(",")[1:6] == ["31", "", "26110000000000000001", "-1060.00", "20260102"]


def test_other_platforms_qr_texts_are_read() -> None:
    digital = read_invoice_qr("01,32,,10000000000000000001,48.90,20260602,,7014")
    assert (digital.kind, digital.number, digital.amount, digital.issued_on) == (
        InvoiceKind.ORDINARY,
        "10000000000000000001",
        4890,
        date(2026, 6, 2),
    )
    legacy = read_invoice_qr("01,10,011001605111,80100798,64.9,20161018,85342965681116380258,BE2D")
    assert (legacy.code, legacy.number, legacy.amount) == ("011001605111", "80100798", 6490)
    assert read_invoice_qr(" 01,31,,24922000000012341234,666.00,20240208,,76A1\n").kind is InvoiceKind.SPECIAL


@pytest.mark.parametrize(
    "text",
    ["https://example.com/pay?x=1", "02,32,,10000000000000000001,1,20260101,,", "01,32,,", "01,99,,1,1,1,,",
     "01,32,,10000000000000000001,abc,20260602,,7014", "01,32,,10000000000000000001,1.00,20261399,,"],
)  # fmt: skip
def test_what_is_not_an_invoice_qr_is_refused(text: str) -> None:
    with pytest.raises(InvalidValueError) as refused:
        read_invoice_qr(text)
    assert refused.value.code == "not_invoice_qr"


# --- the PDF form -------------------------------------------------------------------------------------


def test_the_pdf_form_shows_every_field() -> None:
    invoice = document()
    data = render_invoice_pdf(invoice_form(invoice, issuer="王开票", check_url=CHECK_URL))
    text = pdf_text(data)
    expected = [
        TITLES[InvoiceKind.SPECIAL],
        "发票号码：26110000000000000007",
        "开票日期：2026年11月28日",
        "北京买方贸易有限公司",
        "91110000MA01XKQ2TQ",
        "北京示例科技有限公司",
        "91110108MA01ABCD84",
        "统一社会信用代码/纳税人识别号",
        "*信息技术服务*软件开发",
        "V2.0",
        "*计算机外部设备*键盘",
        "K-104",
        "项目名称 规格型号 单位 数量 单价 金额 税率/征收率 税额",
        "6%",
        "13%",
        "150.00",
        "合计 ¥1300.00 ¥99.00",
        "价税合计（大写）",
        amount_in_words(139900),
        "（小写）¥1399.00",
        "备注 合同号 HT-2026-001",
        "开票人：王开票",
        CHECK_URL,
    ]
    assert [item for item in expected if item not in text] == []
    assert "红字" not in text


def test_the_pdf_qr_codes_read_back() -> None:
    invoice = document()
    data = render_invoice_pdf(invoice_form(invoice, issuer="王开票", check_url=CHECK_URL))
    official, *others = [code for code in qr_codes(data) if code.startswith("01,")]
    assert qr_codes(data) == sorted([official, CHECK_URL])
    assert not others
    read = read_invoice_qr(official)
    assert (read.kind, read.number, read.amount, read.issued_on) == (
        InvoiceKind.SPECIAL,
        "26110000000000000007",
        139900,
        date(2026, 11, 28),
    )


def test_a_red_invoice_names_the_blue_one_and_is_negative() -> None:
    red_line = line(1, "*信息技术服务*软件开发", "-1", "1000.00", "0.06")
    invoice = document(
        colour=Colour.RED,
        kind=InvoiceKind.ORDINARY,
        number="26110000000000000008",
        lines=[red_line],
        original_number="26110000000000000007",
        remark="",
    )
    form = invoice_form(invoice, issuer="王开票", check_url=CHECK_URL, confirmation_no="1101AB00000001")
    text = pdf_text(render_invoice_pdf(form))
    for item in [
        TITLES[InvoiceKind.ORDINARY],
        "红字发票",
        "被红冲蓝字数电发票号码：26110000000000000007",
        "红字发票信息确认单编号：1101AB00000001",
        "（小写）¥-1060.00",
        "负壹仟零陆拾圆整",
    ]:
        assert item in text
    assert form.qr_text.split(",")[4] == "-1060.00"


def test_an_individual_buyer_id_is_printed_as_the_caller_says() -> None:
    buyer = Buyer(name="张三", tax_id=TaxId("11010519491231002X", TaxIdKind.RESIDENT_ID))
    invoice = document(buyer=buyer, kind=InvoiceKind.ORDINARY, sealed="ab" * 32)
    assert invoice["buyer"]["tax_id"] is None  # the entry never holds it
    masked = pdf_text(
        render_invoice_pdf(
            invoice_form(invoice, buyer_tax_id="110105********002X", issuer="", check_url=CHECK_URL)
        )
    )
    full = pdf_text(
        render_invoice_pdf(
            invoice_form(invoice, buyer_tax_id="11010519491231002X", issuer="", check_url=CHECK_URL)
        )
    )
    assert "11010519491231002X" not in masked and "110105********002X" in masked
    assert "11010519491231002X" in full


def test_text_the_font_lacks_is_shown_not_dropped() -> None:
    invoice = document(remark="表情 \U0001f600 与 ¥ 符号")
    text = pdf_text(render_invoice_pdf(invoice_form(invoice, issuer="", check_url=CHECK_URL)))
    assert "[U+1F600]" in text and "¥ 符号" in text


def test_many_lines_run_on_to_more_pages_and_rendering_is_repeatable() -> None:
    lines = [line(n, f"*信息技术服务*第{n}项", "1", "10.00", "0.06") for n in range(1, 41)]
    invoice = document(lines=lines)
    form = invoice_form(invoice, issuer="王开票", check_url=CHECK_URL)
    data = render_invoice_pdf(form)
    assert data == render_invoice_pdf(form)
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        assert len(pdf.pages) > 1
        assert "项目名称" in (pdf.pages[1].extract_text() or "")  # the header repeats
    assert "*信息技术服务*第40项" in pdf_text(data)


# --- the XML ------------------------------------------------------------------------------------------

NAMES = (
    st.text(
        alphabet=st.sampled_from("发票软件服务咨询设备键盘鼠标*（）()-ABCxyz0123 "), min_size=1, max_size=30
    )
    .map(str.strip)
    .filter(bool)
)
RATES = st.sampled_from(["0.13", "0.09", "0.06", "0.03", "0.01", "0", "exempt", "not_taxable"])


@st.composite
def invoices(draw: st.DrawFn) -> dict[str, Any]:
    red = draw(st.booleans())
    lines = []
    for no in range(1, draw(st.integers(1, 5)) + 1):
        quantity = draw(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(999), places=3))
        price = draw(st.decimals(min_value=Decimal("0.01"), max_value=Decimal(99999), places=2))
        lines.append(
            line(
                no,
                draw(NAMES),
                str(-quantity if red else quantity),
                str(price),
                draw(RATES),
                spec=draw(st.one_of(st.just(""), NAMES)),
                unit=draw(st.sampled_from(["", "个", "项", "台"])),
                tax_code=draw(st.sampled_from(["", "3040201000000000000", "1090511010000000000"])),
            )
        )
    buyer_id = draw(st.sampled_from([None, TaxId("91110000MA01XKQ2TQ", TaxIdKind.USCC)]))
    return document(
        number=f"26110{draw(st.integers(0, 10**15 - 1)):015d}",
        kind=draw(st.sampled_from(InvoiceKind)),
        colour=Colour.RED if red else Colour.BLUE,
        issued_on=draw(st.dates(date(2024, 1, 1), date(2030, 12, 31))),
        buyer=Buyer(name=draw(NAMES), tax_id=buyer_id),
        lines=lines,
        original_number="26110000000000000001" if red else None,
        remark=draw(st.one_of(st.just(""), NAMES)),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invoices())
def test_the_xml_reads_back_to_the_same_invoice(invoice: dict[str, Any]) -> None:
    data = write_einvoice_xml(invoice, issue_time=f"{invoice['issued_on']} 10:11:12", drawer="王开票")
    fields, problems = read_einvoice_xml(data)
    assert problems == []
    assert fields is not None
    money = {
        name: format_money(getattr(fields, f"{name}_fen"))
        for name in ("total_amount", "total_tax", "total_with_tax")
    }
    read_back = {
        "number": fields.number,
        "issued_on": fields.issued_on.isoformat() if fields.issued_on else None,
        "kind": fields.kind,
        "colour": fields.colour,
        "seller": {"name": fields.seller_name, "tax_id": fields.seller_tax_id},
        "buyer": {"name": fields.buyer_name, "tax_id": fields.buyer_tax_id},
        "original_number": fields.original_number,
        "remark": fields.remark or "",
        **money,
        "lines": [
            {
                "name": item.name,
                "spec": item.spec or "",
                "unit": item.unit or "",
                "tax_code": item.tax_code or "",
                "quantity": item.quantity,
                "unit_price": item.unit_price,
                "amount": format_money(item.amount_fen or 0),
                "tax_rate": item.tax_rate,
                "tax": format_money(item.tax_fen or 0),
            }
            for item in fields.lines
        ],
    }
    expected = {key: invoice[key] for key in read_back if key != "buyer"}
    expected["buyer"] = {"name": invoice["buyer"]["name"], "tax_id": invoice["buyer"]["tax_id"]}
    expected["lines"] = [{key: item[key] for key in read_back["lines"][0]} for item in invoice["lines"]]
    assert read_back == expected


def test_the_xml_has_the_official_structure() -> None:
    data = write_einvoice_xml(document(), issue_time="2026-11-28 10:11:12", drawer="王开票")
    text = data.decode()
    for path in [
        "<EInvoice>", "<Header>", "<EIid>26110000000000000007</EIid>", "<EInvoiceTag>SWEI1100</EInvoiceTag>",
        "<InIssuType>", "<LabelCode>Y</LabelCode>", "<GeneralOrSpecialVAT>", "<LabelCode>01</LabelCode>",
        "<EInvoiceData>", "<SellerInformation>", "<BuyerInformation>", "<BasicInformation>",
        "<TotalTax-includedAmount>1399.00</TotalTax-includedAmount>",
        f"<TotalTax-includedAmountInChinese>{amount_in_words(139900)}</TotalTax-includedAmountInChinese>",
        "<Drawer>王开票</Drawer>", "<IssuItemInformation>", "<TaxClassificationCode>", "<TaxSupervisionInfo>",
        "<InvoiceNumber>26110000000000000007</InvoiceNumber>", "<IssueTime>2026-11-28 10:11:12</IssueTime>",
    ]:  # fmt: skip
        assert path in text
    assert data == write_einvoice_xml(document(), issue_time="2026-11-28 10:11:12", drawer="王开票")


def test_an_individual_buyer_id_never_reaches_the_xml() -> None:
    buyer = Buyer(name="张三", tax_id=TaxId("11010519491231002X", TaxIdKind.RESIDENT_ID), phone="13812345678")
    data = write_einvoice_xml(document(buyer=buyer, sealed="ab" * 32), issue_time="2026-11-28 10:11:12")
    assert b"11010519491231002X" not in data and b"13812345678" not in data
    assert b"<BuyerIdNum>" not in data


# --- the receipt PDF ----------------------------------------------------------------------------------


def example_receipt() -> tuple[bytes, dict[str, Any]]:
    example = json.loads((ROOT / "docs/spec/receipt-example.json").read_text(encoding="utf-8"))
    return json.dumps(example["receipt"], ensure_ascii=False, indent=2).encode(), example


def test_the_receipt_pdf_explains_shows_and_carries_the_receipt() -> None:
    data, example = example_receipt()
    receipt = example["receipt"]
    page = ReceiptPage(
        number="26110100000000000002",
        total_with_tax=26500,
        seller_name="北京示例科技有限公司",
        receipt_json=data,
    )
    pdf = render_receipt_pdf(page)
    text = pdf_text(pdf)
    with pdfplumber.open(io.BytesIO(pdf)) as document_:
        assert len(document_.pages) == 1
    for item in [
        "发票存证回执", "本回执证明", "26110100000000000002", "¥265.00", f"第 {receipt['index']} 条",
        f"{receipt['head']['size']} 条", receipt["head"]["root"], receipt["head"]["key_id"], "receipt.json",
        "fapiao receipt verify",
    ]:  # fmt: skip
        assert str(item) in text
    attached = embedded_receipt(pdf)
    assert attached == data  # byte for byte
    keys = {example["key_id"]: base64.b64decode(example["public_key"])}
    assert verify_receipt(attached, keys).ok
    assert pdf == render_receipt_pdf(page)
