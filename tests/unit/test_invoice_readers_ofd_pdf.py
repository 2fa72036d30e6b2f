"""The OFD and PDF readers on files the tests make: OFD zips, and our own PDF form with its QR code."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from datetime import date

import pypdfium2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pypdf import PdfReader, PdfWriter
from reportlab.graphics import renderPDF
from reportlab.pdfgen import canvas

from fapiao.core.invoice_qr import invoice_qr_text
from fapiao.formats.invoice_pdf import InvoiceForm, invoice_form, qr_drawing, render_invoice_pdf
from fapiao.formats.invoice_text import read_form_text
from fapiao.formats.pdf_invoice import PdfLimits, read_pdf
from fapiao.formats.pdf_text import CJK_FONT, register_fonts
from fapiao.formats.readers import read_invoice_file
from fapiao.formats.records import ReadResult
from tests.unit.invoice_files_factory import (
    CHECK_URL,
    FORM_ROWS,
    document,
    einvoice_xml,
    invoice_pdf,
    legacy_xml,
    line,
    ofd,
    red_document,
    xbrl,
)


def codes(result: ReadResult) -> list[tuple[str, str]]:
    return [(problem.field, problem.code) for problem in result.problems]


# --- OFD ----------------------------------------------------------------------------------------------


def test_an_ofd_with_the_einvoice_attached_reads_it() -> None:
    result = read_invoice_file(ofd(attachment=einvoice_xml(), page_rows=FORM_ROWS))
    assert (result.format, codes(result)) == ("ofd", [])
    record = result.records[0]
    assert (record.number, record.total_with_tax_fen, len(record.lines)) == (
        "26110000000000000007",
        139900,
        2,
    )


def test_an_ofd_whose_page_disagrees_with_its_attachment_is_a_problem() -> None:
    rows = [row[:] for row in FORM_ROWS]
    rows[0][1] = "发票号码：26110000000000000099"
    result = read_invoice_file(ofd(attachment=einvoice_xml(), page_rows=rows))
    assert codes(result) == [("number", "page_disagrees")]
    assert result.accepted() == []


def test_an_ofd_with_a_legacy_or_xbrl_attachment() -> None:
    legacy = read_invoice_file(ofd(attachment=legacy_xml(), attachment_name="Doc_0/Attachs/invoice.xml"))
    assert (codes(legacy), legacy.records[0].code, legacy.records[0].number) == (
        [],
        "011001900111",
        "80100798",
    )
    accounting = read_invoice_file(ofd(attachment=xbrl(), attachment_name="Doc_0/Attachs/einv.xbrl.xml"))
    assert (codes(accounting), accounting.records[0].total_with_tax_fen) == ([], 139900)


def test_an_ofd_with_custom_tags_pointing_at_page_text() -> None:
    rows = [
        [
            "011001900111",
            "80100798",
            "2020年05月20日",
            "91110108MA01ABCD84",
            "北京示例科技有限公司",
            "乙公司",
        ],
        ["100.00", "6.00", "106.00"],
    ]
    ids = {name: 100 + index for index, name in enumerate(
        ["InvoiceCode", "InvoiceNo", "IssueDate", "SellerTaxID", "SellerName", "BuyerName",
         "TaxExclusiveTotalAmount", "TaxTotalAmount", "TaxInclusiveTotalAmount"])}  # fmt: skip
    tags = (
        '<eInvoice xmlns:ofd="http://www.ofdspec.org/2016">'
        + "".join(
            f'<{name}><ofd:ObjectRef PageRef="1">{ref}</ofd:ObjectRef></{name}>' for name, ref in ids.items()
        )
        + "</eInvoice>"
    )
    result = read_invoice_file(ofd(page_rows=rows, tags=tags))
    record = result.records[0]
    assert (record.code, record.number, record.issued_on) == ("011001900111", "80100798", date(2020, 5, 20))
    assert (record.seller_name, record.buyer_name, record.total_with_tax_fen) == (
        "北京示例科技有限公司",
        "乙公司",
        10600,
    )
    assert codes(result) == [("lines", "no_lines")]  # the tags carry no lines: not importable, and said so


def test_an_ofd_with_only_custom_data_in_ofd_xml() -> None:
    custom = {
        "发票代码": "011001900111",
        "发票号码": "80100798",
        "开票日期": "2020-05-20",
        "合计金额": "100.00",
    }
    result = read_invoice_file(ofd(custom=custom))
    assert (result.records[0].code, result.records[0].total_amount_fen) == ("011001900111", 10000)


def test_an_ofd_with_only_page_text_falls_back_to_it() -> None:
    result = read_invoice_file(ofd(page_rows=FORM_ROWS))
    assert (result.format, codes(result)) == ("ofd", [])
    record = result.records[0]
    assert (record.number, record.kind, record.buyer_name, record.seller_tax_id) == (
        "26110000000000000007", "special", "北京买方贸易有限公司", "91110108MA01ABCD84")  # fmt: skip
    assert [(line.name, line.quantity, line.amount_fen) for line in record.lines] == [
        ("*信息技术服务*软件开发", "1", 100000),
        ("*计算机外部设备*键盘", "2", 30000),
    ]


def test_an_ofd_without_invoice_data_is_one_clear_problem() -> None:
    result = read_invoice_file(ofd(page_rows=[["会议纪要"], ["第一页"]]))
    assert (result.format, codes(result), result.records) == ("ofd", [("", "ofd_no_invoice")], ())


def test_a_zip_bomb_in_an_ofd_is_refused_before_it_is_unpacked() -> None:
    result = read_invoice_file(ofd(extra={"Doc_0/Res/blank.bin": b"\0" * (20 * 2**20)}))
    assert codes(result) == [("", "zip_bomb")]


def test_a_truncated_or_encrypted_ofd_is_a_problem() -> None:
    data = ofd(attachment=einvoice_xml())
    assert codes(read_invoice_file(data[: len(data) - 30])) in (
        [("", "zip_damaged")],
        [("", "unsupported_format")],
    )
    flagged = bytearray(data)
    flagged[6] |= 1  # the "encrypted" flag of the first entry, in the local header …
    central = flagged.find(b"PK\x01\x02")
    flagged[central + 8] |= 1  # … and in the central directory
    assert codes(read_invoice_file(bytes(flagged))) == [("", "zip_unsupported")]


def test_a_zip_that_is_not_an_ofd() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("OFD.xml", "<ofd:OFD xmlns:ofd='x'/>")
    assert codes(read_invoice_file(buffer.getvalue())) == [("", "ofd_no_invoice")]


# --- PDF ----------------------------------------------------------------------------------------------


def test_our_pdf_form_reads_back_with_text_and_qr_agreeing() -> None:
    invoice = document()
    result = read_invoice_file(invoice_pdf(invoice))
    assert (result.format, codes(result)) == ("pdf", [])
    shaped = result.records[0].as_api()
    for key in ("number", "issued_on", "kind", "total_amount", "total_tax", "total_with_tax"):
        assert shaped[key] == str(invoice[key]), key
    assert (shaped["seller"], shaped["buyer"]["tax_id"]) == (invoice["seller"], invoice["buyer"]["tax_id"])
    keys = ("name", "quantity", "unit_price", "amount", "tax_rate", "tax")
    assert [[line[key] for key in keys] for line in shaped["lines"]] == [
        [line[key] for key in keys] for line in invoice["lines"]
    ]


def test_a_red_pdf_reads_back_red_with_its_blue_number() -> None:
    result = read_invoice_file(invoice_pdf(red_document()))
    assert codes(result) == []
    record = result.records[0]
    assert (record.is_red, record.original_number, record.total_with_tax_fen) == (
        True,
        "26110000000000000007",
        -106000,
    )


class LyingForm(InvoiceForm):
    """A form whose QR code says another number and amount than its text."""

    @property
    def qr_text(self) -> str:
        return invoice_qr_text(
            kind=self.kind, number="26110000000000000099", total_with_tax=1, issued_on=self.issued_on
        )


def test_a_qr_code_that_disagrees_with_the_text_is_a_problem() -> None:
    honest = invoice_form(document(), issuer="王开票", check_url=CHECK_URL)
    lying = LyingForm(
        **{field.name: getattr(honest, field.name) for field in dataclasses.fields(InvoiceForm)}
    )
    result = read_invoice_file(render_invoice_pdf(lying))
    assert codes(result) == [("number", "qr_disagrees"), ("total_with_tax_fen", "qr_disagrees")]
    assert result.problems[0].render() == (
        "The QR code says number is 26110000000000000099, but the text says 26110000000000000007."
    )
    assert result.accepted() == []


def qr_only_pdf(text: str) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=(300, 300))
    renderPDF.draw(qr_drawing(text, size=200), page, 50, 50)
    page.save()
    return buffer.getvalue()


def test_a_pdf_without_a_text_layer_is_a_problem_and_shows_what_the_qr_says() -> None:
    result = read_invoice_file(qr_only_pdf("01,32,,26110000000000000007,1399.00,20261128,,ABCD"))
    assert codes(result) == [("", "no_text_layer")]
    assert (result.records[0].number, result.records[0].total_with_tax_fen) == (
        "26110000000000000007",
        139900,
    )
    assert result.accepted() == []


def test_a_pdf_without_a_qr_code_is_a_problem() -> None:
    data = invoice_pdf()
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=(600, 400))
    page.setFont("Helvetica", 8)
    page.drawString(10, 390, "Fapiao 2026")  # a PDF with text but no QR code and no invoice
    page.save()
    assert codes(read_invoice_file(buffer.getvalue())) == [("", "not_invoice_text")]
    text_only = read_pdf(data, PdfLimits(dpi=4))  # rendered too coarse for any QR code to be found
    assert codes(text_only) == [("", "no_qr_code")]


def test_a_password_protected_pdf_is_a_problem() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(invoice_pdf())))
    writer.encrypt(user_password="secret", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert codes(read_invoice_file(buffer.getvalue())) == [("", "password_protected")]


def test_a_truncated_pdf_is_a_problem() -> None:
    data = invoice_pdf()
    assert codes(read_invoice_file(data[: len(data) // 2])) == [("", "pdf_damaged")]


def image_pdf(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=(300, 300))
    image = Image.new("1", (width, height))
    page.drawInlineImage(image, 0, 0, 300, 300)
    page.save()
    return buffer.getvalue()


def test_huge_images_pages_and_files_are_refused_before_rendering() -> None:
    assert codes(read_pdf(image_pdf(400, 400), PdfLimits(max_image_pixels=100_000))) == [
        ("", "image_too_large")
    ]
    assert codes(read_pdf(invoice_pdf(), PdfLimits(max_bytes=1000))) == [("", "too_large")]
    assert codes(read_pdf(invoice_pdf(), PdfLimits(max_pages=0))) == [("", "too_many_pages")]


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(position=st.integers(0, 10**7), byte=st.integers(0, 255), cut=st.booleans())
def test_reading_damaged_pdfs_and_ofds_never_raises(position: int, byte: int, cut: bool) -> None:
    for original in (invoice_pdf(), ofd(attachment=einvoice_xml(), page_rows=FORM_ROWS)):
        at = position % len(original)
        data = original[:at] if cut else original[:at] + bytes([byte]) + original[at + 1 :]
        result = read_invoice_file(data)
        assert result.records or result.problems


def test_an_oversized_ofd_is_refused_before_it_is_opened() -> None:
    data = ofd(attachment=einvoice_xml())
    padded = data + b"\0" * (20 * 2**20 + 1 - len(data))
    assert codes(read_invoice_file(padded)) == [("", "too_large")]


def test_an_ofd_attachment_with_entity_tricks_is_refused() -> None:
    attachment = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]>'
        b"<EInvoice><BuyerName>&a;</BuyerName></EInvoice>"
    )
    result = read_invoice_file(ofd(attachment=attachment, page_rows=FORM_ROWS))
    assert (codes(result), result.records) == ([("", "forbidden_markup")], ())


LEGACY_FORM = """北京增值税电子普通发票
发票代码:011001900111
发票号码:80100798
开票日期:2020年05月20日
校 验 码:85342 96568 11163 80258
购 名 称:北京买方贸易有限公司
买 纳税人识别号:91110000MA01XKQ2TQ
货物或应税劳务、服务名称 规格型号 单位 数 量 单 价 金 额 税率 税 额
*图书*会计学原理 本 2 50.00 100.00 免税 ***
*餐饮服务*餐费 1 20 20.00 6% 1.20
合 计 ¥120.00 ¥1.20
价税合计(大写) 壹佰贰拾壹圆贰角 (小写)¥121.20
销 名 称:北京示例科技有限公司
售 纳税人识别号:91110108MA01ABCD84
"""


def test_the_legacy_form_text_with_an_exempt_line() -> None:
    record, problems = read_form_text(LEGACY_FORM)
    assert problems == []
    assert record is not None
    assert (record.code, record.number, record.check_code) == (
        "011001900111",
        "80100798",
        "85342965681116380258",
    )
    assert (record.buyer_name, record.seller_tax_id, record.total_with_tax_fen) == (
        "北京买方贸易有限公司",
        "91110108MA01ABCD84",
        12120,
    )
    assert [(line.name, line.quantity, line.tax_rate, line.tax_fen) for line in record.lines] == [
        ("*图书*会计学原理", "2", "exempt", 0),
        ("*餐饮服务*餐费", "1", "0.06", 120),
    ]


def test_a_pdf_of_several_pages_reads_every_line_once() -> None:
    lines = [line(no, f"*信息技术服务*软件开发第{no}期", "1", f"{no}.00", "0.06") for no in range(1, 41)]
    long_name = (
        "*信息技术服务*软件开发与系统集成及其后续运维技术支持服务（含三年升级许可）"  # wraps in its cell
    )
    lines[0] = line(1, long_name, "3", "1000.00", "0.06", unit="项")
    invoice = document(lines=lines)
    result = read_invoice_file(invoice_pdf(invoice))
    assert codes(result) == []
    assert [item.name for item in result.records[0].lines] == [item["name"] for item in invoice["lines"]]


def official_style_pdf(qr_text: str) -> bytes:
    """The form's text rows, and the QR code as an embedded bitmap, as the tax bureau's PDF has it."""
    qr_document = pypdfium2.PdfDocument(qr_only_pdf(qr_text))
    qr_image = qr_document[0].render(scale=2).to_pil()
    qr_document.close()
    buffer = io.BytesIO()
    register_fonts()
    page = canvas.Canvas(buffer, pagesize=(700, 400))
    page.drawInlineImage(qr_image, 10, 300, 90, 90)
    page.setFont(CJK_FONT, 9)
    for index, row in enumerate(FORM_ROWS):
        page.drawString(110, 380 - 14 * index, " ".join(row))
    page.save()
    return buffer.getvalue()


def test_a_qr_code_embedded_as_an_image_is_read_as_on_the_official_form() -> None:
    result = read_pdf(official_style_pdf("01,31,,26110000000000000007,1399.00,20261128,,ABCD"))
    assert codes(result) == []
    assert (result.records[0].number, result.records[0].total_with_tax_fen) == (
        "26110000000000000007",
        139900,
    )
    wrong = read_pdf(official_style_pdf("01,32,,26110000000000000007,1399.10,20261127,,ABCD"))
    assert codes(wrong) == [
        ("issued_on", "qr_disagrees"),
        ("total_with_tax_fen", "qr_disagrees"),
        ("kind", "qr_disagrees"),
    ]


form_words = st.sampled_from(
    [
        "发票号码：",
        "开票日期：",
        "名称：",
        "纳税人识别号：",
        "合计",
        "（小写）¥",
        "项目名称",
        "免税",
        "***",
        "6%",
        "-",
        "¥",
    ]
)
form_text = st.lists(
    st.lists(form_words | st.text(max_size=12) | st.decimals(allow_nan=False).map(str), max_size=8),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(rows=form_text)
def test_reading_any_form_text_never_raises(rows: list[list[str]]) -> None:
    record, problems = read_form_text("\n".join(" ".join(row) for row in rows))
    assert record is not None or problems


@settings(max_examples=60, deadline=None)
@given(rows=form_text, attachment=st.binary(max_size=300) | st.none(), tags=st.text(max_size=200) | st.none())
def test_reading_any_ofd_contents_never_raises(
    rows: list[list[str]], attachment: bytes | None, tags: str | None
) -> None:
    result = read_invoice_file(ofd(page_rows=rows, attachment=attachment, tags=tags))
    assert result.format == "ofd"
    assert result.records or result.problems
