"""The ``invoice`` object of a ledger entry (docs/spec/ledger.md; ``receipt-example.json``).

What the ledger signs of an invoice: everything but the buyer's sensitive fields, which enter only
as the salted ``sealed`` commitment (:func:`sensitive_buyer_fields`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from fapiao.core.choices import Colour, Direction, InvoiceKind
from fapiao.core.identifiers import (
    holds_resident_id,
)
from fapiao.core.invoice import (
    Buyer,
    Line,
)
from fapiao.core.money import (
    format_decimal,
    format_money,
)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)


def tax_id_sealed(buyer: Buyer, seal_tax_id: bool | None = None) -> bool:
    """Is the buyer's taxpayer number sealed rather than written in the entry?  By default when it
    holds a person's ID number (:func:`~fapiao.core.identifiers.holds_resident_id`); an invoice
    stored otherwise (an old 个体工商户 number from before such numbers were sealed) says so."""
    if buyer.tax_id is None:
        return False
    return holds_resident_id(buyer.tax_id.kind) if seal_tax_id is None else seal_tax_id


def sensitive_buyer_fields(buyer: Buyer, *, seal_tax_id: bool | None = None) -> dict[str, str | None]:
    """What ``buyer.sealed`` commits to: a taxpayer number holding a person's ID and every buyer's
    address, phone, bank and account — none of them appear in a ledger entry.  ``{}`` when there
    is nothing.  ``seal_tax_id`` as for :func:`tax_id_sealed`."""
    personal_id = buyer.tax_id.value if buyer.tax_id and tax_id_sealed(buyer, seal_tax_id) else None
    fields: dict[str, str | None] = {
        "address": buyer.address,
        "bank": buyer.bank,
        "bank_account": buyer.bank_account,
        "phone": buyer.phone,
        "tax_id": personal_id,
    }
    return fields if any(fields.values()) else {}


def _line_document(line: Line) -> dict[str, Any]:
    document: dict[str, Any] = {
        "amount": format_money(line.amount),
        "name": line.name,
        "no": line.no,
        "quantity": format_decimal(line.quantity),
        "spec": line.spec,
        "tax": format_money(line.tax),
        "tax_code": line.tax_code,
        "tax_rate": line.rate.code,
        "unit": line.unit,
        "unit_price": format_decimal(line.unit_price),
    }
    if line.original_no is not None:
        document["original_no"] = line.original_no
    return document


def invoice_document(
    *,
    number: str,
    kind: InvoiceKind,
    colour: Colour,
    direction: Direction,
    issued_on: date,
    seller_name: str,
    seller_tax_id: str,
    buyer: Buyer,
    sealed: str | None,
    lines: Sequence[Line],
    original_number: str | None,
    remark: str,
    seal_tax_id: bool | None = None,
) -> dict[str, Any]:
    """The ``invoice`` object of a ledger entry (docs/spec/ledger.md; receipt-example.json).

    Money, quantities and rates are strings.  A taxpayer number holding a person's ID is never
    included (``tax_id`` is null; ``seal_tax_id`` as for :func:`tax_id_sealed`); ``sealed`` is the
    hex SHA-256 commitment to :func:`sensitive_buyer_fields`, required whenever there is something
    to seal.
    Red lines add ``original_no``, the blue line they reverse.
    """
    if sealed is not None and not _SHA256_HEX.fullmatch(sealed):
        raise ValueError("sealed must be a lowercase hex SHA-256")
    if sealed is None and sensitive_buyer_fields(buyer, seal_tax_id=seal_tax_id):
        raise ValueError("the buyer has sensitive fields: pass their sealed commitment")
    public_id = buyer.tax_id.value if buyer.tax_id and not tax_id_sealed(buyer, seal_tax_id) else None
    total_amount = sum(line.amount for line in lines)
    total_tax = sum(line.tax for line in lines)
    return {
        "buyer": {"name": buyer.name, "sealed": sealed, "tax_id": public_id},
        "colour": colour.value,
        "direction": direction.value,
        "issued_on": issued_on.isoformat(),
        "kind": kind.value,
        "lines": [_line_document(line) for line in lines],
        "number": number,
        "original_number": original_number,
        "remark": remark,
        "seller": {"name": seller_name, "tax_id": seller_tax_id},
        "total_amount": format_money(total_amount),
        "total_tax": format_money(total_tax),
        "total_with_tax": format_money(total_amount + total_tax),
    }
