"""How an invoice looks to the outside: the API representation (DESIGN.md §6b)."""

from __future__ import annotations

from typing import Any

from fapiao.core.money import format_money
from fapiao.core.words import amount_in_words
from fapiao.invoices.models import Invoice, InvoiceLine


def mask(value: str) -> str:
    """Hide the middle of a sensitive value: 13812345678 → 138****5678."""
    if not value:
        return ""
    if len(value) <= 4:
        return "*" * len(value)
    keep_head = 3 if len(value) >= 8 else 1
    keep_tail = 4 if len(value) >= 8 else 1
    return value[:keep_head] + "*" * (len(value) - keep_head - keep_tail) + value[-keep_tail:]


def buyer_representation(invoice: Invoice, *, reveal: bool) -> dict[str, Any]:
    individual = invoice.buyer_tax_id_kind == "resident_id"
    show = (lambda v: v) if reveal else mask
    return {
        "name": invoice.buyer_name,
        "tax_id": show(invoice.buyer_tax_id) if individual else (invoice.buyer_tax_id or None),
        "address": show(invoice.buyer_address),
        "phone": show(invoice.buyer_phone),
        "bank": show(invoice.buyer_bank),
        "bank_account": show(invoice.buyer_bank_account),
    }


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


def invoice_representation(
    invoice: Invoice,
    *,
    lines: list[InvoiceLine] | None = None,
    receipt: dict[str, Any] | None = None,
    reveal: bool = False,
) -> dict[str, Any]:
    if lines is None:
        lines = list(invoice.lines.all())
    original_number = invoice.original.number if invoice.original_id and invoice.original else None
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
