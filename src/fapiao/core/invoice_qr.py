"""The text of the QR code on an invoice's form (发票二维码), written and read.

The official e-invoice forms carry a QR code of comma-separated fields; scanners, bookkeeping
software and the tax bureau's 查验 app read it positionally.  For a 数电票 it looks like
``01,32,,24112000000012345678,1060.00,20261128,,A1B2``.  What we put in each field:

1. ``01`` — the format version; every form we know of carries 01.
2. the invoice type: ``31`` 电子发票（增值税专用发票）, ``32`` 电子发票（普通发票）.  (Older forms
   used ``01`` 专用发票, ``04`` 普通发票, ``10`` 电子普通发票; :func:`read_invoice_qr` reads them.)
3. the 发票代码: empty — a 数电票 has none; a legacy invoice's 10/12-digit code when it has one.
4. the 发票号码: the 20-digit number (or a legacy invoice's 8 digits).
5. the amount: for a 数电票 the 价税合计, as the 查验 platform asks for it (yuan, two decimals;
   negative for a red invoice).  Legacy forms put the amount without tax here.
6. the invoice date, ``YYYYMMDD`` (Beijing date).
7. the 校验码: empty — 数电票 have none (legacy 普通发票 carried 20 digits).
8. a check of four hex digits.  The tax bureau's algorithm is not published and readers ignore
   the field; ours is CRC-16/CCITT-FALSE of the text before it (up to and including the last
   comma), in upper-case hex, so that the field has the shape readers expect.

Pure Python, no Django: the PDF renderer writes it, the 查验 page reads a scanned one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from fapiao.core.choices import InvoiceKind
from fapiao.core.errors import InvalidValueError, _
from fapiao.core.money import format_money, parse_money

VERSION = "01"
TYPE_CODES: dict[InvoiceKind, str] = {InvoiceKind.SPECIAL: "31", InvoiceKind.ORDINARY: "32"}
LEGACY_TYPE_CODES = {"01": InvoiceKind.SPECIAL, "04": InvoiceKind.ORDINARY, "10": InvoiceKind.ORDINARY}
_FIELDS = 8
_NUMBER = re.compile(r"\d{20}|\d{8}")


@dataclass(frozen=True)
class InvoiceQr:
    """What a QR code says.  ``amount`` is fen: the 价税合计 on a 数电票, the amount without tax on
    the legacy forms (``code`` non-empty)."""

    kind: InvoiceKind
    number: str
    amount: int
    issued_on: date
    code: str = ""


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): ``crc16(b"123456789") == 0x29B1``."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _bit in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def invoice_qr_text(*, kind: InvoiceKind, number: str, total_with_tax: int, issued_on: date) -> str:
    """The QR text of a 数电票: ``01,<31|32>,,<number>,<价税合计>,<YYYYMMDD>,,<check>``."""
    head = f"{VERSION},{TYPE_CODES[kind]},,{number},{format_money(total_with_tax)},{issued_on:%Y%m%d},,"
    return f"{head}{crc16(head.encode('ascii')):04X}"


def read_invoice_qr(text: str) -> InvoiceQr:
    """Read a scanned QR text (ours or another platform's); :class:`InvalidValueError` if it is none.

    The last field is not checked: other platforms' checks cannot be recomputed, and a QR code's own
    error correction already refuses a garbled scan.
    """
    parts = text.strip().split(",")
    if len(parts) < _FIELDS - 1 or parts[0] != VERSION:
        raise InvalidValueError(_("This is not the QR code of an invoice."), code="not_invoice_qr")
    type_code, code, number, amount, day = parts[1:6]
    kind = {v: k for k, v in TYPE_CODES.items()}.get(type_code) or LEGACY_TYPE_CODES.get(type_code)
    if kind is None or not _NUMBER.fullmatch(number):
        raise InvalidValueError(_("This is not the QR code of an invoice."), code="not_invoice_qr")
    try:
        total = parse_money(amount, allow_negative=True)
        issued_on = date(int(day[:4]), int(day[4:6]), int(day[6:8]))
    except (InvalidValueError, ValueError):
        raise InvalidValueError(_("This is not the QR code of an invoice."), code="not_invoice_qr") from None
    return InvoiceQr(kind=kind, number=number, amount=total, issued_on=issued_on, code=code)
