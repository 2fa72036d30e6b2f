"""The claim on a case: what the merchant says is missing, as the case row stores it.

A buyer's tax ID that is an individual's resident ID is sealed (encrypted under the merchant's
data key, shown masked); an organisation's is kept as it is.  Only users who may see the case
read the claim in full (:func:`claimed_buyer_tax_id`, :func:`case_fields`).
"""

from __future__ import annotations

from typing import Any

from fapiao.core.case_claim import Claim
from fapiao.core.fieldcrypt import FieldContext
from fapiao.core.identifiers import holds_resident_id
from fapiao.core.masking import mask
from fapiao.platform.datakeys import keyring
from fapiao.recovery.models import Case


def tax_id_context(case: Case) -> FieldContext:
    return FieldContext(
        merchant_id=case.merchant_id, table="recovery_case", field="claimed_buyer_tax_id", row=str(case.uid)
    )


def apply_claim(case: Case, claim: Claim) -> None:
    """Set the case's claim fields from a checked claim (the caller saves the row)."""
    case.claimed_number = claim.number
    case.claimed_issued_on = claim.issued_on
    case.claimed_kind = claim.kind.value if claim.kind else ""
    case.claimed_buyer_name = claim.buyer_name
    case.claimed_total_with_tax = claim.total_with_tax
    case.claimed_total_amount = claim.total_amount
    case.claimed_total_tax = claim.total_tax
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


def case_fields(case: Case) -> dict[str, Any]:
    """The claim as the edit form shows it (full buyer tax ID: only for users who may see the case)."""
    return {
        "number": case.claimed_number,
        "issued_on": case.claimed_issued_on.isoformat(),
        "kind": case.claimed_kind or None,
        "buyer": {"name": case.claimed_buyer_name, "tax_id": claimed_buyer_tax_id(case) or None},
        "total_with_tax": case.claimed_total_with_tax,
        "narrative": case.narrative,
    }
