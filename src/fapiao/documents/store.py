"""Render once, keep forever: every download of a document returns the bytes first rendered.

A copy without personal data goes into the content-addressed blob store (``sha256/ab/cd/…``,
re-hashed on every read); a copy with it is kept encrypted in its row.  Either way the row's
``sha256`` is checked on every read, so a copy altered on disk or in the database is refused
rather than handed out.  Two requests rendering the same document at once both render, one row
wins the unique key, and both answer with the winner's bytes.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from fapiao.core.errors import FapiaoError
from fapiao.documents import rendering, secrets
from fapiao.documents.models import Document, DocumentKind, Variant
from fapiao.invoices import findings
from fapiao.invoices.models import Invoice
from fapiao.recovery.storage import EvidenceMissingError, EvidenceTamperedError, open_blob, store_blob

log = logging.getLogger(__name__)


class DocumentDamagedError(FapiaoError):
    """A stored document no longer matches its fingerprint; the operator must look into it."""

    status = 500
    code = "document_damaged"


@dataclass(frozen=True)
class StoredDocument:
    kind: str
    variant: str
    sha256: str
    data: bytes
    reveals: bool  # shows the buyer's personal data
    name: str
    content_type: str


def variant_for(invoice: Invoice, kind: str, *, masked: bool) -> str:
    """Only an invoice PDF that prints personal data has a masked copy besides the buyer's."""
    personal = kind == DocumentKind.INVOICE_PDF and rendering.holds_personal_data(invoice)
    return Variant.MASKED if masked and personal else Variant.BUYER


def _read(document: Document) -> bytes:
    try:
        data = secrets.open_content(document) if document.reveals else open_blob(document.sha256)
    except (EvidenceMissingError, EvidenceTamperedError):
        log.error(
            "document %s of invoice %s is missing or altered in the blob store",
            document.pk,
            document.invoice_id,
        )
        raise DocumentDamagedError() from None
    if hashlib.sha256(data).hexdigest() != document.sha256:
        log.error("document %s of invoice %s no longer matches its SHA-256", document.pk, document.invoice_id)
        raise DocumentDamagedError()
    return data


def _create(invoice: Invoice, kind: str, variant: str) -> Document:
    receipt = stored(invoice, DocumentKind.RECEIPT_JSON).data if kind == DocumentKind.RECEIPT_PDF else None
    data = rendering.render(invoice, kind, variant, receipt=receipt)
    reveals = (
        kind == DocumentKind.INVOICE_PDF
        and variant == Variant.BUYER
        and rendering.holds_personal_data(invoice)
    )
    digest = hashlib.sha256(data).hexdigest()
    columns = {}
    if reveals:
        columns = secrets.seal_content(
            merchant_id=invoice.merchant_id, invoice_uid=invoice.uid, kind=kind, variant=variant, data=data
        )
    else:
        store_blob(data)
    try:
        with transaction.atomic():
            return Document.objects.create(
                merchant_id=invoice.merchant_id,
                invoice=invoice,
                kind=kind,
                variant=variant,
                sha256=digest,
                size=len(data),
                reveals=reveals,
                **columns,
            )
    except IntegrityError:  # another request stored it first: theirs is the document
        return Document.objects.get(
            merchant_id=invoice.merchant_id, invoice=invoice, kind=kind, variant=variant
        )


def stored(invoice: Invoice, kind: str, *, masked: bool = False) -> StoredDocument:
    """The document, rendered and stored on first use.  No permission check: callers do that."""
    variant = variant_for(invoice, kind, masked=masked)
    flag = findings.active_for_merchant(invoice.merchant_id).filter(number=invoice.number).first()
    if flag is not None and kind == DocumentKind.INVOICE_PDF:
        # Verify found the row altered: a marked copy, rendered each time and never stored, so the
        # stored file stays the clean one once the row is repaired.
        data = rendering.render(invoice, kind, variant, ledger_flag=findings.KIND_TITLES[flag.kind])
        return StoredDocument(
            kind=kind,
            variant=variant,
            sha256=hashlib.sha256(data).hexdigest(),
            data=data,
            reveals=variant == Variant.BUYER and rendering.holds_personal_data(invoice),
            name=rendering.file_name(invoice, kind),
            content_type=rendering.CONTENT_TYPES[DocumentKind(kind)],
        )
    document = Document.objects.filter(
        merchant_id=invoice.merchant_id, invoice=invoice, kind=kind, variant=variant
    ).first() or _create(invoice, kind, variant)
    document.invoice = invoice
    return StoredDocument(
        kind=kind,
        variant=variant,
        sha256=document.sha256,
        data=_read(document),
        reveals=document.reveals,
        name=rendering.file_name(invoice, kind),
        content_type=rendering.CONTENT_TYPES[DocumentKind(kind)],
    )
