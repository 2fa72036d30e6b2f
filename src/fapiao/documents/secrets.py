"""The documents' and deliveries' personal data, encrypted like an invoice's (docs/spec/security.md).

A document copy that shows the buyer's personal data and a delivery's e-mail address are stored
only as AES-GCM ciphertexts (:mod:`fapiao.core.fieldcrypt`, keys from
:mod:`fapiao.platform.datakeys`), bound to ``(merchant id, table, field, row uid, key version)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fapiao.core.fieldcrypt import FieldContext, Keyring
from fapiao.documents.models import Delivery, Document
from fapiao.platform.datakeys import keyring, rotate_rows

DOCUMENT_TABLE = "documents_document"
DELIVERY_TABLE = "documents_delivery"


def _document_context(merchant_id: int, invoice_uid: Any, kind: str, variant: str) -> FieldContext:
    row = f"{invoice_uid}:{kind}:{variant}"
    return FieldContext(merchant_id=merchant_id, table=DOCUMENT_TABLE, field="content", row=row)


def _delivery_context(merchant_id: int, uid: Any) -> FieldContext:
    return FieldContext(merchant_id=merchant_id, table=DELIVERY_TABLE, field="recipient", row=str(uid))


def seal_content(
    *, merchant_id: int, invoice_uid: Any, kind: str, variant: str, data: bytes
) -> dict[str, Any]:
    ring = keyring()
    context = _document_context(merchant_id, invoice_uid, kind, variant)
    return {"content_enc": ring.encrypt(data, context), "data_key_version": ring.current}


def open_content(document: Any) -> bytes:
    context = _document_context(document.merchant_id, document.invoice.uid, document.kind, document.variant)
    return keyring().decrypt(document.content_enc, context)


def seal_recipient(*, merchant_id: int, uid: Any, address: str) -> dict[str, Any]:
    ring = keyring()
    return {
        "recipient_enc": ring.encrypt(address, _delivery_context(merchant_id, uid)),
        "data_key_version": ring.current,
    }


def open_recipient(delivery: Any) -> str:
    return keyring().decrypt_text(
        delivery.recipient_enc, _delivery_context(delivery.merchant_id, delivery.uid)
    )


def mask_address(address: str) -> str:
    """``zhang.san@example.com`` → ``z*******@example.com``: enough to tell addresses apart."""
    local, _at, domain = address.rpartition("@")
    return f"{local[:1]}{'*' * max(len(local) - 1, 3)}@{domain}"


def _reencrypt_document(document: Any, ring: Keyring) -> None:
    context = _document_context(document.merchant_id, document.invoice.uid, document.kind, document.variant)
    document.content_enc = ring.encrypt(ring.decrypt(document.content_enc, context), context)
    document.data_key_version = ring.current


def _reencrypt_delivery(delivery: Any, ring: Keyring) -> None:
    context = _delivery_context(delivery.merchant_id, delivery.uid)
    delivery.recipient_enc = ring.encrypt(ring.decrypt(delivery.recipient_enc, context), context)
    delivery.data_key_version = ring.current


def rotate_documents(batch_size: int, progress: Callable[[int, int], None]) -> int:
    """Every stored copy not yet under the current data key, re-encrypted (``fapiao keys rotate-data``)."""
    return rotate_rows(
        Document, ["content_enc"], _reencrypt_document, batch_size=batch_size, progress=progress
    )


def rotate_deliveries(batch_size: int, progress: Callable[[int, int], None]) -> int:
    """Every delivery address not yet under the current data key, re-encrypted."""
    return rotate_rows(
        Delivery, ["recipient_enc"], _reencrypt_delivery, batch_size=batch_size, progress=progress
    )
