"""Write an invoice as a 数电票 (fully digitalised e-invoice) XML file.

The input is the ``invoice`` object of a ledger entry (:mod:`fapiao.core.invoice_document`): the
file says exactly what the ledger signed, and :func:`fapiao.formats.einvoice_xml.read_einvoice_xml`
reads it back to the same invoice.  The structure is the tax bureau's::

    <EInvoice>
      <Header>              EIid (the number), EInvoiceTag, Version, InherentLabel:
                            InIssuType (Y blue / N red), EInvoiceType (02 电子发票),
                            GeneralOrSpecialVAT (01 增值税专用发票 / 02 普通发票)
      <EInvoiceData>
        <SellerInformation> SellerIdNum, SellerName
        <BuyerInformation>  BuyerIdNum (when the entry holds it), BuyerName
        <BasicInformation>  TotalAmWithoutTax, TotalTaxAm, TotalTax-includedAmount,
                            TotalTax-includedAmountInChinese, Drawer, RequestTime
        <IssuItemInformation> per line: ItemName, SpecMod, MeaUnits, Quantity, UnPrice, Amount,
                            TaxRate, ComTaxAm, TotaltaxIncludedAmount, TaxClassificationCode
        <AdditionalInformation> Remark; for a red invoice also BlueInvoiceNumber and
                            RedConfirmationNumber (names of ours: the official file writes
                            both into the remark; ours keeps the remark as the ledger has it)
      <TaxSupervisionInfo>  InvoiceNumber, IssueTime
    </EInvoice>

What the ledger never holds is not in the file either: an individual buyer's ID number (the
entry has ``tax_id: null``, the number is inside ``sealed``), address, phone and bank.  Money is
yuan with two decimals, negative on a red invoice; rates are fractions (``0.06``) or the words
免税 and 不征税.  UTF-8, no namespaces, the same bytes for the same input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, SubElement, indent, tostring

from fapiao.core.money import format_money, parse_money
from fapiao.core.words import amount_in_words

VERSION = "0.1"
RATE_WORDS = {"exempt": "免税", "not_taxable": "不征税"}
KIND_LABELS = {"special": ("01", "增值税专用发票"), "ordinary": ("02", "普通发票")}


def _add(parent: Element, name: str, text: str | None) -> Element:
    child = SubElement(parent, name)
    child.text = text or ""
    return child


def _label(parent: Element, name: str, code: str, label: str) -> None:
    element = SubElement(parent, name)
    _add(element, "LabelCode", code)
    _add(element, "LabelName", label)


def _header(root: Element, invoice: Mapping[str, Any]) -> None:
    header = SubElement(root, "Header")
    number = str(invoice["number"])
    _add(header, "EIid", number)
    _add(header, "EInvoiceTag", f"SWEI{number[2:4]}00")  # the issuing province, as 11 → SWEI1100
    _add(header, "Version", VERSION)
    labels = SubElement(header, "InherentLabel")
    red = invoice["colour"] == "red"
    _label(labels, "InIssuType", "N" if red else "Y", "红字发票" if red else "蓝字发票")
    _label(labels, "EInvoiceType", "02", "电子发票")
    _label(labels, "GeneralOrSpecialVAT", *KIND_LABELS[str(invoice["kind"])])


def _line(data: Element, line: Mapping[str, Any]) -> None:
    item = SubElement(data, "IssuItemInformation")
    _add(item, "ItemName", line["name"])
    _add(item, "SpecMod", line.get("spec"))
    _add(item, "MeaUnits", line.get("unit"))
    _add(item, "Quantity", line.get("quantity"))
    _add(item, "UnPrice", line.get("unit_price"))
    _add(item, "Amount", line["amount"])
    rate = str(line["tax_rate"])
    _add(item, "TaxRate", RATE_WORDS.get(rate, rate))
    _add(item, "ComTaxAm", line["tax"])
    total = parse_money(line["amount"], allow_negative=True) + parse_money(line["tax"], allow_negative=True)
    _add(item, "TotaltaxIncludedAmount", format_money(total))
    _add(item, "TaxClassificationCode", line.get("tax_code"))


def write_einvoice_xml(
    invoice: Mapping[str, Any],
    *,
    issue_time: str,
    drawer: str = "",
    confirmation_no: str | None = None,
) -> bytes:
    """The XML file of a ledger entry's ``invoice``; ``issue_time`` as ``YYYY-MM-DD HH:MM:SS``
    (Beijing time), ``drawer`` the 开票人, ``confirmation_no`` a red invoice's 确认单编号."""
    root = Element("EInvoice")
    _header(root, invoice)
    data = SubElement(root, "EInvoiceData")
    seller = SubElement(data, "SellerInformation")
    _add(seller, "SellerIdNum", invoice["seller"]["tax_id"])
    _add(seller, "SellerName", invoice["seller"]["name"])
    buyer = SubElement(data, "BuyerInformation")
    if invoice["buyer"].get("tax_id"):
        _add(buyer, "BuyerIdNum", invoice["buyer"]["tax_id"])
    _add(buyer, "BuyerName", invoice["buyer"]["name"])
    basic = SubElement(data, "BasicInformation")
    _add(basic, "TotalAmWithoutTax", invoice["total_amount"])
    _add(basic, "TotalTaxAm", invoice["total_tax"])
    _add(basic, "TotalTax-includedAmount", invoice["total_with_tax"])
    words = amount_in_words(parse_money(invoice["total_with_tax"], allow_negative=True))
    _add(basic, "TotalTax-includedAmountInChinese", words)
    _add(basic, "Drawer", drawer)
    _add(basic, "RequestTime", issue_time)
    for line in invoice["lines"]:
        _line(data, line)
    extra = SubElement(data, "AdditionalInformation")
    if invoice.get("original_number"):
        _add(extra, "BlueInvoiceNumber", invoice["original_number"])
        _add(extra, "RedConfirmationNumber", confirmation_no)
    _add(extra, "Remark", invoice.get("remark"))
    supervision = SubElement(root, "TaxSupervisionInfo")
    _add(supervision, "InvoiceNumber", invoice["number"])
    _add(supervision, "IssueTime", issue_time)
    indent(root, space="  ")
    text: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"
