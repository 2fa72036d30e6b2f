"""Reason templates a reviewer picks from (or writes their own), and 补正通知 item templates."""

from __future__ import annotations

from django.utils.translation import gettext_noop

REASON_MAX = 2000
"""The longest reason a decision, a withdrawal or a reopening may give, in characters."""

REJECT_REASONS: dict[str, str] = {
    "not_ours": gettext_noop("The invoice was not issued through this system."),
    "evidence_insufficient": gettext_noop("The evidence does not establish the invoice's details."),
    "claim_mismatch": gettext_noop("The evidence contradicts the claimed number, date, buyer or amount."),
    "already_present": gettext_noop("The invoice is present in the system; no recovery is needed."),
    "duplicate_case": gettext_noop("Another case already covers this invoice."),
    "never_issued": gettext_noop(
        "The claimed number was never handed out by any number segment, so no invoice was ever issued "
        "under it. Please check the number on your records (the stub, the e-invoice file or the system "
        "receipt) and submit again with the right one, or ask for a re-issue under a new number."
    ),
    "remedy_impossible": gettext_noop(
        "The approved remedy cannot be carried out for this invoice; see the reviewer's note below."
    ),
}
APPROVE_REASONS: dict[str, str] = {
    "receipt_verified": gettext_noop("The system receipt verifies and the ledger holds the invoice."),
    "evidence_consistent": gettext_noop("Contract, payment and stub agree with the claim."),
    "einvoice_matches": gettext_noop("The e-invoice file matches the claim field by field."),
}
REQUEST_ITEMS: dict[str, str] = {
    "contract": gettext_noop("A copy of the contract"),
    "bank_statement": gettext_noop("The bank statement showing the payment"),
    "stub_copy": gettext_noop("A copy of the stub or the bookkeeping copy"),
    "e_invoice": gettext_noop("The e-invoice file (XML, OFD or PDF)"),
    "system_receipt": gettext_noop("The system receipt (JSON) you received when the invoice was issued"),
    "clearer_scan": gettext_noop("A clearer scan of the document"),
    # What a remedy writes is the claim: one lacking these can't be restored or re-issued.
    "complete_claim": gettext_noop(
        "The complete claim: the invoice kind, and its lines or its amount without tax, tax and rate"
    ),
}
