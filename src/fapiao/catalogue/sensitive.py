"""The address book's sensitive party data, encrypted like an invoice's (DESIGN.md C8).

A buyer's address, phone, bank and account, and an individual's ID number, are stored only as
AES-GCM ciphertexts (:mod:`fapiao.core.fieldcrypt`, keys from :mod:`fapiao.ops.datakeys`), each
bound to ``(merchant id, "catalogue_buyer", <field>, row uid, key version)``.  What stays plain:
the name, an organisation's tax ID, the masked forms lists show, and the keyed blind index of
the tax ID that finds duplicates and exact searches.  Plaintext exists only in memory: when an
entry is saved, and when it is revealed (to change it, or to fill an invoice) — both audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.db import transaction

from fapiao.core.fieldcrypt import FieldContext, Keyring
from fapiao.core.masking import mask
from fapiao.invoices.sensitive import tax_id_index
from fapiao.ops.datakeys import keyring

TABLE = "catalogue_buyer"
TEXT_FIELDS = ("address", "phone", "bank", "bank_account")
SECRET_FIELDS = ("tax_id", *TEXT_FIELDS)  # tax_id: an individual's ID number only


def _context(merchant_id: int, uid: uuid.UUID | str, name: str) -> FieldContext:
    return FieldContext(merchant_id=merchant_id, table=TABLE, field=name, row=str(uid))


def columns(*, merchant_id: int, uid: uuid.UUID, fields: dict[str, str]) -> dict[str, Any]:
    """The model columns for checked plaintext ``fields`` (name, tax_id, tax_id_kind, address, …)."""
    ring = keyring()
    individual = fields.get("tax_id_kind") == "resident_id"
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
            masked[name] = mask(value)
    found["masked"] = masked
    found["data_key_version"] = ring.current if masked else None
    return found


def masked(buyer: Any) -> dict[str, str]:
    """What lists and audit records show: no decryption."""
    shown = dict(buyer.masked or {})
    return {
        "name": buyer.name,
        "tax_id": shown.get("tax_id", "") if buyer.tax_id_kind == "resident_id" else buyer.tax_id,
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


def rotate_address_book(*, batch_size: int = 500, progress: Callable[[int, int], None] | None = None) -> int:
    """Re-encrypt every entry not yet under the current data key; resumable (a batch per transaction).

    For ``fapiao keys rotate-data``, next to the invoices.  Returns how many entries changed.
    """
    from fapiao.catalogue.models import Buyer

    ring = keyring()
    pending = Buyer.objects.filter(data_key_version__isnull=False).exclude(data_key_version=ring.current)
    remaining = pending.count()
    done, last_pk = 0, 0
    while True:
        with transaction.atomic():
            batch = list(pending.filter(pk__gt=last_pk).order_by("pk")[:batch_size])
            if not batch:
                break
            for buyer in batch:
                _reencrypt(buyer, ring)
            Buyer.objects.bulk_update(batch, [*(f"{n}_enc" for n in SECRET_FIELDS), "data_key_version"])
        last_pk = batch[-1].pk
        done += len(batch)
        remaining = max(remaining - len(batch), 0)
        if progress is not None:
            progress(done, remaining)
    return done


def _reencrypt(buyer: Any, ring: Keyring) -> None:
    for name in SECRET_FIELDS:
        blob = getattr(buyer, f"{name}_enc")
        if blob is not None:
            context = _context(buyer.merchant_id, buyer.uid, name)
            setattr(buyer, f"{name}_enc", ring.encrypt(ring.decrypt(blob, context), context))
    buyer.data_key_version = ring.current
