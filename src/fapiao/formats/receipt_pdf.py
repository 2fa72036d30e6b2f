"""The ledger receipt of an invoice as a one-page PDF for people (发票存证回执).

``receipt.json`` (``fapiao-receipt/1``, docs/api.md) is the proof; this page says in plain
Chinese what it proves, shows the invoice number, the 价税合计, the entry's index in the log and the
signed head, and carries the JSON itself as an embedded file (``/EmbeddedFiles``, the standard PDF
attachment, via pypdf), so whoever keeps the PDF keeps the proof, byte for byte.

A pure renderer: the caller passes the receipt's bytes and what it shows of the invoice.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from pypdf import PdfReader, PdfWriter
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, Preformatted, SimpleDocTemplate, Spacer, Table, TableStyle

from fapiao.core.money import format_money
from fapiao.formats.pdf_text import CJK_FONT, MONO_FONT, paragraph_markup, register_fonts

ATTACHMENT_NAME: Final = "receipt.json"
BEIJING: Final = ZoneInfo("Asia/Shanghai")
MARGIN: Final = 20 * mm
WIDTH: Final = A4[0] - 2 * MARGIN


@dataclass(frozen=True, slots=True)
class ReceiptPage:
    """What the page shows besides the receipt: the invoice as a person knows it."""

    number: str
    total_with_tax: int  # fen
    seller_name: str
    receipt_json: bytes  # exactly the bytes that are embedded

    @property
    def receipt(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.receipt_json)
        return loaded


def _signed_at(text: str) -> str:
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=ZoneInfo("UTC"))
    return f"{moment.astimezone(BEIJING):%Y-%m-%d %H:%M:%S}（北京时间）"


def _story(page: ReceiptPage) -> list[Any]:
    body = ParagraphStyle("body", fontName=CJK_FONT, fontSize=10, leading=15, wordWrap="CJK")
    title = ParagraphStyle("title", body, fontSize=18, leading=24, alignment=TA_CENTER, spaceAfter=8)
    heading = ParagraphStyle("heading", body, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4)
    mono = ParagraphStyle("mono", body, fontName=MONO_FONT, fontSize=8.5, leading=11)
    receipt = page.receipt
    head = receipt["head"]

    def para(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(paragraph_markup(text), style)

    total = f"¥{format_money(page.total_with_tax)}"
    facts = [
        [para("发票号码"), para(page.number)],
        [para("价税合计"), para(total)],
        [para("销售方"), para(page.seller_name)],
        [para("账本（日志）"), para(str(receipt["log"]))],
        [para("记录序号"), para(f"第 {receipt['index']} 条（从 0 起数）")],
        [para("签名时账本大小"), para(f"{head['size']} 条")],
        [para("树根（root）"), Preformatted(str(head["root"]), mono)],
        [para("签名时间"), para(_signed_at(str(head["at"])))],
        [para("签名密钥编号"), Preformatted(str(head["key_id"]), mono)],
    ]
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
    )
    return [
        para("发票存证回执", title),
        para(
            f"本回执证明：发票 {page.number}（价税合计 {total}）已作为第 {receipt['index']} 条记录写入"
            f"销售方“{page.seller_name}”的防篡改账本，平台在账本共有 {head['size']} 条记录时"
            "对账本状态（树根）做了数字签名。"
        ),
        para(
            "回执里有这条记录的全文、签名，以及“这条记录就在被签名的账本中”的证明。只要验证通过，"
            "就说明这张发票当时正是以记录中的内容开具并入账的：此后系统里的记录若丢失或被改动，"
            "本回执就是证据，可交给客服或附在补救申请中。"
        ),
        para(
            "本回执不证明买方已收到或已入账这张发票，也不代替税务机关的查验；"
            "它证明的是本平台在签名时记录了什么。"
        ),
        Spacer(1, 4 * mm),
        Table(facts, colWidths=[38 * mm, WIDTH - 38 * mm], style=grid),
        para("如何自行验证", heading),
        para(
            f"回执原件 {ATTACHMENT_NAME} 作为附件嵌在本 PDF 中（在 PDF 阅读器的“附件”面板中取出）。"
            "下载平台公钥（keys.json）后，在任何一台电脑上运行："
        ),
        Preformatted(f"fapiao receipt verify {ATTACHMENT_NAME} --public-key keys.json", mono),
        para("验证无需连接本系统；结果会说明回执是否有效以及它证明了什么。"),
    ]


def render_receipt_pdf(page: ReceiptPage) -> bytes:
    """One A4 page with ``receipt.json`` embedded; the same page gives the same bytes."""
    register_fonts()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"发票存证回执 {page.number}",
        subject=page.number,
        creator="Fapiao Vault",
        invariant=1,
    )
    doc.build(_story(page))
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buffer.getvalue())))
    writer.add_attachment(ATTACHMENT_NAME, page.receipt_json)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def embedded_receipt(data: bytes) -> bytes | None:
    """The ``receipt.json`` embedded in a receipt PDF, or None."""
    attachments = PdfReader(io.BytesIO(data)).attachments
    found = attachments.get(ATTACHMENT_NAME)
    return bytes(found[0]) if found else None
