"""The third remedy, **repair** (修复): an invoice row that differs from its ledger entry is rewritten
from that entry.

Restore refuses such a number (the row exists); repair writes the row back exactly as the entry the
row points at says it is — proven against the signed log and agreeing with the claim first
(:func:`fapiao.recovery.remedy_plan.from_ledger`, the same as a restore from the ledger) — and its
state as the log's red letters fold to (what verify found).  No ledger entry is added: the row's own
entry, and its receipt, stand.  The rewrite is audited (``invoice.repair``, before and after, with
the case's 受理编号); afterwards ``ledger verify`` finds the row and its entry agree.

The buyer's sensitive fields: when the row's decrypted fields still seal to the entry's
``buyer.sealed`` they are kept (re-encrypted); otherwise they cannot be trusted and are dropped, the
entry's seal kept, as a restore does.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from fapiao.accounts.models import User
from fapiao.audit.services import record
from fapiao.core.canonical import seal
from fapiao.core.errors import ConflictError, FapiaoError
from fapiao.core.invoice import Buyer
from fapiao.core.invoice_document import sensitive_buyer_fields
from fapiao.invoices import findings
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.invoices.presenters import audit_snapshot
from fapiao.invoices.rows import core_line, document_for, line_row
from fapiao.invoices.sensitive import buyer_columns, reveal_buyer, seal_salt
from fapiao.platform import rows
from fapiao.recovery.choices import Remedy
from fapiao.recovery.models import Case
from fapiao.recovery.remedy_plan import Writing, from_ledger


class NothingToRepairError(ConflictError):
    """Invoice {number} is not in the system: there is no row to repair; restore it instead."""

    code = "nothing_to_repair"


class InvoiceAgreesError(ConflictError):
    """Invoice {number} already agrees with its ledger entry: there is nothing to repair."""

    code = "invoice_agrees"


class NoLedgerEntryError(ConflictError):
    """Invoice {number} points at no ledger entry of this merchant, so it cannot be repaired from one."""

    code = "repair_without_entry"


def _row(case: Case) -> Invoice:
    invoice = (
        Invoice.objects.filter(merchant_id=case.merchant_id, number=case.claimed_number)
        .select_related("original")
        .first()
    )
    if invoice is None:
        raise NothingToRepairError(number=case.claimed_number)
    return invoice


def _lines(invoice: Invoice) -> QuerySet[InvoiceLine]:
    return InvoiceLine.objects.filter(merchant_id=invoice.merchant_id, invoice=invoice).order_by("no")


def _agrees(invoice: Invoice, document: dict[str, Any]) -> bool:
    try:
        rebuilt = document_for(invoice, tuple(core_line(line, invoice) for line in _lines(invoice)))
    except (FapiaoError, ValueError, ArithmeticError, LookupError):
        return False
    expected = findings.active_for_merchant(invoice.merchant_id).filter(number=invoice.number).first()
    state_ok = expected is None or not expected.expected_state or expected.expected_state == invoice.state
    return rebuilt == document and state_ok


def check_repair(case: Case) -> None:
    """What rules a repair out: no row, no entry, or nothing wrong with the row."""
    invoice = _row(case)
    document = findings.entry_document(case.merchant_id, invoice.ledger_seq)
    if document is None:
        raise NoLedgerEntryError(number=invoice.number)
    if _agrees(invoice, document):
        raise InvoiceAgreesError(number=invoice.number)


def plan_repair(case: Case) -> Writing:
    """The row as its own ledger entry says it is (proven, agreeing with the claim)."""
    invoice = _row(case)
    index = invoice.ledger_seq
    document = findings.entry_document(case.merchant_id, index)
    if document is None or index is None:
        raise NoLedgerEntryError(number=invoice.number)
    return dataclasses.replace(from_ledger(case, index, document), remedy=Remedy.REPAIR)


def _buyer_columns(invoice: Invoice, writing: Writing) -> dict[str, Any]:
    """The row's buyer columns from the entry; the sensitive fields kept only if they still seal to it."""
    try:
        revealed: Buyer | None = reveal_buyer(invoice)
        salt = seal_salt(invoice)
    except (FapiaoError, ValueError):
        revealed, salt = None, None
    if writing.sealed and revealed is not None and salt:
        sealed_tax_id = invoice.buyer_tax_id_enc is not None
        fields = sensitive_buyer_fields(revealed, seal_tax_id=sealed_tax_id)
        if fields and seal(fields, salt) == writing.sealed:
            tax_id = revealed.tax_id if sealed_tax_id else writing.buyer.tax_id
            buyer = dataclasses.replace(revealed, name=writing.buyer.name, tax_id=tax_id)
            return buyer_columns(merchant_id=invoice.merchant_id, uid=invoice.uid, buyer=buyer, salt=salt)
    return buyer_columns(merchant_id=invoice.merchant_id, uid=invoice.uid, buyer=writing.buyer, salt=None)


def write_repair(*, user: User, case: Case, writing: Writing, now: datetime) -> Invoice:
    """Rewrite the row and its lines from ``writing`` (inside the case's transaction)."""
    invoice = _row(case)
    before = audit_snapshot(invoice, lines=_lines(invoice).count())
    finding = findings.active_for_merchant(invoice.merchant_id).filter(number=invoice.number).first()
    for name, value in _buyer_columns(invoice, writing).items():
        setattr(invoice, name, value)
    seller_name, seller_tax_id = writing.seller or (invoice.seller_name, invoice.seller_tax_id)
    original = None
    if writing.original_number:
        original = Invoice.objects.filter(
            merchant_id=invoice.merchant_id, number=writing.original_number
        ).first()
    invoice.kind = writing.kind.value
    invoice.colour = writing.colour.value
    invoice.direction = writing.direction.value
    invoice.issued_on = writing.issued_on
    invoice.seller_name = seller_name
    invoice.seller_tax_id = seller_tax_id
    invoice.buyer_sealed = writing.sealed or ""
    invoice.remark = writing.remark
    invoice.original = original
    invoice.total_amount = writing.total_amount
    invoice.total_tax = writing.total_tax
    invoice.total_with_tax = writing.total_with_tax
    if finding is not None and finding.expected_state:
        invoice.state = finding.expected_state
    invoice.version = invoice.version + 1  # the invoice row's own optimistic lock, not a case's
    invoice.save()
    _lines(invoice).delete()  # the altered lines; the audit record keeps the row as it was
    rows.insert([line_row(invoice, line) for line in writing.lines])
    record(
        actor=user,
        action="invoice.repair",
        target=invoice,
        merchant=invoice.merchant,
        before=before,
        after={
            **audit_snapshot(invoice, lines=len(writing.lines)),
            "source": "ledger",
            "case": str(case.uid),
        },
        note=f"case {case.acceptance_no}",
    )
    findings.clear(
        merchant_id=invoice.merchant_id, number=invoice.number, how="repair", ref=case.acceptance_no
    )
    return invoice
