"""Read a 数电票 (fully digitalised e-invoice) XML file into the fields a claim is compared with.

The tax bureau's file is ``<EInvoice>`` with ``<Header>``, ``<EInvoiceData>`` (seller, buyer,
basic information with the totals, one ``<IssuItemInformation>`` per line) and
``<TaxSupervisionInfo>`` (number, issue time).  The header's labels give the kind (普通/专用) and
the colour (蓝字/红字); a red invoice's ``BlueInvoiceNumber`` (as our own writer,
:mod:`fapiao.formats.einvoice_xml_write`, puts it) names the blue one it reverses.

Element names drift between versions and issuing platforms, so every field is looked up by its
local name anywhere in the tree, namespaces, case, ``-`` and ``_`` ignored, under a few known
aliases.  Whatever is missing or unreadable becomes a problem (a
:class:`~fapiao.core.errors.FieldError`) rather than a failure; the caller decides.  The result
is ``None`` only when the file cannot be read at all.

Safety: at most 5 MB; parsed by defusedxml with DTDs forbidden, so entity expansion ("billion
laughs") and external entities never run.  Expat cannot read multi-byte encodings such as GBK,
so the bytes are decoded here by the declared encoding and the parser is given text.
Money becomes integer fen through :mod:`fapiao.core.money`, never through ``float``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from fapiao.core.claims import COMPARED_FIELDS
from fapiao.core.errors import FieldError, InvalidValueError, _
from fapiao.core.money import format_decimal, format_money, parse_money

MAX_XML_BYTES = 5 * 2**20

# Field → aliases (the first is the tax bureau's name and the one a problem quotes).
HEADER_FIELDS: dict[str, tuple[str, ...]] = {
    "number": ("InvoiceNumber", "EIid", "InvoiceNo", "Fphm"),
    "issued_on": ("IssueTime", "RequestTime", "IssueDate", "InvoiceDate", "Kprq"),
    "seller_tax_id": ("SellerIdNum", "SellerTaxID", "SellerTaxNo", "Xfsbh", "XsfNsrsbh"),
    "seller_name": ("SellerName", "Xfmc", "XsfMc"),
    "buyer_tax_id": ("BuyerIdNum", "BuyerTaxID", "BuyerTaxNo", "Gfsbh", "GmfNsrsbh"),
    "buyer_name": ("BuyerName", "Gfmc", "GmfMc"),
    "total_amount_fen": ("TotalAmWithoutTax", "TotalAmountWithoutTax", "Hjje"),
    "total_tax_fen": ("TotalTaxAm", "TotalTaxAmount", "Hjse"),
    "total_with_tax_fen": ("TotalTax-includedAmount", "TotalTaxIncludedAmount", "Jshj"),
}
LINE_ELEMENTS = ("IssuItemInformation", "IssueItemInformation", "InvoiceItem")
LINE_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("ItemName", "GoodsName", "Xmmc"),
    "spec": ("SpecMod", "Specification", "Ggxh"),
    "unit": ("MeaUnits", "Unit", "Dw"),
    "tax_code": ("TaxClassificationCode", "GoodsCode", "Spbm"),
    "quantity": ("Quantity",),
    "unit_price": ("UnPrice", "UnitPrice", "Price"),
    "amount_fen": ("Amount", "AmountWithoutTax"),
    "tax_rate": ("TaxRate",),
    "tax_fen": ("ComTaxAm", "TaxAmount", "TaxAm"),
}
# Read when present, never a problem when missing.
EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "remark": ("Remark", "Bz"),
    "original_number": ("BlueInvoiceNumber", "OriginalInvoiceNumber", "Yfphm"),
}
OPTIONAL = frozenset(
    {"buyer_tax_id", "quantity", "unit_price", "tax_rate", "tax_fen", "spec", "unit", "tax_code"}
)
# The words a file may use for the two untaxed treatments, as the API writes them.
RATE_CODES = {"免税": "exempt", "不征税": "not_taxable"}

_DECLARED = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z][\w.:-]*)["']""")
_CHINESE = frozenset({"gbk", "gb2312", "gb18030", "cp936"})  # read all as GB18030, their superset
# What a claim is compared on, read as is (the date is given in ISO form by ``as_mapping``).
_CLAIMED = tuple(name for name in COMPARED_FIELDS if name != "issued_on")
_DATE = re.compile(r"(\d{4})(?:[-/.年](\d{1,2})[-/.月](\d{1,2})|(\d{2})(\d{2}))")


@dataclass(frozen=True)
class EInvoiceLine:
    """One ``IssuItemInformation``; quantity and unit price keep the file's own digits."""

    name: str | None
    quantity: str | None
    unit_price: str | None
    amount_fen: int | None
    tax_rate: str | None  # "0.06"; a percentage converted, 免税/不征税 as exempt/not_taxable
    tax_fen: int | None
    spec: str | None = None
    unit: str | None = None
    tax_code: str | None = None


@dataclass(frozen=True)
class EInvoiceFields:
    """What the file says; ``None`` where it does not say it (a required field missing is a problem too)."""

    number: str | None
    issued_on: date | None
    seller_tax_id: str | None
    seller_name: str | None
    buyer_tax_id: str | None
    buyer_name: str | None
    total_amount_fen: int | None
    total_tax_fen: int | None
    total_with_tax_fen: int | None
    lines: tuple[EInvoiceLine, ...]
    kind: str | None = None  # "special" | "ordinary", from GeneralOrSpecialVAT
    colour: str | None = None  # "blue" | "red", from InIssuType (Y | N)
    original_number: str | None = None  # the blue invoice a red one reverses
    remark: str | None = None

    def as_mapping(self) -> dict[str, object]:
        """The fields :func:`fapiao.core.claims.compare_claim` reads, leaving out those not found."""
        found: dict[str, object] = {
            key: getattr(self, key) for key in _CLAIMED if getattr(self, key) is not None
        }
        if self.issued_on is not None:
            found["issued_on"] = self.issued_on.isoformat()
        return found


def read_einvoice_xml(data: bytes) -> tuple[EInvoiceFields | None, list[FieldError]]:
    """Read a 数电票 XML file: the fields found (``None`` if unreadable) and every problem met."""
    if len(data) > MAX_XML_BYTES:
        return None, [
            _problem("", "too_large", _("The XML file is larger than {max} MB."), max=MAX_XML_BYTES // 2**20)
        ]
    text, problem = _decode(data)
    if text is None:
        return None, [problem] if problem else []
    try:
        root = SafeET.fromstring(text, forbid_dtd=True)
    except DefusedXmlException:
        message = _(
            "The XML file declares a DTD or entities, which an e-invoice never does; it was not read."
        )
        return None, [_problem("", "forbidden_markup", message)]
    except ParseError as error:
        line, column = getattr(error, "position", (0, 0))
        message = _("The file is not well-formed XML (line {line}, column {column}).")
        return None, [_problem("", "not_xml", message, line=line, column=column)]
    return _fields(root)


def _decode(data: bytes) -> tuple[str | None, FieldError | None]:
    """Text by BOM, else by the declared encoding, else UTF-8."""
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        declared = _DECLARED.match(data[:200])
        encoding = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        message = _("The XML file declares an unknown encoding, {encoding}.")
        return None, _problem("", "unknown_encoding", message, encoding=encoding)
    try:
        return data.decode("gb18030" if codec in _CHINESE else codec), None
    except UnicodeDecodeError:
        message = _("The XML file is not valid {encoding} text.")
        return None, _problem("", "bad_encoding", message, encoding=encoding)


def _fields(root: Element) -> tuple[EInvoiceFields | None, list[FieldError]]:
    problems: list[FieldError] = []
    index = _index(root)
    header = {field: _first(index, aliases) for field, aliases in HEADER_FIELDS.items()}
    line_elements = [element for name in LINE_ELEMENTS for element in index.get(_key(name), [])]
    if not line_elements and all(value is None for value in header.values()):
        message = _("The XML file does not look like an e-invoice: none of its fields were found.")
        return None, [_problem("", "not_einvoice", message)]
    for field, value in header.items():
        if value is None and field not in OPTIONAL:
            problems.append(_missing(field, HEADER_FIELDS[field][0]))
    number = header["number"]
    if number is not None and not (len(number) == 20 and number.isascii() and number.isdigit()):
        problems.append(
            _problem(
                "number", "not_20_digits", _("The invoice number {value} is not 20 digits."), value=number
            )
        )
    money = {
        field: _money(field, header[field], problems) for field in HEADER_FIELDS if field.endswith("_fen")
    }
    fields = EInvoiceFields(
        number=number,
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
        colour=_labelled(index, "InIssuType", {"Y": "blue", "N": "red"}),
        original_number=_first(index, EXTRA_FIELDS["original_number"]),
        remark=_first(index, EXTRA_FIELDS["remark"]),
    )
    amount, tax, total = fields.total_amount_fen, fields.total_tax_fen, fields.total_with_tax_fen
    if amount is not None and tax is not None and total is not None and amount + tax != total:
        message = _("The totals do not add up: {amount} + {tax} is not {total}.")
        shown = {"amount": format_money(amount), "tax": format_money(tax), "total": format_money(total)}
        problems.append(_problem("total_with_tax_fen", "totals_inconsistent", message, **shown))
    return fields, problems


def _line(position: int, element: Element, problems: list[FieldError]) -> EInvoiceLine:
    index = _index(element)
    found = {field: _first(index, aliases) for field, aliases in LINE_FIELDS.items()}
    for field, value in found.items():
        if value is None and field not in OPTIONAL:
            problems.append(_missing(f"lines.{position}.{field}", LINE_FIELDS[field][0]))
    return EInvoiceLine(
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


def _key(name: str) -> str:
    """The comparable form of an element name: local part, no ``-``/``_``, case-folded."""
    local = name.rpartition("}")[2].rpartition(":")[2]
    return local.replace("-", "").replace("_", "").casefold()


def _index(root: Element) -> dict[str, list[Element]]:
    index: dict[str, list[Element]] = {}
    for element in root.iter():
        if isinstance(element.tag, str):
            index.setdefault(_key(element.tag), []).append(element)
    return index


def _first(index: dict[str, list[Element]], aliases: Sequence[str]) -> str | None:
    """The first non-empty text under any alias, in alias order."""
    for alias in aliases:
        for element in index.get(_key(alias), []):
            text = (element.text or "").strip()
            if text:
                return text
    return None


def _labelled(index: dict[str, list[Element]], label: str, codes: dict[str, str]) -> str | None:
    """The meaning of a header label's ``LabelCode`` (``InIssuType`` → Y/N), None if absent or unknown."""
    for element in index.get(_key(label), []):
        for child in element.iter():
            if isinstance(child.tag, str) and _key(child.tag) == _key("LabelCode"):
                return codes.get((child.text or "").strip().upper())
    return None


def _money(field: str, text: str | None, problems: list[FieldError]) -> int | None:
    if text is None:
        return None
    try:
        return parse_money(text.replace(" ", ""), allow_negative=True)  # red invoices are negative
    except InvalidValueError as error:
        if error.code == "too_large":
            message = _("The amount {value} is larger than the system can hold.")
            problems.append(_problem(field, "amount_too_large", message, value=text))
        else:
            message = _("The amount {value} is not a number of yuan with at most two decimals.")
            problems.append(_problem(field, "bad_amount", message, value=text))
        return None


def _date(text: str | None, problems: list[FieldError]) -> date | None:
    """``2026-02-28``, ``2026-02-28 10:11:12``, ``20260228…`` or ``2026年2月28日``."""
    if text is None:
        return None
    match = _DATE.match(text)
    if match is not None:
        year, month, day, compact_month, compact_day = match.groups()
        try:
            return date(int(year), int(month or compact_month), int(day or compact_day))
        except ValueError:
            pass
    problems.append(_problem("issued_on", "bad_date", _("The date {value} cannot be read."), value=text))
    return None


def _rate(text: str | None) -> str | None:
    """``"6%"`` → ``"0.06"``; 免税 → ``exempt``, 不征税 → ``not_taxable``; anything else as written."""
    if text is None or not text.endswith("%"):
        return RATE_CODES.get(text, text) if text is not None else None
    try:
        return format_decimal(Decimal(text[:-1].strip()) / 100)
    except (InvalidOperation, ValueError):
        return text


def _upper(text: str | None) -> str | None:
    return text.upper() if text is not None else None


def _missing(field: str, element: str) -> FieldError:
    return _problem(field, "missing", _("The e-invoice XML has no {element} element."), element=element)


def _problem(field: str, code: str, message: str, **params: Any) -> FieldError:
    return FieldError(field, code, message, params)
