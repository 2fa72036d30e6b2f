"""The submission receipt (受理回执) of a case, as a PDF in the active language.

It lists what was submitted at the latest submission: the claim and every file uploaded up to
that moment, each with its SHA-256, so the merchant can later prove what they handed in.
"""

from __future__ import annotations

from django.utils.translation import gettext, gettext_noop

from fapiao.audit.services import display_name
from fapiao.core.cases import CaseState
from fapiao.core.errors import ConflictError
from fapiao.core.money import format_money
from fapiao.recovery.labels import evidence_type_label
from fapiao.recovery.models import Case
from fapiao.recovery.notify import case_url
from fapiao.recovery.receipt_pdf import ReceiptEvidence, SubmissionReceipt, render_submission_receipt

LABELS = {
    "title": gettext_noop("Recovery case submission receipt"),
    "acceptance_no": gettext_noop("Acceptance number"),
    "merchant": gettext_noop("Merchant"),
    "merchant_uscc": gettext_noop("Unified social credit code"),
    "submitted_at": gettext_noop("Submitted at"),
    "submitted_by": gettext_noop("Submitted by"),
    "case_url": gettext_noop("Case address"),
    "timezone": gettext_noop("Beijing time"),
    "qr_caption": gettext_noop("Scan to follow the case"),
    "claim": gettext_noop("The claim"),
    "narrative": gettext_noop("What happened"),
    "evidence": gettext_noop("Evidence ({count} files)"),
    "col_no": gettext_noop("No."),
    "col_file": gettext_noop("File name / SHA-256"),
    "col_type": gettext_noop("Type"),
    "col_size": gettext_noop("Size"),
    "no_evidence": gettext_noop("No evidence was submitted."),
    "note": gettext_noop(
        "The system made this receipt when the case was submitted. The SHA-256 values prove the "
        "submitted files are unchanged; scan the QR code to follow the case."
    ),
    "page": gettext_noop("Page {page}"),
}


class NotSubmittedError(ConflictError):
    """The case has not been submitted yet, so it has no receipt."""

    code = "not_submitted"


def submission_receipt_pdf(case: Case) -> bytes:
    if not case.acceptance_no or case.submitted_at is None or case.state == CaseState.DRAFT:
        raise NotSubmittedError()
    files = case.evidence.filter(uploaded_at__lte=case.submitted_at).order_by("uploaded_at", "pk")
    claim_rows = [
        (gettext("Invoice number"), case.claimed_number),
        (gettext("Invoice date"), case.claimed_issued_on.isoformat()),
        (gettext("Buyer"), case.claimed_buyer_name),
        (gettext("Total with tax"), f"¥{format_money(case.claimed_total_with_tax)}"),
    ]
    tax_id = case.claimed_buyer_tax_id or case.claimed_buyer_tax_id_masked
    if tax_id:
        claim_rows.insert(3, (gettext("Buyer tax ID"), tax_id))
    receipt = SubmissionReceipt(
        acceptance_no=case.acceptance_no,
        merchant_name=case.merchant.name,
        merchant_uscc=case.merchant.uscc,
        submitted_at=case.submitted_at,
        submitted_by=display_name(case.submitted_by) if case.submitted_by else "",
        claim_rows=claim_rows,
        narrative=case.narrative,
        evidence=[
            ReceiptEvidence(
                name=f.filename, type_label=evidence_type_label(f.evidence_type), size=f.size, sha256=f.sha256
            )
            for f in files
        ],
        case_url=case_url(case),
        labels={key: gettext(msgid) for key, msgid in LABELS.items()},
    )
    return render_submission_receipt(receipt)
