"""An invoice as a PDF in the layout of the 电子发票（普通发票／增值税专用发票） form.

A pure renderer: :func:`invoice_form` turns the ``invoice`` object of a ledger entry (what the
ledger signed, :mod:`fapiao.core.invoice_document`) into an :class:`InvoiceForm`, and
:func:`render_invoice_pdf` draws it.  The layout follows the official form: the QR code top left,
the title, number and date top right; the buyer's and the seller's blocks; the lines (项目名称,
规格型号, 单位, 数量, 单价, 金额, 税率/征收率, 税额) with their 合计; 价税合计 in 大写 and 小写;
备注; 开票人.  Below the form, a 查验 link (and its QR code) to our public check page.

Rendering the same form twice gives the same bytes (reportlab's ``invariant`` mode), but the
caller stores the first rendering anyway: a later software version may draw differently.
The text is extractable (:mod:`fapiao.formats.pdf_text`), so the project's tests — and any
reader — find every field in it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from fapiao.core.choices import InvoiceKind
from fapiao.core.invoice_qr import invoice_qr_text
from fapiao.core.money import format_money, parse_money
from fapiao.core.tax import rate_by_code, rate_label
from fapiao.core.words import amount_in_words
from fapiao.formats.pdf_text import CJK_FONT, paragraph_markup, register_fonts

PAGE: Final = (240 * mm, 150 * mm)  # the form's own landscape size; long invoices run on
MARGIN: Final = 8 * mm
WIDTH: Final = PAGE[0] - 2 * MARGIN
QR_SIZE: Final = 20 * mm
TITLES: Final = {
    InvoiceKind.ORDINARY: "电子发票（普通发票）",
    InvoiceKind.SPECIAL: "电子发票（增值税专用发票）",
}
FRAME_COLOUR: Final = colors.HexColor("#8B4513")  # the form's brown
RED: Final = colors.HexColor("#B22222")


@dataclass(frozen=True, slots=True)
class FormLine:
    """One line as printed: text and money already formatted."""

    name: str
    spec: str
    unit: str
    quantity: str
    unit_price: str
    amount: str
    rate: str
    tax: str


@dataclass(frozen=True, slots=True)
class InvoiceForm:
    """Everything the form shows.  ``buyer_tax_id`` is what to print (masked or not: the caller's
    choice); money in fen."""

    kind: InvoiceKind
    red: bool
    number: str
    issued_on: date
    buyer_name: str
    buyer_tax_id: str
    seller_name: str
    seller_tax_id: str
    lines: Sequence[FormLine]
    total_amount: int
    total_tax: int
    total_with_tax: int
    remark: str
    issuer: str
    check_url: str
    original_number: str | None = None
    confirmation_no: str | None = None
    # A red mark across the head: the stored invoice is missing or differs from its ledger entry
    # (``与账本不一致`` / ``缺失``), so this copy is never handed over as if it were fine.
    ledger_flag: str = ""

    @property
    def qr_text(self) -> str:
        return invoice_qr_text(
            kind=self.kind, number=self.number, total_with_tax=self.total_with_tax, issued_on=self.issued_on
        )

    @property
    def remark_lines(self) -> list[str]:
        """The 备注 as printed: a red invoice names the blue one it reverses, as the official form does."""
        lines: list[str] = []
        if self.red and self.original_number:
            lines.append(f"被红冲蓝字数电发票号码：{self.original_number}")
        if self.red and self.confirmation_no:
            lines.append(f"红字发票信息确认单编号：{self.confirmation_no}")
        return lines + [line for line in self.remark.replace("\r\n", "\n").split("\n") if line.strip()]


def invoice_form(
    invoice: Mapping[str, Any],
    *,
    buyer_tax_id: str | None = None,
    issuer: str,
    check_url: str,
    confirmation_no: str | None = None,
) -> InvoiceForm:
    """The form of a ledger entry's ``invoice`` object.  ``buyer_tax_id`` overrides the entry's
    (which is null when it holds a person's ID number: the caller passes it revealed or masked)."""
    lines = [
        FormLine(
            name=str(line["name"]),
            spec=str(line.get("spec") or ""),
            unit=str(line.get("unit") or ""),
            quantity=str(line.get("quantity") or ""),
            unit_price=str(line.get("unit_price") or ""),
            amount=str(line["amount"]),
            rate=rate_label(rate_by_code(str(line["tax_rate"]))),
            tax=str(line["tax"]),
        )
        for line in invoice["lines"]
    ]
    buyer = invoice["buyer"]
    return InvoiceForm(
        kind=InvoiceKind(invoice["kind"]),
        red=invoice["colour"] == "red",
        number=str(invoice["number"]),
        issued_on=date.fromisoformat(str(invoice["issued_on"])),
        buyer_name=str(buyer["name"]),
        buyer_tax_id=buyer_tax_id if buyer_tax_id is not None else str(buyer.get("tax_id") or ""),
        seller_name=str(invoice["seller"]["name"]),
        seller_tax_id=str(invoice["seller"]["tax_id"]),
        lines=lines,
        total_amount=parse_money(invoice["total_amount"], allow_negative=True),
        total_tax=parse_money(invoice["total_tax"], allow_negative=True),
        total_with_tax=parse_money(invoice["total_with_tax"], allow_negative=True),
        remark=str(invoice.get("remark") or ""),
        issuer=issuer,
        check_url=check_url,
        original_number=invoice.get("original_number"),
        confirmation_no=confirmation_no,
    )


def qr_drawing(text: str, *, size: float = QR_SIZE) -> Drawing:
    """A QR code of ``text`` (error correction M) as a drawing."""
    drawing = Drawing(size, size)
    drawing.add(QrCodeWidget(text, barWidth=size, barHeight=size, barLevel="M"))
    return drawing


def _styles() -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName=CJK_FONT, fontSize=8, leading=10.5, wordWrap="CJK")
    return {
        "body": body,
        "label": ParagraphStyle("label", body, textColor=FRAME_COLOUR),
        "head": ParagraphStyle("head", body, textColor=FRAME_COLOUR, alignment=TA_CENTER),
        "title": ParagraphStyle(
            "title", body, fontSize=16, leading=20, alignment=TA_CENTER, textColor=FRAME_COLOUR
        ),
        "red": ParagraphStyle("red", body, fontSize=10, leading=13, alignment=TA_CENTER, textColor=RED),
        "flag": ParagraphStyle("flag", body, fontSize=14, leading=18, alignment=TA_CENTER, textColor=RED),
        "num": ParagraphStyle("num", body, alignment=TA_RIGHT),
        "centre": ParagraphStyle("centre", body, alignment=TA_CENTER),
        "small": ParagraphStyle("small", body, fontSize=7, leading=9),
    }


def _yuan(fen: int) -> str:
    return f"¥{format_money(fen)}"


def _header(form: InvoiceForm, st: dict[str, ParagraphStyle]) -> Table:
    def para(text: str, style: str = "body") -> Paragraph:
        return Paragraph(paragraph_markup(text), st[style])

    title: list[Any] = [para(TITLES[form.kind], "title")]
    if form.red:
        title.append(para("红字发票", "red"))
    if form.ledger_flag:
        title.append(para(f"【{form.ledger_flag}】请勿交付", "flag"))
    facts = [
        para(f"发票号码：{form.number}"),
        para(f"开票日期：{form.issued_on.year}年{form.issued_on.month:02d}月{form.issued_on.day:02d}日"),
    ]
    widths = [QR_SIZE + 4 * mm, WIDTH - 2 * (QR_SIZE + 4 * mm) - 30 * mm, QR_SIZE + 4 * mm + 30 * mm]
    style = TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (0, 0), 0)])
    return Table([[qr_drawing(form.qr_text), title, facts]], colWidths=widths, style=style)


def _parties(form: InvoiceForm, st: dict[str, ParagraphStyle]) -> Table:
    def para(text: str, style: str = "body") -> Paragraph:
        return Paragraph(paragraph_markup(text), st[style])

    def block(name: str, tax_id: str) -> list[Paragraph]:
        return [para(f"名称：{name}"), para(f"统一社会信用代码/纳税人识别号：{tax_id}")]

    side = 6 * mm
    half = WIDTH / 2 - side
    style = TableStyle(
        [
            ("BOX", (0, 0), (-1, -1), 0.8, FRAME_COLOUR),
            ("LINEBEFORE", (1, 0), (1, 0), 0.5, FRAME_COLOUR),
            ("LINEBEFORE", (2, 0), (3, 0), 0.5, FRAME_COLOUR),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
    )
    return Table(
        [
            [
                para("购买方信息", "label"),
                block(form.buyer_name, form.buyer_tax_id),
                para("销售方信息", "label"),
                block(form.seller_name, form.seller_tax_id),
            ]
        ],
        colWidths=[side, half, side, half],
        style=style,
    )


def _lines(form: InvoiceForm, st: dict[str, ParagraphStyle]) -> Table:
    def para(text: str, style: str = "body") -> Paragraph:
        return Paragraph(paragraph_markup(text), st[style])

    head = ["项目名称", "规格型号", "单位", "数量", "单价", "金额", "税率/征收率", "税额"]
    rows: list[list[Any]] = [[para(text, "head") for text in head]]
    for line in form.lines:
        rows.append(
            [
                para(line.name),
                para(line.spec),
                para(line.unit, "centre"),
                para(line.quantity, "num"),
                para(line.unit_price, "num"),
                para(line.amount, "num"),
                para(line.rate, "centre"),
                para(line.tax, "num"),
            ]
        )
    rows.append(
        [
            para("合计", "label"),
            "",
            "",
            "",
            "",
            para(_yuan(form.total_amount), "num"),
            "",
            para(_yuan(form.total_tax), "num"),
        ]
    )
    widths = [58 * mm, 26 * mm, 14 * mm, 24 * mm, 26 * mm, 26 * mm, 20 * mm]
    widths.append(WIDTH - sum(widths))
    style = TableStyle(
        [
            ("BOX", (0, 0), (-1, -1), 0.8, FRAME_COLOUR),
            ("LINEBELOW", (0, 0), (-1, 0), 0.4, FRAME_COLOUR),
            ("LINEABOVE", (0, -1), (-1, -1), 0.4, FRAME_COLOUR),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
    )
    return Table(rows, colWidths=widths, style=style, repeatRows=1)


def _totals(form: InvoiceForm, st: dict[str, ParagraphStyle]) -> Table:
    def para(text: str, style: str = "body") -> Paragraph:
        return Paragraph(paragraph_markup(text), st[style])

    remark = "<br/>".join(paragraph_markup(line) for line in form.remark_lines)
    rows = [
        [
            para("价税合计（大写）", "label"),
            para(amount_in_words(form.total_with_tax)),
            para(f"（小写）{_yuan(form.total_with_tax)}"),
        ],
        [para("备注", "label"), Paragraph(remark, st["body"]), ""],
    ]
    style = TableStyle(
        [
            ("BOX", (0, 0), (-1, -1), 0.8, FRAME_COLOUR),
            ("LINEBELOW", (0, 0), (-1, 0), 0.4, FRAME_COLOUR),
            ("LINEAFTER", (0, 0), (0, -1), 0.4, FRAME_COLOUR),
            ("SPAN", (1, 1), (2, 1)),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
    )
    return Table(rows, colWidths=[30 * mm, WIDTH - 90 * mm, 60 * mm], style=style, minRowHeights=[0, 14 * mm])


def _footer(form: InvoiceForm, st: dict[str, ParagraphStyle]) -> Table:
    def para(text: str, style: str = "body") -> Paragraph:
        return Paragraph(paragraph_markup(text), st[style])

    link = f'<link href="{paragraph_markup(form.check_url)}">{paragraph_markup(form.check_url)}</link>'
    check = [
        para(f"开票人：{form.issuer}"),
        Spacer(1, 2 * mm),
        para("查验：扫描右侧二维码，或在浏览器中打开", "small"),
        Paragraph(link, st["small"]),
        para("输入发票号码、开票日期和价税合计即可查验本发票。", "small"),
    ]
    size = 16 * mm
    style = TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("RIGHTPADDING", (1, 0), (1, 0), 0)])
    return Table(
        [[check, qr_drawing(form.check_url, size=size)]],
        colWidths=[WIDTH - size - 4 * mm, size + 4 * mm],
        style=style,
    )


def render_invoice_pdf(form: InvoiceForm) -> bytes:
    """The form as PDF bytes (more than one page when the lines need it)."""
    register_fonts()
    st = _styles()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"{TITLES[form.kind]} {form.number}",
        subject=form.number,
        author=form.seller_name,
        creator="Fapiao Vault",
        invariant=1,
    )
    story = [
        _header(form, st),
        Spacer(1, 2 * mm),
        _parties(form, st),
        _lines(form, st),
        _totals(form, st),
        Spacer(1, 2 * mm),
        _footer(form, st),
    ]
    doc.build(story)
    return buffer.getvalue()
