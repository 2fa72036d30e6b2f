"""What a remedy writes (docs/spec/recovery.md): what was claimed and proven, never what a reviewer types.

- **Restore**, where the merchant's own ledger holds an entry for the claimed number: exactly that
  entry's invoice — proven against the signed log first, and only if it agrees with the claim
  (otherwise the merchant corrects the claim: 补正).  Sensitive buyer fields the entry holds only
  sealed stay sealed: the restored row keeps the entry's seal.
- Otherwise, restore and re-issue write **the claim as reviewed**: its kind, buyer, and lines (or
  one line of its amount and tax), dated as claimed for a restore and today for a re-issue.  A
  claim that lacks any of these is refused (:class:`ClaimIncompleteError`).

:func:`plan_remedy` only reads; :mod:`fapiao.recovery.remedies` writes the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fapiao.core.case_claim import ClaimIncompleteError, claimed_invoice_body
from fapiao.core.choices import Colour, Direction, InvoiceKind
from fapiao.core.claims import remedy_differences
from fapiao.core.errors import ConflictError, FapiaoError, FieldError, ValidationFailed, _
from fapiao.core.identifiers import validate_tax_id
from fapiao.core.invoice import Buyer, Line, parse_invoice_request
from fapiao.core.invoice_document import invoice_document
from fapiao.core.money import parse_money
from fapiao.core.receipt import verify_receipt
from fapiao.core.tax import rate_by_code
from fapiao.ledger.services import receipt_for
from fapiao.platform import keys
from fapiao.recovery.choices import Remedy
from fapiao.recovery.claim import remedy_claim, stored_claim
from fapiao.recovery.history import DOCUMENT_KINDS, ledger_documents
from fapiao.recovery.models import Case

#: The one line of an invoice claimed by its totals (the claim, with its evidence, is the detail).
SUMMARY_LINE = "详见补救申请{acceptance_no}"


class LedgerDiffersFromClaimError(ConflictError):
    """Ledger entry {index} of this number differs from the claim ({fields}): ask for a corrected claim."""

    code = "ledger_differs_from_claim"


NOT_REBUILT = _("Ledger entry {index} of this number cannot be written back exactly as it was signed.")


class LedgerEntryUnprovenError(ConflictError):
    """Ledger entry {index} of this number cannot be proven against the signed log; run ledger verify."""

    code = "ledger_entry_unproven"


@dataclass(frozen=True)
class Writing:
    """The invoice a remedy will write, and where it comes from (``ledger`` or ``claim``)."""

    remedy: Remedy
    source: str
    number: str | None  # None: a new number from the merchant's segment, when it is written
    issued_on: date
    kind: InvoiceKind
    buyer: Buyer
    lines: tuple[Line, ...]
    remark: str = ""
    sealed: str | None = None  # the ledger entry's seal, kept: its sealed fields are not known
    seller: tuple[str, str] | None = None  # (name, tax ID) from the entry; None: the merchant
    direction: Direction = Direction.OUT
    colour: Colour = Colour.BLUE
    original_number: str | None = None  # a red invoice's blue original
    entry_index: int | None = None

    @property
    def total_amount(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def total_tax(self) -> int:
        return sum(line.tax for line in self.lines)

    @property
    def total_with_tax(self) -> int:
        return self.total_amount + self.total_tax


def ledger_original(case: Case) -> tuple[int, dict[str, Any]] | None:
    """The latest entry of the merchant's log whose invoice is the claimed number: (index, invoice)."""
    number = case.claimed_number
    found = [
        row
        for row in ledger_documents(case)
        if row["kind"] in DOCUMENT_KINDS and row["document"] and row["document"].get("number") == number
    ]
    return (found[-1]["index"], found[-1]["document"]) if found else None


def plan_remedy(case: Case, remedy: Remedy, *, today: date) -> Writing:
    """What ``remedy`` would write for ``case`` now; raises what stands in its way."""
    if remedy is Remedy.RESTORE:
        original = ledger_original(case)
        if original is not None:
            return from_ledger(case, *original)
    claim = stored_claim(case)
    on = claim.issued_on if remedy is Remedy.RESTORE else today
    body = claimed_invoice_body(claim, summary_line=SUMMARY_LINE.format(acceptance_no=case.acceptance_no))
    try:
        draft = parse_invoice_request(body, on=on)
    except ValidationFailed as failed:
        raise ClaimIncompleteError(
            [FieldError(f"claim.{e.field}", e.code, e.message, e.params) for e in failed.errors]
        ) from None
    number = case.claimed_number if remedy is Remedy.RESTORE else None
    return Writing(remedy, "claim", number, on, draft.kind, draft.buyer, draft.lines)


def from_ledger(case: Case, index: int, document: dict[str, Any]) -> Writing:
    """Exactly the entry's invoice: proven, agreeing with the claim, and rebuilt byte for byte."""
    try:
        proven = verify_receipt(receipt_for(case.merchant, index), keys.registry()).ok
    except (LookupError, FapiaoError, ValueError):
        proven = False
    if not proven:
        raise LedgerEntryUnprovenError(index=index)
    claim = remedy_claim(case)
    if document.get("direction") == Direction.IN:
        claim.pop("seller_tax_id")  # a received invoice's seller is another party
    differences = remedy_differences(claim, document, restore=True)
    if differences:
        raise LedgerDiffersFromClaimError(index=index, fields=", ".join(d.field for d in differences))
    try:
        writing = writing_from_entry(document, index)
        rebuilt = document_of(writing)
    except (FapiaoError, ValueError, ArithmeticError, LookupError, TypeError, KeyError):
        rebuilt = None
    if rebuilt != document:
        raise LedgerEntryUnprovenError(NOT_REBUILT, index=index)
    return writing


def writing_from_entry(document: dict[str, Any], index: int) -> Writing:
    buyer = document["buyer"]
    tax_id = validate_tax_id(buyer["tax_id"]) if buyer.get("tax_id") else None
    lines = tuple(
        Line(
            no=int(line["no"]),
            name=line["name"],
            tax_code=line["tax_code"],
            spec=line["spec"],
            unit=line["unit"],
            quantity=Decimal(line["quantity"]),
            unit_price=Decimal(line["unit_price"]),
            rate=rate_by_code(line["tax_rate"]),
            amount=parse_money(line["amount"], allow_negative=True),  # a red line's are negative
            tax=parse_money(line["tax"], allow_negative=True),
            original_no=line.get("original_no"),
        )
        for line in document["lines"]
    )
    return Writing(
        remedy=Remedy.RESTORE,
        source="ledger",
        number=document["number"],
        issued_on=date.fromisoformat(document["issued_on"]),
        kind=InvoiceKind(document["kind"]),
        buyer=Buyer(name=buyer["name"], tax_id=tax_id),
        lines=lines,
        remark=document["remark"],
        sealed=buyer.get("sealed"),
        seller=(document["seller"]["name"], document["seller"]["tax_id"]),
        direction=Direction(document["direction"]),
        colour=Colour(document["colour"]),
        original_number=document.get("original_number"),
        entry_index=index,
    )


def document_of(writing: Writing) -> dict[str, Any]:
    assert writing.number is not None and writing.seller is not None  # a restore's
    return invoice_document(
        number=writing.number,
        kind=writing.kind,
        colour=writing.colour,
        direction=writing.direction,
        issued_on=writing.issued_on,
        seller_name=writing.seller[0],
        seller_tax_id=writing.seller[1],
        buyer=writing.buyer,
        sealed=writing.sealed,
        lines=writing.lines,
        original_number=writing.original_number,
        remark=writing.remark,
    )
