"""Read an OFD invoice (GB/T 33190): a zip of XML parts, the invoice data in it, the page text as fallback.

An OFD is opened only through :func:`fapiao.formats.safezip.open_zip` (entry count, sizes,
ratios, what really unpacks) and each part is parsed by :func:`fapiao.formats.xmlsafe.parse_xml`.
Where the invoice is found, in this order (the first that gives an invoice wins):

1. **an attachment**: an XML part under an ``Attachs`` directory, or named ``original_invoice.xml``
   — the 数电票 XML (``EInvoice``), the older 增值税电子发票 XML (``eInvoice``, a 发票代码 with an
   8-digit number) or an XBRL accounting data file;
2. **custom tags** (``Tags/CustomTag*.xml``): the older OFD invoices tag the printed values,
   either with the value itself or with an ``ObjectRef`` to a text object on a page, which is
   looked up; together with ``OFD.xml``'s ``CustomData`` (``发票号码``, ``开票日期``…);
3. **the page text**: the text objects of the first page and its template, arranged into printed
   rows by position and read like a PDF's text (:mod:`fapiao.formats.invoice_text`).

When both an attachment and page text exist, the number and the 价税合计 are compared; a
difference is a problem.  An OFD with none of these is one clear problem: no invoice data.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from xml.etree.ElementTree import Element

from fapiao.core.errors import FieldError, _
from fapiao.core.money import format_money
from fapiao.formats.einvoice_xml import fields_from_values, fields_of
from fapiao.formats.invoice_text import read_form_text
from fapiao.formats.records import InvoiceRecord, ReadResult, file_result, single_result
from fapiao.formats.safezip import UnsafeZipError, ZipLimits, open_zip
from fapiao.formats.xbrl import is_xbrl, read_xbrl_tree
from fapiao.formats.xmlsafe import XmlLimits, local_key, parse_xml

FORMAT = "ofd"
MAX_OFD_BYTES = 20 * 2**20
OFD_ZIP_LIMITS = ZipLimits(max_entries=2000, max_entry_bytes=16 * 2**20, max_total_bytes=64 * 2**20)
PART_LIMITS = XmlLimits(max_bytes=8 * 2**20, max_depth=64, max_elements=200_000)
#: ``OFD.xml`` CustomData names → the legacy XML's element names.
CUSTOM_DATA = {
    "发票代码": "InvoiceCode",
    "发票号码": "InvoiceNo",
    "开票日期": "IssueDate",
    "校验码": "InvoiceCheckCode",
    "合计金额": "TaxExclusiveTotalAmount",
    "合计税额": "TaxTotalAmount",
    "价税合计": "TaxInclusiveTotalAmount",
    "购买方纳税人识别号": "BuyerTaxID",
    "购买方名称": "BuyerName",
    "销售方纳税人识别号": "SellerTaxID",
    "销售方名称": "SellerName",
}
_PAGE = re.compile(r"(?:^|/)Pages/Page_?(\d+)/Content\.xml$", re.IGNORECASE)
_TEMPLATE = re.compile(r"(?:^|/)Tpls/Tpl_?(\d+)/Content\.xml$", re.IGNORECASE)
_ROW_TOLERANCE = 1.5  # millimetres: text objects this close vertically are on one printed row


def read_ofd(data: bytes, *, zip_limits: ZipLimits = OFD_ZIP_LIMITS) -> ReadResult:
    """The invoice in an OFD file and every problem met; never raises."""
    if len(data) > MAX_OFD_BYTES:
        message = _("The OFD file is larger than {max} MB.")
        return file_result(FORMAT, [FieldError("", "too_large", message, {"max": MAX_OFD_BYTES // 2**20})])
    try:
        archive = open_zip(data, zip_limits)
    except UnsafeZipError as error:
        return file_result(FORMAT, [FieldError("", error.code, error.message, dict(error.params))])
    with archive:
        names = archive.namelist()
        if "OFD.xml" not in names:
            message = _("The file is a zip archive but not an OFD document (it has no OFD.xml).")
            return file_result(FORMAT, [FieldError("", "not_ofd", message)])
        found = _invoice(archive, names)
    if found is not None:
        return found
    message = _(
        "The OFD file holds no invoice data: no invoice attachment, no invoice tags, no invoice text."
    )
    return file_result(FORMAT, [FieldError("", "ofd_no_invoice", message)])


def _invoice(archive: zipfile.ZipFile, names: list[str]) -> ReadResult | None:
    """The invoice from the first source that has one: attachment, custom tags, page text."""
    page_text = _page_text(archive, names)
    attached = _from_attachments(archive, names)
    if attached is not None:
        return _checked_against_text(attached, page_text)
    tagged = _from_tags(archive, names)
    if tagged is not None:
        return single_result(FORMAT, *tagged)
    if page_text.strip():
        record, problems = read_form_text(page_text)
        if record is not None:
            return single_result(FORMAT, record, problems)
    return None


def _part(archive: zipfile.ZipFile, name: str) -> Element | None:
    root, _problem = parse_xml(archive.read(name), PART_LIMITS)
    return root


def _from_attachments(archive: zipfile.ZipFile, names: list[str]) -> ReadResult | None:
    candidates = sorted(
        (name for name in names if _is_attachment(name)),
        key=lambda name: (not name.lower().endswith("original_invoice.xml"), name),
    )
    for name in candidates:
        root, problem = parse_xml(archive.read(name), PART_LIMITS)
        if root is None:
            if problem is not None and problem.code != "not_xml":
                return file_result(FORMAT, [problem])
            continue
        if is_xbrl(root):
            found = read_xbrl_tree(root)
            if found.records:
                return ReadResult(FORMAT, found.records, found.problems)
            continue
        record, problems = fields_of(root)
        if record is not None:
            return single_result(FORMAT, record, problems)
    return None


def _is_attachment(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(".xml") and (
        "attach" in lower or lower.rpartition("/")[2] == "original_invoice.xml"
    )


def _from_tags(
    archive: zipfile.ZipFile, names: list[str]
) -> tuple[InvoiceRecord | None, list[FieldError]] | None:
    values: dict[str, str] = {}
    texts: dict[str, str] | None = None
    for name in names:
        lower = name.lower()
        if "/tags/" not in f"/{lower}" or not lower.endswith(".xml") or lower.endswith("customtags.xml"):
            continue
        root = _part(archive, name)
        if root is None:
            continue
        for element, refs in _tagged(root):
            if refs:
                texts = texts if texts is not None else _text_objects(archive, names)
                value = "".join(texts.get(ref, "") for ref in refs)
            else:
                value = (element.text or "").strip()
            if value:
                values.setdefault(element.tag.rpartition("}")[2], value)
    ofd = _part(archive, "OFD.xml")
    for element in ofd.iter() if ofd is not None else ():
        if isinstance(element.tag, str) and local_key(element.tag) == "customdata":
            field = CUSTOM_DATA.get((element.get("Name") or "").strip())
            if field and (element.text or "").strip():
                values.setdefault(field, (element.text or "").strip())
    if not values:
        return None
    record, problems = fields_from_values(values)
    return (record, problems) if record is not None else None


def _tagged(root: Element) -> Iterator[tuple[Element, list[str]]]:
    """Every tag element that holds a value: its own text, or the ids of the text objects it points to."""
    for element in root.iter():
        if not isinstance(element.tag, str) or local_key(element.tag) == "objectref":
            continue
        children = [child for child in element if isinstance(child.tag, str)]
        refs = [(child.text or "").strip() for child in children if local_key(child.tag) == "objectref"]
        if refs or not children:
            yield element, refs


def _text_objects(archive: zipfile.ZipFile, names: list[str]) -> dict[str, str]:
    """Text object id → its text, over every page and template."""
    found: dict[str, str] = {}
    for name in names:
        if _PAGE.search(name) or _TEMPLATE.search(name):
            root = _part(archive, name)
            for element in root.iter() if root is not None else ():
                if isinstance(element.tag, str) and local_key(element.tag) == "textobject":
                    found[element.get("ID", "")] = "".join(_codes(element))
    return found


def _codes(element: Element) -> Iterator[str]:
    for child in element.iter():
        if isinstance(child.tag, str) and local_key(child.tag) == "textcode":
            yield child.text or ""


def _page_text(archive: zipfile.ZipFile, names: list[str]) -> str:
    """The first page's text (with its template's labels) as printed rows, top to bottom."""
    parts = [name for name in names if _TEMPLATE.search(name)]
    pages = sorted((name for name in names if _PAGE.search(name)), key=_page_number)
    parts += pages[:1]
    placed: list[tuple[float, float, str]] = []
    for name in parts:
        root = _part(archive, name)
        for element in root.iter() if root is not None else ():
            if isinstance(element.tag, str) and local_key(element.tag) == "textobject":
                placed.extend(_placed(element))
    rows: list[list[tuple[float, float, str]]] = []
    for item in sorted(placed):
        if rows and abs(rows[-1][0][0] - item[0]) <= _ROW_TOLERANCE:
            rows[-1].append(item)
        else:
            rows.append([item])
    return "\n".join(" ".join(text for _y, _x, text in sorted(row, key=lambda item: item[1])) for row in rows)


def _page_number(name: str) -> int:
    found = _PAGE.search(name)
    return int(found.group(1)) if found else 0


def _placed(element: Element) -> list[tuple[float, float, str]]:
    box = _numbers(element.get("Boundary", ""))
    left, top = (box[0], box[1]) if len(box) >= 2 else (0.0, 0.0)
    placed = []
    for child in element.iter():
        text = (child.text or "").strip()
        if isinstance(child.tag, str) and local_key(child.tag) == "textcode" and text:
            x = _numbers(child.get("X", "0"))
            y = _numbers(child.get("Y", "0"))
            placed.append((top + (y[0] if y else 0.0), left + (x[0] if x else 0.0), text))
    return placed


def _numbers(text: str) -> list[float]:
    """Coordinates in millimetres (layout only: never money)."""
    try:
        return [float(part) for part in text.split()][:4]
    except ValueError:
        return []


def _checked_against_text(result: ReadResult, page_text: str) -> ReadResult:
    if not result.records or not page_text.strip():
        return result
    shown, _problems = read_form_text(page_text)
    record = result.records[0]
    if shown is None:
        return result
    extra: list[FieldError] = []
    message = _("The invoice data says {field} is {data}, but the page shows {page}.")
    for field in ("number", "total_with_tax_fen"):
        data, page = getattr(record, field), getattr(shown, field)
        if data is not None and page is not None and data != page:
            shown_data = format_money(data) if isinstance(data, int) else data
            shown_page = format_money(page) if isinstance(page, int) else page
            extra.append(
                FieldError(
                    field, "page_disagrees", message, {"field": field, "data": shown_data, "page": shown_page}
                )
            )
    return ReadResult(
        result.format, result.records, result.problems + tuple(single_result(FORMAT, record, extra).problems)
    )
