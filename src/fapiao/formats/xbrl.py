"""Read the Ministry of Finance's XBRL e-invoice accounting data file (电子凭证会计数据标准).

The standard (试行版, 2023) describes a 数电票 as an XBRL instance document whose facts carry the
prefix ``einv`` and, for the invoice's face, the tax bureau's own element names
(``InvoiceNumber``, ``SellerIdNum``, ``TotalAmWithoutTax``, ``TotalTax-includedAmount``,
``RequestTime``, ``WhetherEinvoiceIsRedEinvoice``…).  What we assume about the layout, since
the taxonomy files are not at hand (docs/formats.md says the same):

* the root is ``xbrli:xbrl``; ``xbrli:context``, ``xbrli:unit``, ``link:*`` and footnotes are
  structure, every other child of the root is a fact;
* a line's facts (``ItemName``, ``Amount``, ``TaxRate``, ``ComTaxAm``…) are grouped either in a
  tuple element (children of one fact, as in the tax bureau's XML) or by context: each line in a
  context of its own (a typed dimension in the context's segment or scenario), in document order;
* one instance holds one invoice: facts naming two different invoice numbers are a problem;
* a money fact's ``unitRef`` names a unit whose measure is ``iso4217:CNY``; another currency is a
  problem.  ``decimals`` says how precise the value is, not what it is: the value's own text is
  read exactly, and a value that is not a whole number of fen is refused as everywhere else.

The facts are rearranged into the 数电票 XML's shape and read by
:func:`fapiao.formats.einvoice_xml.fields_of`, so the field aliases, the money rules and the
line totals are the same for both.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

from fapiao.core.errors import FieldError, _
from fapiao.formats.einvoice_xml import HEADER_FIELDS, LINE_FIELDS, fields_of
from fapiao.formats.records import ReadResult, file_result, single_result
from fapiao.formats.xmlsafe import local_key, parse_xml

FORMAT = "xbrl"
_STRUCTURE = frozenset(
    {"context", "unit", "schemaref", "linkbaseref", "roleref", "arcroleref", "footnotelink"}
)
_LINE_KEYS = frozenset(local_key(alias) for aliases in LINE_FIELDS.values() for alias in aliases)
_NUMBER_KEYS = frozenset(local_key(alias) for alias in HEADER_FIELDS["number"])
_MONEY_KEYS = frozenset(
    local_key(alias)
    for field in ("total_amount_fen", "total_tax_fen", "total_with_tax_fen")
    for alias in HEADER_FIELDS[field]
) | frozenset(local_key(alias) for field in ("amount_fen", "tax_fen") for alias in LINE_FIELDS[field])


def is_xbrl(root: Element) -> bool:
    return isinstance(root.tag, str) and local_key(root.tag) == "xbrl"


def read_xbrl(data: bytes) -> ReadResult:
    root, problem = parse_xml(data)
    if root is None:
        return file_result(FORMAT, [problem] if problem else [])
    return read_xbrl_tree(root)


def read_xbrl_tree(root: Element) -> ReadResult:
    if not is_xbrl(root):
        message = _("The file is not an XBRL instance document.")
        return file_result(FORMAT, [FieldError("", "not_xbrl", message)])
    currencies = _units(root)
    problems: list[FieldError] = []
    invoice = Element("EInvoice")
    by_context: dict[str, Element] = {}
    for fact in root:
        if not isinstance(fact.tag, str) or local_key(fact.tag) in _STRUCTURE:
            continue
        key = local_key(fact.tag)
        _check_unit(fact, key, currencies, problems)
        if len(fact):  # a tuple: its children are one group of facts (a line, or a block of the face)
            tuple_copy = SubElement(invoice, fact.tag)
            for child in fact.iter():
                if child is not fact and isinstance(child.tag, str) and not len(child):
                    _check_unit(child, local_key(child.tag), currencies, problems)
                    SubElement(tuple_copy, child.tag).text = child.text
            continue
        context = fact.get("contextRef", "")
        if key in _LINE_KEYS and key not in _NUMBER_KEYS:
            line = by_context.get(context)
            if line is None:
                line = by_context[context] = SubElement(invoice, "IssuItemInformation")
            SubElement(line, fact.tag).text = fact.text
        else:
            SubElement(invoice, fact.tag).text = fact.text
    numbers = {
        (element.text or "").strip()
        for element in invoice.iter()
        if isinstance(element.tag, str)
        and local_key(element.tag) in _NUMBER_KEYS
        and (element.text or "").strip()
    }
    if len(numbers) > 1:
        message = _("The XBRL file names more than one invoice ({numbers}); one file holds one invoice.")
        return file_result(
            FORMAT, [FieldError("", "several_invoices", message, {"numbers": ", ".join(sorted(numbers))})]
        )
    record, found = fields_of(invoice)
    return single_result(FORMAT, record, [*problems, *found])


def _units(root: Element) -> dict[str, bool]:
    """Unit id → whether it is yuan (``iso4217:CNY``)."""
    units: dict[str, bool] = {}
    for element in root:
        if isinstance(element.tag, str) and local_key(element.tag) == "unit":
            measures = [
                (child.text or "").strip().rpartition(":")[2].upper()
                for child in element.iter()
                if isinstance(child.tag, str) and local_key(child.tag) == "measure"
            ]
            units[element.get("id", "")] = measures == ["CNY"]
    return units


def _check_unit(fact: Element, key: str, currencies: dict[str, bool], problems: list[FieldError]) -> None:
    unit = fact.get("unitRef")
    if key in _MONEY_KEYS and unit is not None and not currencies.get(unit, False):
        message = _("The amount {element} is not in yuan (its unit is {unit}).")
        problems.append(
            FieldError("", "not_cny", message, {"element": fact.tag.rpartition("}")[2], "unit": unit[:40]})
        )
