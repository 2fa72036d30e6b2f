"""The address book's sensitive party data, encrypted like an invoice's (docs/spec/security.md).

A buyer's address, phone, bank, account and e-mail, and an individual's ID number, are stored only as
AES-GCM ciphertexts (:mod:`fapiao.core.fieldcrypt`, keys from :mod:`fapiao.platform.datakeys`), each
bound to ``(merchant id, "catalogue_buyer", <field>, row uid, key version)``.  What stays plain:
the name, an organisation's tax ID, the masked forms lists show, and the keyed blind index of
the tax ID that finds duplicates and exact searches.  Plaintext exists only in memory: when an
entry is saved, and when it is revealed (to change it, or to fill an invoice) — both audited.

A batch row's invoice body (a spreadsheet row waiting to be issued, buyer details and all) is
kept the same way: one ciphertext of its JSON, bound to ``(merchant id, "catalogue_batchrow",
"payload", "<batch id>:<row>")``, dropped once the row is issued or has failed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from fapiao.catalogue.models import BatchRow, Buyer
from fapiao.core.fieldcrypt import FieldContext, Keyring
from fapiao.core.identifiers import TaxIdKind, holds_resident_id
from fapiao.core.masking import mask
from fapiao.platform.blind_index import tax_id_index
from fapiao.platform.datakeys import keyring, rotate_rows

TABLE = "catalogue_buyer"
BATCH_TABLE = "catalogue_batchrow"
TEXT_FIELDS = ("address", "phone", "bank", "bank_account", "email")
SECRET_FIELDS = ("tax_id", *TEXT_FIELDS)  # tax_id: an individual's ID number only


def _context(merchant_id: int, uid: uuid.UUID | str, name: str) -> FieldContext:
    return FieldContext(merchant_id=merchant_id, table=TABLE, field=name, row=str(uid))


def columns(*, merchant_id: int, uid: uuid.UUID, fields: dict[str, str]) -> dict[str, Any]:
    """The model columns for checked plaintext ``fields`` (name, tax_id, tax_id_kind, address, …)."""
    ring = keyring()
    kind = fields.get("tax_id_kind", "")
    individual = bool(kind) and holds_resident_id(TaxIdKind(kind))  # a person's ID number in it
    found: dict[str, Any] = {
        "name": fields["name"],
        "tax_id": "" if individual else fields.get("tax_id", ""),
        "tax_id_kind": fields.get("tax_id_kind", ""),
        "tax_id_index": tax_id_index(fields.get("tax_id", ""), ring),
    }
    masked: dict[str, str] = {}
    for name in SECRET_FIELDS:
        value = fields.get(name, "")
        secret = bool(value) and (name != "tax_id" or individual)
        found[f"{name}_enc"] = ring.encrypt(value, _context(merchant_id, uid, name)) if secret else None
        if secret:
            masked[name] = mask_email(value) if name == "email" else mask(value)
    found["masked"] = masked
    found["data_key_version"] = ring.current if masked else None
    return found


def mask_email(address: str) -> str:
    """``zhang.san@example.com`` → ``z***@example.com``: enough to tell addresses apart."""
    local, _at, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def revealed_email(buyer: Any) -> str:
    """The entry's e-mail address in plaintext, to send an invoice to it ("" when it has none)."""
    if buyer.email_enc is None:
        return ""
    return keyring().decrypt_text(buyer.email_enc, _context(buyer.merchant_id, buyer.uid, "email"))


def masked(buyer: Any) -> dict[str, str]:
    """What lists and audit records show: no decryption."""
    shown = dict(buyer.masked or {})
    return {
        "name": buyer.name,
        "tax_id": shown.get("tax_id") or buyer.tax_id,
        **{name: shown.get(name, "") for name in TEXT_FIELDS},
    }


def revealed(buyer: Any) -> dict[str, str]:
    """Every field in plaintext: only for an audited reveal."""
    ring = keyring()
    found = {"name": buyer.name, "tax_id": buyer.tax_id}
    for name in SECRET_FIELDS:
        blob = getattr(buyer, f"{name}_enc")
        if blob is not None:
            found[name] = ring.decrypt_text(blob, _context(buyer.merchant_id, buyer.uid, name))
        else:
            found.setdefault(name, "")
    return found


def rotate_address_book(batch_size: int, progress: Callable[[int, int], None]) -> int:
    """Every entry not yet under the current data key, re-encrypted (``fapiao keys rotate-data``)."""

    columns = [f"{name}_enc" for name in SECRET_FIELDS]
    return rotate_rows(Buyer, columns, _reencrypt, batch_size=batch_size, progress=progress)


def rotate_batch_rows(batch_size: int, progress: Callable[[int, int], None]) -> int:
    """Every batch row still waiting with its body under an older data key, re-encrypted."""

    return rotate_rows(
        BatchRow, ["payload_enc"], _reencrypt_payload, batch_size=batch_size, progress=progress
    )


# --- batch rows: a spreadsheet row's API body waits encrypted until it is issued ---------------------


def _payload_context(merchant_id: int, batch_id: int, row_no: int) -> FieldContext:
    return FieldContext(
        merchant_id=merchant_id, table=BATCH_TABLE, field="payload", row=f"{batch_id}:{row_no}"
    )


def sealed_payload(
    *, merchant_id: int, batch_id: int, row_no: int, payload: dict[str, Any]
) -> dict[str, Any]:
    """The columns that keep a batch row's invoice body (buyer address, ID number, …) until it is
    issued: one ciphertext of its JSON, never the plaintext."""
    ring = keyring()
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    context = _payload_context(merchant_id, batch_id, row_no)
    return {"payload_enc": ring.encrypt(text, context), "data_key_version": ring.current}


def opened_payload(row: Any) -> dict[str, Any]:
    """A batch row's invoice body in plaintext, to issue it ({} once issued or failed)."""
    if row.payload_enc is None:
        return {}
    text = keyring().decrypt_text(
        row.payload_enc, _payload_context(row.merchant_id, row.batch_id, row.row_no)
    )
    payload: dict[str, Any] = json.loads(text)
    return payload


def _reencrypt_payload(row: Any, ring: Keyring) -> None:
    context = _payload_context(row.merchant_id, row.batch_id, row.row_no)
    row.payload_enc = ring.encrypt(ring.decrypt(row.payload_enc, context), context)
    row.data_key_version = ring.current


def _reencrypt(buyer: Any, ring: Keyring) -> None:
    for name in SECRET_FIELDS:
        blob = getattr(buyer, f"{name}_enc")
        if blob is not None:
            context = _context(buyer.merchant_id, buyer.uid, name)
            setattr(buyer, f"{name}_enc", ring.encrypt(ring.decrypt(blob, context), context))
    buyer.data_key_version = ring.current
