"""How an invoice looks to the outside: the API representation (docs/api.md), and its audit snapshot.

Sensitive buyer fields are masked (``138****5678``) from the stored masked forms, without
decrypting anything; only ``reveal=True`` — which callers allow only with the permission, and
audit — decrypts them.
"""

from __future__ import annotations

from typing import Any

from fapiao.core.masking import mask
from fapiao.core.money import format_money
from fapiao.core.words import amount_in_words
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.invoices.sensitive import masked_buyer, revealed_buyer
from fapiao.platform import rows

__all__ = [
    "audit_snapshot",
    "buyer_representation",
    "invoice_representation",
    "line_representation",
    "mask",
    "summary_representation",
]


def buyer_representation(invoice: Invoice, *, reveal: bool) -> dict[str, Any]:
    return revealed_buyer(invoice) if reveal else masked_buyer(invoice)


def line_representation(line: InvoiceLine) -> dict[str, Any]:
    return {
        "no": line.no,
        "name": line.name,
        "tax_code": line.tax_code,
        "spec": line.spec,
        "unit": line.unit,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "tax_rate": line.tax_rate,
        "amount": format_money(line.amount),
        "tax": format_money(line.tax),
        "original_line_no": line.original_line_no,
    }


def invoice_lines(invoice: Invoice) -> list[InvoiceLine]:
    """The invoice's lines in order: prefetched ones if its query prefetched them, else one
    prepared statement (the API's read runs this on every request)."""
    if "lines" in getattr(invoice, "_prefetched_objects_cache", {}):
        return list(invoice.lines.all())
    return rows.select(InvoiceLine, {"invoice_id": invoice.pk}, order_by=("no",))


def _original_number(invoice: Invoice) -> str | None:
    """A red invoice's original's number: from the joined row when the query joined it, else its
    number alone (never the whole original row)."""
    if not invoice.original_id:
        return None
    if Invoice.original.is_cached(invoice):
        return invoice.original.number if invoice.original else None
    return Invoice.objects.filter(pk=invoice.original_id).values_list("number", flat=True).first()


def invoice_representation(
    invoice: Invoice,
    *,
    lines: list[InvoiceLine] | None = None,
    receipt: dict[str, Any] | None = None,
    reveal: bool = False,
) -> dict[str, Any]:
    if lines is None:
        lines = invoice_lines(invoice)
    original_number = _original_number(invoice)
    return {
        "number": invoice.number,
        "kind": invoice.kind,
        "colour": invoice.colour,
        "direction": invoice.direction,
        "state": invoice.state,
        "origin": invoice.origin,
        "issued_on": invoice.issued_on.isoformat(),
        "seller": {"name": invoice.seller_name, "tax_id": invoice.seller_tax_id},
        "buyer": buyer_representation(invoice, reveal=reveal),
        "lines": [line_representation(line) for line in lines],
        "total_amount": format_money(invoice.total_amount),
        "total_tax": format_money(invoice.total_tax),
        "total_with_tax": format_money(invoice.total_with_tax),
        "total_with_tax_in_words": amount_in_words(invoice.total_with_tax),
        "original_number": original_number,
        "confirmation_no": invoice.confirmation_no or None,
        "remark": invoice.remark,
        "receipt": receipt,
    }


def audit_snapshot(invoice: Invoice, *, lines: int) -> dict[str, Any]:
    """What the audit trail keeps of an invoice: masked, and its lines only counted — the ledger
    entry it points at (``ledger_index``) holds them, signed."""
    original_number = invoice.original.number if invoice.original_id and invoice.original else None
    return {
        "number": invoice.number,
        "kind": invoice.kind,
        "colour": invoice.colour,
        "state": invoice.state,
        "origin": invoice.origin,
        "issued_on": invoice.issued_on.isoformat(),
        "buyer": masked_buyer(invoice),
        "total_amount": format_money(invoice.total_amount),
        "total_tax": format_money(invoice.total_tax),
        "total_with_tax": format_money(invoice.total_with_tax),
        "lines": lines,
        "original_number": original_number,
        "confirmation_no": invoice.confirmation_no or None,
        "ledger_index": invoice.ledger_seq,
        "version": invoice.version,
    }


def summary_representation(invoice: Invoice) -> dict[str, Any]:
    """The short form used in search results."""
    return {
        "number": invoice.number,
        "kind": invoice.kind,
        "colour": invoice.colour,
        "direction": invoice.direction,
        "state": invoice.state,
        "origin": invoice.origin,
        "issued_on": invoice.issued_on.isoformat(),
        "buyer_name": invoice.buyer_name,
        "total_amount": format_money(invoice.total_amount),
        "total_tax": format_money(invoice.total_tax),
        "total_with_tax": format_money(invoice.total_with_tax),
    }
