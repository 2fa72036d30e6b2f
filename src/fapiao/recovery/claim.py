"""The claim on a case: what the merchant says is missing, as the case row stores it, and back.

The claim is the one source of what a remedy writes when the ledger has no entry for the number
(docs/spec/recovery.md): :func:`stored_claim` parses it again exactly as it was accepted, and
:func:`remedy_claim` gives it in the form :func:`fapiao.core.claims.remedy_differences` compares.
A buyer's tax ID that is an individual's resident ID is sealed (encrypted under the merchant's
data key, shown masked) and decrypted only here; an organisation's is kept as it is.  Only users
who may see the case read the claim in full (:func:`claimed_buyer_tax_id`, :func:`case_fields`).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from fapiao.core.case_claim import Claim, ClaimIncompleteError, claim_line_body, parse_claim
from fapiao.core.errors import FieldError, ValidationFailed
from fapiao.core.fieldcrypt import FieldContext
from fapiao.core.identifiers import holds_resident_id
from fapiao.core.masking import mask
from fapiao.core.money import format_money
from fapiao.platform.datakeys import keyring
from fapiao.recovery.models import Case


def tax_id_context(case: Case) -> FieldContext:
    return FieldContext(
        merchant_id=case.merchant_id, table="recovery_case", field="claimed_buyer_tax_id", row=str(case.uid)
    )


def apply_claim(case: Case, claim: Claim) -> None:
    """Store ``claim`` on ``case`` (not saved)."""
    case.claimed_number = claim.number
    case.claimed_issued_on = claim.issued_on
    case.claimed_kind = claim.kind.value if claim.kind else ""
    case.claimed_buyer_name = claim.buyer_name
    case.claimed_total_with_tax = claim.total_with_tax
    case.claimed_total_amount = claim.total_amount
    case.claimed_total_tax = claim.total_tax
    case.claimed_tax_rate = claim.tax_rate.code if claim.tax_rate else ""
    case.claimed_lines = [claim_line_body(line) for line in claim.lines]
    case.narrative = claim.narrative
    tax_id = claim.buyer_tax_id
    case.claimed_buyer_tax_id = case.claimed_buyer_tax_id_masked = ""
    case.claimed_buyer_tax_id_enc = None
    if tax_id is not None and holds_resident_id(tax_id.kind):
        case.claimed_buyer_tax_id_enc = keyring().encrypt(tax_id.value, tax_id_context(case))
        case.claimed_buyer_tax_id_masked = mask(tax_id.value)
    elif tax_id is not None:
        case.claimed_buyer_tax_id = tax_id.value


def claimed_buyer_tax_id(case: Case) -> str:
    """The claim's buyer tax ID in full (an individual's ID decrypted; only for who may see the case)."""
    if case.claimed_buyer_tax_id_enc:
        return keyring().decrypt(bytes(case.claimed_buyer_tax_id_enc), tax_id_context(case)).decode()
    return case.claimed_buyer_tax_id


def claim_body(case: Case) -> dict[str, Any]:
    """The claim as ``POST /api/v1/cases`` would carry it (the buyer's tax ID in full)."""
    body: dict[str, Any] = {
        "number": case.claimed_number,
        "issued_on": case.claimed_issued_on.isoformat(),
        "buyer": {"name": case.claimed_buyer_name},
        "total_with_tax": format_money(case.claimed_total_with_tax),
        "narrative": case.narrative,
    }
    tax_id = claimed_buyer_tax_id(case)
    if tax_id:
        body["buyer"]["tax_id"] = tax_id
    amount, tax = case.claimed_total_amount, case.claimed_total_tax
    optional = {
        "kind": case.claimed_kind,
        "total_amount": format_money(amount) if amount is not None else "",
        "total_tax": format_money(tax) if tax is not None else "",
        "tax_rate": case.claimed_tax_rate,
        "lines": list(case.claimed_lines or []),
    }
    body.update({key: value for key, value in optional.items() if value})
    return body


def stored_claim(case: Case) -> Claim:
    """The case's claim, parsed again as it was accepted (a claim that no longer parses is incomplete)."""
    try:
        return parse_claim(claim_body(case), today=max(timezone.localdate(), case.claimed_issued_on))
    except ValidationFailed as failed:
        raise ClaimIncompleteError(
            [FieldError(f"claim.{e.field}", e.code, e.message, e.params) for e in failed.errors]
        ) from None


def claim_mapping(case: Case) -> dict[str, Any]:
    """The claim as :func:`fapiao.core.claims.compare_claim` reads it (evidence checks)."""
    claim: dict[str, Any] = {
        "number": case.claimed_number,
        "issued_on": case.claimed_issued_on.isoformat(),
        "seller_tax_id": case.merchant.uscc,  # the case is this merchant's: so must the invoice be
        "buyer_name": case.claimed_buyer_name,
        "total_with_tax_fen": case.claimed_total_with_tax,
    }
    tax_id = claimed_buyer_tax_id(case)
    if tax_id:
        claim["buyer_tax_id"] = tax_id
    if case.claimed_total_amount is not None:
        claim["total_amount_fen"] = case.claimed_total_amount
    if case.claimed_total_tax is not None:
        claim["total_tax_fen"] = case.claimed_total_tax
    return claim


def remedy_claim(case: Case) -> dict[str, Any]:
    """The claim as :func:`fapiao.core.claims.remedy_differences` compares a remedy's invoice with it."""
    claim = claim_mapping(case)
    claim["kind"] = case.claimed_kind
    claim["lines"] = list(case.claimed_lines or [])
    claim["tax_rate"] = case.claimed_tax_rate
    return claim


def case_fields(case: Case) -> dict[str, Any]:
    """The claim as the edit form shows it (full buyer tax ID: only for users who may see the case)."""
    return claim_body(case)
