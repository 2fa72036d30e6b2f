"""Encrypting, masking, revealing and re-keying an invoice's sensitive buyer data (docs/spec/security.md).

What is encrypted (AES-GCM, :mod:`fapiao.core.fieldcrypt`, keys from :mod:`fapiao.platform.datakeys`):
the buyer's address, phone, bank and account, an individual's ID number (``resident_id``), and
the salt of the ledger's ``buyer.sealed`` commitment.  Each value is bound to
``(merchant id, "invoices_invoice", "buyer_<field>", row uid, key version)``.

What stays plain: the buyer's name, an organisation's tax ID (a public business identifier), the
masked forms (``138****5678``) lists and exports show, and the keyed blind index of every buyer
tax ID, which exact searches match.  Plaintext exists only in memory: when an invoice is issued,
revealed (audited) or verified against its ledger entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fapiao.core.fieldcrypt import FieldContext, Keyring
from fapiao.core.identifiers import TaxId, TaxIdKind, holds_resident_id
from fapiao.core.invoice import Buyer
from fapiao.core.masking import mask
from fapiao.invoices.models import Invoice
from fapiao.platform.blind_index import tax_id_index
from fapiao.platform.datakeys import keyring, rotate_rows

TABLE = "invoices_invoice"
TEXT_FIELDS = ("address", "phone", "bank", "bank_account")
ENCRYPTED_COLUMNS = (
    "buyer_tax_id_enc",
    "buyer_address_enc",
    "buyer_phone_enc",
    "buyer_bank_enc",
    "buyer_bank_account_enc",
    "buyer_seal_salt_enc",
)


def _context(merchant_id: int, uid: uuid.UUID | str, name: str) -> FieldContext:
    return FieldContext(merchant_id=merchant_id, table=TABLE, field=f"buyer_{name}", row=str(uid))


def buyer_columns(*, merchant_id: int, uid: uuid.UUID, buyer: Buyer, salt: bytes | None) -> dict[str, Any]:
    """The Invoice columns holding ``buyer`` (and the seal salt): encrypted, masked, indexed."""
    ring = keyring()
    tax_id = buyer.tax_id
    individual = tax_id is not None and holds_resident_id(tax_id.kind)  # a person's ID in it
    masked: dict[str, str] = {}
    columns: dict[str, Any] = {
        "buyer_name": buyer.name,
        "buyer_tax_id": tax_id.value if tax_id is not None and not individual else "",
        "buyer_tax_id_kind": tax_id.kind.value if tax_id is not None else "",
        "buyer_tax_id_index": tax_id_index(tax_id.value, ring) if tax_id is not None else "",
        "buyer_tax_id_enc": None,
        "buyer_seal_salt_enc": None,
    }
    if individual and tax_id is not None:
        columns["buyer_tax_id_enc"] = ring.encrypt(tax_id.value, _context(merchant_id, uid, "tax_id"))
        masked["tax_id"] = mask(tax_id.value)
    for name in TEXT_FIELDS:
        value: str = getattr(buyer, name)
        columns[f"buyer_{name}_enc"] = (
            ring.encrypt(value, _context(merchant_id, uid, name)) if value else None
        )
        if value:
            masked[name] = mask(value)
    if salt:
        columns["buyer_seal_salt_enc"] = ring.encrypt(salt, _context(merchant_id, uid, "seal_salt"))
    encrypted = any(columns[column] is not None for column in ENCRYPTED_COLUMNS)
    columns["buyer_masked"] = masked
    columns["data_key_version"] = ring.current if encrypted else None
    return columns


def _decrypt(invoice: Invoice, name: str, ring: Keyring) -> bytes | None:
    blob = getattr(invoice, f"buyer_{name}_enc")
    if blob is None:
        return None
    return ring.decrypt(blob, _context(invoice.merchant_id, invoice.uid, name))


def reveal_buyer(invoice: Invoice) -> Buyer:
    """The buyer with every sensitive field decrypted (DecryptionError when one was tampered with)."""
    ring = keyring()
    texts = {name: (_decrypt(invoice, name, ring) or b"").decode() for name in TEXT_FIELDS}
    tax_id = None
    if invoice.buyer_tax_id_kind:
        kind = TaxIdKind(invoice.buyer_tax_id_kind)
        secret = _decrypt(invoice, "tax_id", ring)
        tax_id = TaxId(secret.decode() if secret is not None else invoice.buyer_tax_id, kind)
    return Buyer(name=invoice.buyer_name, tax_id=tax_id, **texts)


def seal_salt(invoice: Invoice) -> bytes | None:
    """The salt of the ledger's ``buyer.sealed`` commitment, decrypted."""
    return _decrypt(invoice, "seal_salt", keyring())


def masked_buyer(invoice: Invoice) -> dict[str, Any]:
    """The buyer as lists, exports and unrevealed API answers show it: no decryption."""
    masked = invoice.buyer_masked or {}
    return {
        "name": invoice.buyer_name,
        "tax_id": masked.get("tax_id") or invoice.buyer_tax_id or None,
        "address": masked.get("address", ""),
        "phone": masked.get("phone", ""),
        "bank": masked.get("bank", ""),
        "bank_account": masked.get("bank_account", ""),
    }


def revealed_buyer(invoice: Invoice) -> dict[str, Any]:
    """The buyer in plaintext: only for a permitted, audited reveal."""
    buyer = reveal_buyer(invoice)
    return {
        "name": buyer.name,
        "tax_id": buyer.tax_id.value if buyer.tax_id else None,
        "address": buyer.address,
        "phone": buyer.phone,
        "bank": buyer.bank,
        "bank_account": buyer.bank_account,
    }


def revealed_fields(invoice: Invoice) -> list[str]:
    """Which sensitive fields a reveal of ``invoice`` shows (for the audit record)."""
    names = [name for name in ("tax_id", *TEXT_FIELDS) if getattr(invoice, f"buyer_{name}_enc") is not None]
    return names


# --- Rotation -------------------------------------------------------------------------------------


def _reencrypt(invoice: Invoice, ring: Keyring) -> None:
    for column in ENCRYPTED_COLUMNS:
        name = column.removeprefix("buyer_").removesuffix("_enc")
        blob = getattr(invoice, column)
        if blob is not None:
            context = _context(invoice.merchant_id, invoice.uid, name)
            setattr(invoice, column, ring.encrypt(ring.decrypt(blob, context), context))
    invoice.data_key_version = ring.current


def rotate_invoices(batch_size: int, progress: Callable[[int, int], None]) -> int:
    """Every invoice not yet under the current data key, re-encrypted (``fapiao keys rotate-data``)."""
    return rotate_rows(
        Invoice,
        ENCRYPTED_COLUMNS,
        _reencrypt,
        batch_size=batch_size,
        progress=progress,
        only=("merchant_id", "uid", *ENCRYPTED_COLUMNS),
    )
