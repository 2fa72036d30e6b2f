"""Read an invoice XML file: the 数电票 ``EInvoice`` and the older 增值税电子发票 XML found in OFD files.

The tax bureau's 数电票 file is ``<EInvoice>`` with ``<Header>``, ``<EInvoiceData>`` (seller, buyer,
basic information with the totals, one ``<IssuItemInformation>`` per line) and
``<TaxSupervisionInfo>`` (number, issue time).  The header's labels give the kind (普通/专用) and
the colour (蓝字/红字); a red invoice's ``BlueInvoiceNumber`` (as our own writer,
:mod:`fapiao.formats.einvoice_xml_write`, puts it) or its remark ("被红冲蓝字数电发票号码：…")
names the blue one it reverses.

The older 增值税电子普通发票 XML (``<eInvoice>`` inside an OFD, or the issuing systems' flat
``FP_DM``/``FP_HM``/``XMMC`` exports) identifies an invoice by its 发票代码 (10 or 12 digits) and
an 8-digit 发票号码; the record keeps both (``code``, ``number``), never a made-up 20-digit one.

Element names drift between versions and issuing platforms, so every field is looked up by its
local name anywhere in the tree, namespaces, case, ``-`` and ``_`` ignored, under a few known
aliases.  Whatever is missing or unreadable becomes a problem (a
:class:`~fapiao.core.errors.FieldError`) rather than a failure; so does a line that cannot be
read, totals that do not add up, and lines that do not add up to the totals
(:func:`fapiao.formats.records.check_record`).

Safety: parsed by :func:`fapiao.formats.xmlsafe.parse_xml` (5 MB, 64 levels, 200,000
elements, no DTD so no entity expansion).  Money becomes integer fen through
:mod:`fapiao.formats.amounts`, exactly, whatever the number of decimals; never through ``float``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element

from fapiao.core.errors import FieldError, InvalidValueError, _
from fapiao.core.money import format_decimal, format_money
from fapiao.formats.amounts import fen_from_text
from fapiao.formats.records import InvoiceLine, InvoiceRecord, check_record
from fapiao.formats.xmlsafe import XmlLimits, local_key, parse_xml

MAX_XML_BYTES = 5 * 2**20

# The names the rest of the project has used for the record types.
EInvoiceLine = InvoiceLine
EInvoiceFields = InvoiceRecord

# Field → aliases (the first is the tax bureau's name and the one a problem quotes).
HEADER_FIELDS: dict[str, tuple[str, ...]] = {
    "number": ("InvoiceNumber", "EIid", "InvoiceNo", "Fphm"),
    "issued_on": ("IssueTime", "RequestTime", "IssueDate", "InvoiceDate", "Kprq"),
    "seller_tax_id": ("SellerIdNum", "SellerTaxID", "SellerTaxNo", "Xfsbh", "XsfNsrsbh"),
    "seller_name": ("SellerName", "Xfmc", "XsfMc"),
    "buyer_tax_id": ("BuyerIdNum", "BuyerTaxID", "BuyerTaxNo", "Gfsbh", "GmfNsrsbh"),
    "buyer_name": ("BuyerName", "Gfmc", "GmfMc"),
    "total_amount_fen": ("TotalAmWithoutTax", "TotalAmountWithoutTax", "TaxExclusiveTotalAmount", "Hjje"),
    "total_tax_fen": ("TotalTaxAm", "TotalTaxAmount", "TaxTotalAmount", "Hjse"),
    "total_with_tax_fen": (
        "TotalTax-includedAmount",
        "TotalTaxIncludedAmount",
        "TaxInclusiveTotalAmount",
        "Jshj",
    ),
}
LINE_ELEMENTS = (
    "IssuItemInformation",
    "IssueItemInformation",
    "InvoiceItem",
    "GoodsInfo",
    "FPKJXX_XMXX",
    "Xmxx",
)
_LINE_KEYS = frozenset(local_key(name) for name in LINE_ELEMENTS)
LINE_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("ItemName", "GoodsName", "Item", "Xmmc"),
    "spec": ("SpecMod", "Specification", "Ggxh"),
    "unit": ("MeaUnits", "Unit", "MeasurementDimension", "Dw"),
    "tax_code": ("TaxClassificationCode", "GoodsCode", "Spbm"),
    "quantity": ("Quantity", "Xmsl"),
    "unit_price": ("UnPrice", "UnitPrice", "Price", "Xmdj"),
    "amount_fen": ("Amount", "AmountWithoutTax", "Xmje"),
    "tax_rate": ("TaxRate", "TaxScheme", "Sl"),
    "tax_fen": ("ComTaxAm", "TaxAmount", "TaxAm", "Se"),
}
#: A line's amount with tax, when the file gives it: checked against the line's amount + tax.
LINE_WITH_TAX = ("TotaltaxIncludedAmount", "AmountWithTax", "Hsje")
# Read when present, never a problem when missing.
EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "remark": ("Remark", "Note", "Bz"),
    "original_number": ("BlueInvoiceNumber", "OriginalInvoiceNumber", "Yfphm"),
    "original_code": ("OriginalInvoiceCode", "Yfpdm"),
    "code": ("InvoiceCode", "Fpdm"),
    "check_code": ("InvoiceCheckCode", "CheckCode", "Jym"),
}
OPTIONAL = frozenset(
    {"buyer_tax_id", "quantity", "unit_price", "tax_rate", "tax_fen", "spec", "unit", "tax_code"}
)
# The words a file may use for the untaxed treatments, as the API writes them.
RATE_CODES = {"免税": "exempt", "不征税": "not_taxable", "免征": "exempt", "***": "not_taxable"}
# How a remark names the blue invoice a red one reverses.
_BLUE_IN_REMARK = re.compile(r"被红冲蓝字数电发票号码[:：]\s*(\d{20})")
_LEGACY_BLUE_IN_REMARK = re.compile(r"对应正数发票代码[:：]?\s*(\d{10,12})\s*号码[:：]?\s*(\d{8})")
_DATE = re.compile(r"(\d{4})(?:[-/.年](\d{1,2})[-/.月](\d{1,2})|(\d{2})(\d{2}))")


def read_einvoice_xml(data: bytes) -> tuple[InvoiceRecord | None, list[FieldError]]:
    """Read a 数电票 (or legacy) XML file: the fields found (``None`` if unreadable) and every problem met."""
    root, problem = parse_xml(data, XmlLimits(max_bytes=MAX_XML_BYTES))
    if root is None:
        return None, [problem] if problem else []
    return fields_of(root)


def xml_format(record: InvoiceRecord | None) -> str:
    return "legacy_xml" if record is not None and record.code is not None else "einvoice_xml"


def fields_of(root: Element) -> tuple[InvoiceRecord | None, list[FieldError]]:
    """The invoice in an already parsed tree (an OFD attachment, a custom tag resolved to text)."""
    return _fields(_index(root, skip=_LINE_KEYS), _lines_in(root))


def fields_from_values(values: dict[str, str]) -> tuple[InvoiceRecord | None, list[FieldError]]:
    """The invoice from flat ``element name → text`` pairs (an OFD's custom tags), no lines."""
    root = Element("eInvoice")
    for name, text in values.items():
        child = Element(name)
        child.text = text
        root.append(child)
    return fields_of(root)


def _fields(
    index: dict[str, list[Element]], line_elements: list[Element]
) -> tuple[InvoiceRecord | None, list[FieldError]]:
    """``index``: the invoice's elements outside its lines (a line's ``TotaltaxIncludedAmount`` is
    not the invoice's ``TotalTax-includedAmount``, though the names match)."""
    problems: list[FieldError] = []
    header = {field: _first(index, aliases) for field, aliases in HEADER_FIELDS.items()}
    extra = {field: _first(index, aliases) for field, aliases in EXTRA_FIELDS.items()}
    if not line_elements and all(value is None for value in header.values()):
        message = _("The XML file does not look like an e-invoice: none of its fields were found.")
        return None, [FieldError("", "not_einvoice", message)]
    for field, value in header.items():
        if value is None and field not in OPTIONAL:
            problems.append(_missing(field, HEADER_FIELDS[field][0]))
    money = {
        field: _money(field, header[field], problems) for field in HEADER_FIELDS if field.endswith("_fen")
    }
    remark = extra["remark"]
    original_code, original_number = _original(extra, remark)
    record = InvoiceRecord(
        number=header["number"],
        issued_on=_date(header["issued_on"], problems),
        seller_tax_id=_upper(header["seller_tax_id"]),
        seller_name=header["seller_name"],
        buyer_tax_id=_upper(header["buyer_tax_id"]),
        buyer_name=header["buyer_name"],
        total_amount_fen=money["total_amount_fen"],
        total_tax_fen=money["total_tax_fen"],
        total_with_tax_fen=money["total_with_tax_fen"],
        lines=tuple(_line(position, element, problems) for position, element in enumerate(line_elements)),
        kind=_labelled(index, "GeneralOrSpecialVAT", {"01": "special", "02": "ordinary"}),
        colour=_colour(index),
        original_number=original_number,
        remark=remark,
        code=extra["code"],
        check_code=extra["check_code"],
        original_code=original_code,
    )
    problems.extend(check_record(record))
    return record, problems


def _original(extra: dict[str, str | None], remark: str | None) -> tuple[str | None, str | None]:
    """The blue invoice a red one reverses: its own element, else the official remark's wording."""
    if extra["original_number"] is not None:
        return extra["original_code"], extra["original_number"]
    return blue_named_in(remark)


def blue_named_in(remark: str | None) -> tuple[str | None, str | None]:
    """The blue invoice (code, number) a red one's remark names in the official wording, if any."""
    if remark:
        if found := _BLUE_IN_REMARK.search(remark):
            return None, found.group(1)
        if legacy := _LEGACY_BLUE_IN_REMARK.search(remark):
            return legacy.group(1), legacy.group(2)
    return None, None


def _colour(index: dict[str, list[Element]]) -> str | None:
    labelled = _labelled(index, "InIssuType", {"Y": "blue", "N": "red"})
    if labelled is not None:
        return labelled
    flag = _first(index, ("WhetherEinvoiceIsRedEinvoice", "IsRedInvoice", "Hzbz"))
    return {"Y": "red", "N": "blue", "1": "red", "0": "blue"}.get((flag or "").upper())


def _line(position: int, element: Element, problems: list[FieldError]) -> InvoiceLine:
    index = _index(element)
    found = {field: _first(index, aliases) for field, aliases in LINE_FIELDS.items()}
    for field, value in found.items():
        if value is None and field not in OPTIONAL:
            problems.append(_missing(f"lines.{position}.{field}", LINE_FIELDS[field][0]))
    line = InvoiceLine(
        name=found["name"],
        quantity=found["quantity"],
        unit_price=found["unit_price"],
        amount_fen=_money(f"lines.{position}.amount_fen", found["amount_fen"], problems),
        tax_rate=_rate(found["tax_rate"]),
        tax_fen=_money(f"lines.{position}.tax_fen", found["tax_fen"], problems),
        spec=found["spec"],
        unit=found["unit"],
        tax_code=found["tax_code"],
    )
    field = f"lines.{position}.with_tax_fen"
    with_tax = _money(field, _first(index, LINE_WITH_TAX), problems)
    amount, tax = line.amount_fen, line.tax_fen
    if with_tax is not None and amount is not None and tax is not None and amount + tax != with_tax:
        message = _("Line {line} does not add up: {amount} + {tax} is not {total}.")
        params = {"line": position + 1, "amount": format_money(amount), "tax": format_money(tax)}
        problems.append(
            FieldError(field, "line_inconsistent", message, {**params, "total": format_money(with_tax)})
        )
    return line


def _index(root: Element, *, skip: frozenset[str] = frozenset()) -> dict[str, list[Element]]:
    """Elements by comparable name, in document order, leaving out the subtrees named in ``skip``."""
    index: dict[str, list[Element]] = {}
    pending = [root]
    while pending:
        element = pending.pop()
        if not isinstance(element.tag, str):
            continue
        key = local_key(element.tag)
        if key in skip and element is not root:
            continue
        index.setdefault(key, []).append(element)
        pending.extend(reversed(element))
    return index


def _lines_in(root: Element) -> list[Element]:
    """The line elements, in document order (a line inside a line is not read twice)."""
    found: list[Element] = []
    pending = [root]
    while pending:
        element = pending.pop()
        if isinstance(element.tag, str) and local_key(element.tag) in _LINE_KEYS and element is not root:
            found.append(element)
            continue
        pending.extend(reversed(element))
    return found


def _first(index: dict[str, list[Element]], aliases: Sequence[str]) -> str | None:
    """The first non-empty text under any alias, in alias order."""
    for alias in aliases:
        for element in index.get(local_key(alias), []):
            text = (element.text or "").strip()
            if text:
                return text
    return None


def _labelled(index: dict[str, list[Element]], label: str, codes: dict[str, str]) -> str | None:
    """The meaning of a header label's ``LabelCode`` (``InIssuType`` → Y/N), None if absent or unknown."""
    for element in index.get(local_key(label), []):
        for child in element.iter():
            if isinstance(child.tag, str) and local_key(child.tag) == local_key("LabelCode"):
                return codes.get((child.text or "").strip().upper())
    return None


def _money(field: str, text: str | None, problems: list[FieldError]) -> int | None:
    if text is None:
        return None
    try:
        return fen_from_text(text)  # red invoices are negative
    except InvalidValueError as error:
        problems.append(error.at(field))
        return None


def _date(text: str | None, problems: list[FieldError]) -> date | None:
    """``2026-02-28``, ``2026-02-28 10:11:12``, ``20260228…`` or ``2026年2月28日``."""
    if text is None:
        return None
    parsed = parse_date(text)
    if parsed is None:
        problems.append(
            FieldError("issued_on", "bad_date", _("The date {value} cannot be read."), {"value": text[:40]})
        )
    return parsed


def parse_date(text: str) -> date | None:
    match = _DATE.match(text.strip())
    if match is not None:
        year, month, day, compact_month, compact_day = match.groups()
        try:
            return date(int(year), int(month or compact_month), int(day or compact_day))
        except ValueError:
            return None
    return None


def _rate(text: str | None) -> str | None:
    """``"6%"`` → ``"0.06"``; 免税 → ``exempt``, 不征税 → ``not_taxable``; anything else as written."""
    return normalise_rate(text) if text is not None else None


def normalise_rate(text: str) -> str:
    text = text.strip()
    if not text.endswith("%"):
        return RATE_CODES.get(text, text)
    try:
        return format_decimal(Decimal(text[:-1].strip()) / 100)
    except (InvalidOperation, ValueError):
        return text


def _upper(text: str | None) -> str | None:
    return text.upper() if text is not None else None


def _missing(field: str, element: str) -> FieldError:
    return FieldError(
        field, "missing", _("The e-invoice XML has no {element} element."), {"element": element}
    )
