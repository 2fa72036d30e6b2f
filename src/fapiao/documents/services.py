"""Downloads of an invoice's documents, always through the acting user's scope and audited when
they show the buyer's personal data.

Who gets which copy: the document as handed to the buyer is the default.  When it prints the
buyer's personal data (an individual's ID number), handing it to one of the merchant's users is
a reveal: it needs the permission to reveal, and it is recorded in the audit trail before the
bytes leave (``invoice.document.reveal``).  Users without that permission (staff) get the
masked copy; anyone may ask for it (``masked=True``) and nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, may
from fapiao.audit.services import record
from fapiao.documents.models import DocumentKind
from fapiao.documents.store import StoredDocument, stored
from fapiao.invoices.models import Invoice


def document_for_user(*, user: User, invoice: Invoice, kind: str, masked: bool = False) -> StoredDocument:
    """One document of an invoice the user can see (the selector decided that); reveals audited."""
    masked = masked or not may(user, Action.REVEAL_SENSITIVE)
    document = stored(invoice, kind, masked=masked)
    if document.reveals:
        record_reveal(user=user, invoices=[invoice], kinds=[kind])
    return document


def record_reveal(*, user: User, invoices: Iterable[Invoice], kinds: Iterable[str]) -> None:
    """One audit record per invoice whose document with personal data was handed to ``user``."""
    for invoice in invoices:
        record(
            actor=user,
            action="invoice.document.reveal",
            target=invoice,
            merchant=invoice.merchant,
            after={"documents": sorted(set(kinds)), "fields": ["tax_id"]},
        )


ATTACHED = (DocumentKind.INVOICE_PDF, DocumentKind.INVOICE_XML, DocumentKind.RECEIPT_PDF)
