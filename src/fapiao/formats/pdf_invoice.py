"""Read an invoice PDF: its text layer (pdfplumber) and its QR code (zxing-cpp), checked against each other.

The text is read as the form prints it (:mod:`fapiao.formats.invoice_text`); the QR code
(``01,<type>,<code>,<number>,<amount>,<date>,<check>,...``, :func:`fapiao.core.invoice_qr.read_invoice_qr`)
is decoded from the first page rendered by pdfium, which finds it whether the form draws it as
vector squares (ours) or embeds it as an image (the tax bureau's).  The QR code's number, code,
date, amount (the 价税合计 on a 数电票, the amount without tax on a legacy invoice) and kind must
agree with the text; every disagreement is a problem, and so is a missing text layer (a scan) or a
missing QR code: a PDF is only as good as the two agreeing.

Limits, checked before anything is rendered or decoded: ``max_bytes`` (20 MB), ``max_pages``
(20), every embedded image's pixels (``max_image_pixels``), and the rendered page's pixels (the
resolution is lowered to fit ``max_render_pixels``).  A password-protected PDF is a problem; a
damaged one too.  Nothing here raises on bad input.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass

import pdfplumber
import pypdfium2
import zxingcpp
from pypdf import PdfReader

from fapiao.core.errors import FieldError, InvalidValueError, _
from fapiao.core.invoice_qr import InvoiceQr, read_invoice_qr
from fapiao.core.money import format_money
from fapiao.formats.invoice_text import read_form_text
from fapiao.formats.records import InvoiceRecord, ReadResult, attach, file_result

FORMAT = "pdf"


@dataclass(frozen=True)
class PdfLimits:
    max_bytes: int = 20 * 2**20
    max_pages: int = 20
    max_image_pixels: int = 40_000_000
    max_render_pixels: int = 12_000_000
    dpi: int = 200


def read_pdf(data: bytes, limits: PdfLimits | None = None) -> ReadResult:
    """The invoice in a PDF and every problem met; never raises."""
    limits = limits or PdfLimits()
    refusal = _refusal(data, limits)
    if refusal is not None:
        return file_result(FORMAT, [refusal])
    try:
        text, refusal = _text(data, limits)
        if refusal is not None:
            return file_result(FORMAT, [refusal])
        codes = _qr_texts(data, limits)
    except Exception:  # pdfminer and pdfium meeting hostile bytes raise many kinds of error
        return file_result(FORMAT, [_damaged()])
    return _combine(text, codes)


def _refusal(data: bytes, limits: PdfLimits) -> FieldError | None:
    if len(data) > limits.max_bytes:
        message = _("The PDF file is larger than {max} MB.")
        return FieldError("", "too_large", message, {"max": limits.max_bytes // 2**20})
    if not data.startswith(b"%PDF-"):
        return FieldError("", "not_pdf", _("The file is not a PDF."))
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            message = _("The PDF is password-protected; send it without the password.")
            return FieldError("", "password_protected", message)
    except Exception:  # pypdf meeting a damaged file
        return _damaged()
    return None


def _text(data: bytes, limits: PdfLimits) -> tuple[str, FieldError | None]:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        if len(pdf.pages) > limits.max_pages:
            message = _("The PDF has more than {max} pages; an invoice never does.")
            return "", FieldError("", "too_many_pages", message, {"max": limits.max_pages})
        for page in pdf.pages:
            for image in page.images:
                width, height = image.get("srcsize", (0, 0))
                if int(width) * int(height) > limits.max_image_pixels:
                    message = _("The PDF holds an image of more than {max} million pixels; it was not read.")
                    return "", FieldError(
                        "", "image_too_large", message, {"max": limits.max_image_pixels // 10**6}
                    )
        return "\n".join(page.extract_text() or "" for page in pdf.pages), None


def _qr_texts(data: bytes, limits: PdfLimits) -> list[str]:
    document = pypdfium2.PdfDocument(data)
    try:
        page = document[0]
        width, height = page.get_size()
        scale = min(limits.dpi / 72, math.sqrt(limits.max_render_pixels / max(width * height, 1.0)))
        image = page.render(scale=scale).to_pil()
        return [result.text for result in zxingcpp.read_barcodes(image) if result.text.startswith("01,")]
    finally:
        document.close()


def _combine(text: str, codes: list[str]) -> ReadResult:
    qrs: list[InvoiceQr] = []
    for code in codes:
        try:
            qrs.append(read_invoice_qr(code))
        except InvalidValueError:
            continue
    if not text.strip():
        message = _("The PDF has no text layer (a scan?): its fields cannot be read and checked.")
        problems = [FieldError("", "no_text_layer", message)]
        return ReadResult(FORMAT, tuple(_from_qr(qr) for qr in qrs[:1]), tuple(attach(problems, record=None)))
    record, found = read_form_text(text)
    if record is None:
        return file_result(FORMAT, found)
    if not qrs:
        message = _(
            "No invoice QR code could be read on the PDF's first page, so its text cannot be checked."
        )
        found.append(FieldError("", "no_qr_code", message))
    else:
        found.extend(_disagreements(record, qrs[0]))
    return ReadResult(FORMAT, (record,), tuple(attach(found, record=0)))


def _disagreements(record: InvoiceRecord, qr: InvoiceQr) -> list[FieldError]:
    amount = record.total_with_tax_fen if not qr.code else record.total_amount_fen
    pairs = [
        ("number", record.number, qr.number),
        ("code", record.code or "", qr.code),
        ("issued_on", record.issued_on.isoformat() if record.issued_on else None, qr.issued_on.isoformat()),
        (
            "total_with_tax_fen" if not qr.code else "total_amount_fen",
            format_money(amount) if amount is not None else None,
            format_money(qr.amount),
        ),
        ("kind", record.kind, qr.kind.value if record.kind is not None else None),
    ]
    message = _("The QR code says {field} is {qr}, but the text says {text}.")
    return [
        FieldError(
            field, "qr_disagrees", message, {"field": field, "qr": qr_value, "text": text_value or "—"}
        )
        for field, text_value, qr_value in pairs
        if text_value != qr_value
    ]


def _from_qr(qr: InvoiceQr) -> InvoiceRecord:
    """What the QR code alone says (shown when the text cannot be read; never enough to import)."""
    return dataclasses.replace(
        InvoiceRecord(
            number=qr.number,
            issued_on=qr.issued_on,
            seller_tax_id=None,
            seller_name=None,
            buyer_tax_id=None,
            buyer_name=None,
            total_amount_fen=qr.amount if qr.code else None,
            total_tax_fen=None,
            total_with_tax_fen=None if qr.code else qr.amount,
            lines=(),
            kind=qr.kind.value,
        ),
        code=qr.code or None,
    )


def _damaged() -> FieldError:
    return FieldError("", "pdf_damaged", _("The PDF is damaged or truncated and cannot be read."))
