"""Render an invoice's documents from what its ledger entry signed.

The source is the ``invoice`` object of the invoice's ledger entry, read back from the log — the
same data the receipt proves — or, for an invoice without an entry (ledger switched off), the
same object built the way the entry would have been (``invoices.services.document_for``).  The
only thing the entry never holds and the PDF prints is an individual buyer's ID number: the
buyer's copy decrypts it, the masked copy prints its masked form.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.utils import timezone

from fapiao.audit.services import display_name
from fapiao.core.errors import _
from fapiao.core.money import format_money
from fapiao.documents.models import DocumentKind, Variant
from fapiao.formats.einvoice_xml_write import write_einvoice_xml
from fapiao.formats.invoice_pdf import invoice_form, render_invoice_pdf
from fapiao.formats.receipt_pdf import ReceiptPage, render_receipt_pdf
from fapiao.invoices.models import Invoice
from fapiao.invoices.rows import document_for
from fapiao.invoices.sensitive import masked_buyer, reveal_buyer
from fapiao.invoices.services import InvoiceNotFoundError
from fapiao.ledger.models import LogEntry
from fapiao.ledger.services import receipt_for

CONTENT_TYPES = {
    DocumentKind.INVOICE_PDF: "application/pdf",
    DocumentKind.INVOICE_XML: "application/xml",
    DocumentKind.RECEIPT_JSON: "application/json",
    DocumentKind.RECEIPT_PDF: "application/pdf",
}
SUFFIXES = {
    DocumentKind.INVOICE_PDF: ".pdf",
    DocumentKind.INVOICE_XML: ".xml",
    DocumentKind.RECEIPT_JSON: "-receipt.json",
    DocumentKind.RECEIPT_PDF: "-receipt.pdf",
}


class NoLedgerEntryError(InvoiceNotFoundError):
    """This invoice has no ledger entry, so there is no receipt for it."""

    code = "no_ledger_entry"


def file_name(invoice: Invoice, kind: str) -> str:
    """``26110000000000000001.pdf``, ``…-receipt.json``: the number, then what it is."""
    return f"{invoice.number}{SUFFIXES[DocumentKind(kind)]}"


def check_url(*, number: str, issued_on: str, total_with_tax: str) -> str:
    """The public 查验 page with the invoice's three fields filled in."""
    query = urlencode({"number": number, "issued_on": issued_on, "total_with_tax": total_with_tax})
    return f"{settings.FAPIAO_PUBLIC_URL}/check/?{query}"


def signed_invoice(invoice: Invoice) -> dict[str, Any]:
    """The ``invoice`` object of the invoice's ledger entry (or as it would be)."""
    if invoice.ledger_seq is not None:
        entry = LogEntry.objects.get(merchant_id=invoice.merchant_id, seq=invoice.ledger_seq)
        signed: dict[str, Any] = json.loads(bytes(entry.body))["invoice"]
        return signed
    return document_for(invoice, list(invoice.lines.all()))


def holds_personal_data(invoice: Invoice) -> bool:
    """Does the PDF handed to the buyer print personal data?  Yes when the buyer's taxpayer number
    holds a person's ID number (stored only encrypted); the form prints no address, phone or bank."""
    return invoice.buyer_tax_id_enc is not None


def _buyer_tax_id(invoice: Invoice, variant: str) -> str | None:
    if not holds_personal_data(invoice):
        return None  # the entry's own (an organisation's number, or none)
    if variant == Variant.MASKED:
        return str(masked_buyer(invoice)["tax_id"] or "")
    tax_id = reveal_buyer(invoice).tax_id
    return tax_id.value if tax_id else ""


def receipt_json(invoice: Invoice) -> bytes:
    if invoice.ledger_seq is None:
        raise NoLedgerEntryError(_("This invoice has no ledger entry, so there is no receipt for it."))
    receipt = receipt_for(invoice.merchant, invoice.ledger_seq)
    return (json.dumps(receipt, ensure_ascii=False, indent=2) + "\n").encode()


def render(
    invoice: Invoice, kind: str, variant: str, *, receipt: bytes | None = None, ledger_flag: str = ""
) -> bytes:
    """The bytes of one document.  ``receipt`` is the stored ``receipt.json`` a receipt PDF embeds;
    ``ledger_flag`` the red mark of an invoice PDF whose row verify found altered."""
    signed = signed_invoice(invoice) if kind in (DocumentKind.INVOICE_PDF, DocumentKind.INVOICE_XML) else {}
    if kind == DocumentKind.INVOICE_PDF:
        form = invoice_form(
            signed,
            buyer_tax_id=_buyer_tax_id(invoice, variant),
            issuer=display_name(invoice.created_by),
            check_url=check_url(
                number=invoice.number,
                issued_on=invoice.issued_on.isoformat(),
                total_with_tax=format_money(invoice.total_with_tax),
            ),
            confirmation_no=invoice.confirmation_no or None,
        )
        if ledger_flag:
            form = dataclasses.replace(form, ledger_flag=ledger_flag)
        return render_invoice_pdf(form)
    if kind == DocumentKind.INVOICE_XML:
        issued = timezone.localtime(invoice.issued_at).strftime("%Y-%m-%d %H:%M:%S")
        return write_einvoice_xml(
            signed,
            issue_time=issued,
            drawer=display_name(invoice.created_by),
            confirmation_no=invoice.confirmation_no or None,
        )
    if kind == DocumentKind.RECEIPT_JSON:
        return receipt_json(invoice)
    if receipt is None:
        raise ValueError("a receipt PDF embeds the stored receipt.json: pass it")
    page = ReceiptPage(
        number=invoice.number,
        total_with_tax=invoice.total_with_tax,
        seller_name=invoice.seller_name,
        receipt_json=receipt,
    )
    return render_receipt_pdf(page)
