"""The one way an invoice row is created: issue, red-letter, restore and re-issue all call
:func:`create_invoice_row`.

In the caller's unit of work it builds the row, appends its ledger entry first (so the row is
stored once, with its ledger index; none when ``FAPIAO_LEDGER_ENABLED`` is off, in benchmarks
only), registers an outgoing number as the merchant's (:mod:`fapiao.invoices.outgoing`), and
stores the row and its lines.  The buyer is sealed and encrypted beforehand by
:func:`seal_buyer`, outside the group-commit writer, which every request waits for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from fapiao.accounts.models import Merchant, User
from fapiao.core.canonical import new_salt, seal
from fapiao.core.choices import Colour, Direction, EntryKind, InvoiceKind, InvoiceState, Origin
from fapiao.core.invoice import Buyer, Line
from fapiao.core.invoice_document import invoice_document, sensitive_buyer_fields
from fapiao.core.money import format_decimal
from fapiao.core.tax import rate_by_code
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.invoices.outgoing import register_number
from fapiao.invoices.sensitive import buyer_columns, reveal_buyer
from fapiao.ledger.services import append_entry
from fapiao.platform import rows
from fapiao.platform.uow import PendingEntry, UnitOfWork


@dataclass(frozen=True)
class SealedBuyer:
    """The buyer of a new row: as the ledger document shows it, its seal, and the row's columns."""

    buyer: Buyer
    sealed: str  # the hex commitment to the sensitive fields; "" when there are none
    columns: dict[str, Any]  # the row's uid and its (encrypted, masked, indexed) buyer columns


def seal_buyer(
    merchant: Merchant, buyer: Buyer, *, sealed: str | None = None, salt: bytes | None = None
) -> SealedBuyer:
    """Seal ``buyer``'s sensitive fields with a new salt and encrypt them for a new row.

    With ``sealed``, that commitment is kept instead: a red letter keeps its original's (and its
    ``salt``); a restore from the ledger keeps its entry's, whose sealed fields are not known.
    """
    if sealed is None:
        fields = sensitive_buyer_fields(buyer)
        salt = new_salt() if fields else None
        sealed = seal(fields, salt) if fields and salt else ""
    uid = uuid.uuid4()
    columns = buyer_columns(merchant_id=merchant.pk, uid=uid, buyer=buyer, salt=salt)
    return SealedBuyer(buyer, sealed, {"uid": uid, **columns})


@dataclass(frozen=True)
class NewInvoice:
    """What a new invoice row says, whichever path writes it."""

    number: str
    kind: InvoiceKind
    colour: Colour
    direction: Direction
    origin: Origin
    issued_on: date
    issued_at: datetime
    seller_name: str
    seller_tax_id: str
    lines: tuple[Line, ...]
    remark: str = ""
    origin_ref: str = ""
    original: Invoice | None = None
    confirmation_no: str = ""


@dataclass(frozen=True)
class CreatedInvoice:
    invoice: Invoice
    lines: list[InvoiceLine]
    pending: PendingEntry | None  # its ledger entry (None with the ledger off); the receipt comes at commit


def create_invoice_row(
    unit: UnitOfWork,
    *,
    merchant: Merchant,
    user: User,
    new: NewInvoice,
    buyer: SealedBuyer,
    entry: EntryKind,
    at: datetime,
    ref: str | None = None,
    defer: bool = False,
    replayed_seq: int | None = None,
) -> CreatedInvoice:
    """Store a new invoice, its lines, its ledger entry and its number's registration in ``unit``.

    ``defer``: the lines and the registration go in with the unit's other rows (the issue path,
    whose numbers are fresh from the merchant's segment).  A restored number may be registered
    already — to this merchant; another's is refused
    (:class:`~fapiao.invoices.outgoing.NumberOfAnotherMerchantError`).

    ``replayed_seq``: the row of an entry that is in the log already (``fapiao ledger replay``
    re-appended it from a receipt): no entry is appended, the row points at that one, and its
    number may be registered already, like a restored one.
    """
    invoice = Invoice(
        merchant=merchant,
        **buyer.columns,
        number=new.number,
        kind=new.kind,
        colour=new.colour,
        direction=new.direction,
        state=InvoiceState.NORMAL,
        origin=new.origin,
        origin_ref=new.origin_ref,
        issued_on=new.issued_on,
        issued_at=new.issued_at,
        seller_name=new.seller_name,
        seller_tax_id=new.seller_tax_id,
        buyer_sealed=buyer.sealed,
        original=new.original,
        confirmation_no=new.confirmation_no,
        remark=new.remark,
        total_amount=sum(line.amount for line in new.lines),
        total_tax=sum(line.tax for line in new.lines),
        total_with_tax=sum(line.amount + line.tax for line in new.lines),
        created_by=user,
    )
    pending = None
    if replayed_seq is not None:
        invoice.ledger_seq = replayed_seq
    elif settings.FAPIAO_LEDGER_ENABLED:  # off in benchmarks only
        document = document_for(invoice, new.lines, buyer=buyer.buyer)
        pending = append_entry(unit, merchant=merchant, kind=entry, invoice=document, ref=ref, at=at)
        invoice.ledger_seq = pending.seq
    if new.direction is Direction.OUT:
        restored = new.origin is Origin.RESTORED or replayed_seq is not None
        register_number(
            unit, merchant=merchant, number=new.number, at=at, existing=restored, defer=defer and not restored
        )
    rows.insert([invoice])
    lines = [line_row(invoice, line) for line in new.lines]
    if defer:
        unit.defer(*lines)
    else:
        rows.insert(lines)
    return CreatedInvoice(invoice, lines, pending)


def line_row(invoice: Invoice, line: Line) -> InvoiceLine:
    """The row of one line of ``invoice`` (issue, restore and repair alike)."""
    return InvoiceLine(
        merchant_id=invoice.merchant_id,
        invoice=invoice,
        no=line.no,
        name=line.name,
        tax_code=line.tax_code,
        spec=line.spec,
        unit=line.unit,
        quantity=format_decimal(line.quantity),
        unit_price=format_decimal(line.unit_price),
        tax_rate=line.rate.code,
        amount=line.amount,
        tax=line.tax,
        original_line_no=line.original_no,
    )


def document_for(
    invoice: Invoice, lines: list[InvoiceLine] | tuple[Line, ...], *, buyer: Buyer | None = None
) -> dict[str, Any]:
    """The invoice as the ledger signs it.

    The buyer's sensitive fields are decrypted unless the caller already holds them (``buyer``);
    a tampered ciphertext raises :class:`fapiao.core.fieldcrypt.DecryptionError`.
    """
    if buyer is None:
        buyer = reveal_buyer(invoice)
    return invoice_document(
        number=invoice.number,
        kind=InvoiceKind(invoice.kind),
        colour=Colour(invoice.colour),
        direction=Direction(invoice.direction),
        issued_on=invoice.issued_on,
        seller_name=invoice.seller_name,
        seller_tax_id=invoice.seller_tax_id,
        buyer=buyer,
        sealed=invoice.buyer_sealed or None,
        lines=[core_line(line, invoice) if isinstance(line, InvoiceLine) else line for line in lines],
        original_number=invoice.original.number if invoice.original_id and invoice.original else None,
        remark=invoice.remark,
        seal_tax_id=invoice.buyer_tax_id_enc is not None,  # as the row was stored (see tax_id_sealed)
    )


def core_line(line: InvoiceLine, invoice: Invoice) -> Line:
    return Line(
        no=line.no,
        name=line.name,
        tax_code=line.tax_code,
        spec=line.spec,
        unit=line.unit,
        quantity=Decimal(line.quantity),
        unit_price=Decimal(line.unit_price),
        rate=rate_by_code(line.tax_rate),
        amount=line.amount,
        tax=line.tax,
        original_no=line.original_line_no,
    )
