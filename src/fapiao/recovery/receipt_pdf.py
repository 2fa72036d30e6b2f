"""The submission receipt (补救申请受理回执) of a recovery case, rendered as a PDF (docs/spec/recovery.md).

A pure renderer: the caller turns the case into a :class:`SubmissionReceipt` (claim rows and labels
already translated) and gets bytes back, so this module knows nothing of models or the database.
The text uses reportlab's built-in ``STSong-Light`` CID font, which needs no font files
(:mod:`fapiao.formats.pdf_text`, shared with the invoice documents).

The receipt must stay machine-checkable: a clerk (or a test) extracts its text and finds the 受理编号
and every file's SHA-256.  So each hash sits on its own line in Courier, narrow enough never to wrap,
and user text goes through :func:`~fapiao.formats.pdf_text.paragraph_markup`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, Preformatted, SimpleDocTemplate, Spacer, Table, TableStyle

from fapiao.formats.pdf_text import CJK_FONT, MONO_FONT, paragraph_markup, register_fonts

#: Every fixed text on the receipt.  Callers pass translated overrides in ``SubmissionReceipt.labels``.
DEFAULT_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "title": "补救申请受理回执",
        "acceptance_no": "受理编号",
        "merchant": "商户名称",
        "merchant_uscc": "统一社会信用代码",
        "submitted_at": "提交时间",
        "submitted_by": "提交人",
        "case_url": "申请地址",
        "timezone": "北京时间",
        "qr_caption": "扫码查看申请",
        "claim": "申请内容",
        "narrative": "情况说明",
        "evidence": "证据材料（{count} 个文件）",
        "col_no": "序号",
        "col_file": "文件名 / SHA-256",
        "col_type": "类型",
        "col_size": "大小",
        "no_evidence": "未提交证据材料。",
        "note": "本回执由系统在提交时自动生成。SHA-256 可用于核对所提交的文件未被更改；"
        "扫描二维码可查看申请进度。",
        "page": "第 {page} 页",
    }
)

BEIJING: Final = ZoneInfo("Asia/Shanghai")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MARGIN: Final = 18 * mm
_BODY_WIDTH: Final = A4[0] - 2 * _MARGIN
QR_SIZE: Final = 32 * mm
_QR_CELL: Final = QR_SIZE + 6 * mm
_BARE: Final = TableStyle(
    [("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER")]
    + [(side, (0, 0), (-1, -1), 0) for side in ("LEFTPADDING", "RIGHTPADDING", "TOPPADDING", "BOTTOMPADDING")]
)


@dataclass(frozen=True, slots=True)
class ReceiptEvidence:
    """One submitted file as the receipt lists it; ``type_label`` is the translated evidence type."""

    name: str
    type_label: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        if self.size < 0:
            raise ValueError("size must not be negative")


@dataclass(frozen=True, slots=True)
class SubmissionReceipt:
    """Everything the receipt shows.  ``claim_rows`` are (label, value) pairs, translated and formatted
    by the caller; ``labels`` overrides keys of :data:`DEFAULT_LABELS`."""

    acceptance_no: str
    merchant_name: str
    merchant_uscc: str
    submitted_at: datetime
    submitted_by: str
    claim_rows: Sequence[tuple[str, str]]
    narrative: str
    evidence: Sequence[ReceiptEvidence]
    case_url: str
    labels: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.submitted_at.utcoffset() is None:
            raise ValueError("submitted_at must be timezone-aware")
        unknown = set(self.labels or {}) - set(DEFAULT_LABELS)
        if unknown:
            raise ValueError(f"unknown receipt labels: {', '.join(sorted(unknown))}")

    def label(self, key: str) -> str:
        return (self.labels or {}).get(key, DEFAULT_LABELS[key])


def beijing_time(moment: datetime, *, zone_label: str = DEFAULT_LABELS["timezone"]) -> str:
    """``2026-11-28 12:03:04 (北京时间)``: storage is UTC, the merchant reads Beijing time."""
    return f"{moment.astimezone(BEIJING):%Y-%m-%d %H:%M:%S} ({zone_label})"


def case_qr(url: str, *, size: float = QR_SIZE) -> Drawing:
    """A QR code of ``url`` as a drawing; separate so a test can see what was encoded."""
    drawing = Drawing(size, size)
    drawing.add(QrCodeWidget(url, barWidth=size, barHeight=size, barLevel="M"))
    return drawing


def _styles() -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName=CJK_FONT, fontSize=9, leading=13, wordWrap="CJK")
    return {
        "body": body,
        "title": ParagraphStyle("title", body, fontSize=18, leading=24, alignment=TA_CENTER, spaceAfter=10),
        "heading": ParagraphStyle("heading", body, fontSize=11, leading=15, spaceBefore=10, spaceAfter=4),
        "number": ParagraphStyle("number", body, fontName="Helvetica-Bold", fontSize=15, leading=19),
        "small": ParagraphStyle("small", body, fontSize=8, leading=11, alignment=TA_CENTER),
        "hash": ParagraphStyle("hash", body, fontName=MONO_FONT, fontSize=7.5, leading=10),
    }


def _grid(data: list[list[Any]], widths: list[float], *, header: bool = False, **kw: Any) -> Table:
    """A ruled table; the shaded labels are the first row (``header``, repeated on every page) or column."""
    shaded = ((0, 0), (-1, 0)) if header else ((0, 0), (0, -1))
    style = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("BACKGROUND", *shaded, colors.whitesmoke),
        ]
    )
    return Table(data, colWidths=widths, style=style, repeatRows=int(header), **kw)


def _story(receipt: SubmissionReceipt, st: dict[str, ParagraphStyle]) -> list[Any]:
    label = receipt.label

    def para(text: str, style: str = "body") -> Paragraph:
        return Paragraph(paragraph_markup(text), st[style])

    info = _grid(
        [
            [para(label("acceptance_no")), para(receipt.acceptance_no, "number")],
            [para(label("merchant")), para(receipt.merchant_name)],
            [para(label("merchant_uscc")), para(receipt.merchant_uscc)],
            [
                para(label("submitted_at")),
                para(beijing_time(receipt.submitted_at, zone_label=label("timezone"))),
            ],
            [para(label("submitted_by")), para(receipt.submitted_by)],
            [para(label("case_url")), para(receipt.case_url)],
        ],
        [32 * mm, _BODY_WIDTH - 32 * mm - _QR_CELL],
    )
    qr = [case_qr(receipt.case_url), para(label("qr_caption"), "small")]
    story: list[Any] = [
        para(label("title"), "title"),
        Table([[info, qr]], colWidths=[_BODY_WIDTH - _QR_CELL, _QR_CELL], style=_BARE),
        para(label("claim"), "heading"),
    ]
    claim = [[para(k), para(v)] for k, v in receipt.claim_rows]
    if claim:
        story.append(_grid(claim, [40 * mm, _BODY_WIDTH - 40 * mm], splitInRow=1))
    story += [para(label("narrative"), "heading")]
    for line in receipt.narrative.replace("\r\n", "\n").split("\n"):
        story.append(para(line.replace("\t", "    ")) if line.strip() else Spacer(1, 4))
    story.append(para(label("evidence").replace("{count}", str(len(receipt.evidence))), "heading"))
    rows: list[list[Any]] = [[para(label(k)) for k in ("col_no", "col_file", "col_type", "col_size")]]
    for number, item in enumerate(receipt.evidence, start=1):
        file_cell = [para(item.name), Preformatted(item.sha256, st["hash"])]
        rows.append([para(str(number)), file_cell, para(item.type_label), para(f"{item.size:,} B")])
    if receipt.evidence:
        story.append(_grid(rows, [12 * mm, _BODY_WIDTH - 56 * mm, 26 * mm, 18 * mm], header=True))
    else:
        story.append(para(label("no_evidence")))
    story += [Spacer(1, 8), para(label("note"))]
    return story


def render_submission_receipt(receipt: SubmissionReceipt) -> bytes:
    """The receipt as A4 PDF bytes; rendering the same receipt twice gives the same bytes."""
    register_fonts()
    styles = _styles()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN + 4 * mm,
        title=receipt.label("title"),
        subject=receipt.acceptance_no,
        creator="Fapiao Vault",
        invariant=1,
    )

    def footer(canvas: Any, document: Any) -> None:
        page = receipt.label("page").replace("{page}", str(document.page))
        text = Paragraph(paragraph_markup(f"{receipt.acceptance_no}  {page}"), styles["small"])
        text.wrapOn(canvas, _BODY_WIDTH, 10 * mm)
        text.drawOn(canvas, _MARGIN, _MARGIN - 4 * mm)

    doc.build(_story(receipt, styles), onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
