"""Signed documents: a JSON body signed with the ledger's key (Ed25519 over its RFC 8785 bytes).

The backup manifest (``fapiao-backup/1``, :mod:`fapiao.core.backup`) and the import manifest
(``fapiao-import/1``) share this shape::

    {"manifest": {...,"format": "<name>/1"}, "key_id": "<hex>", "signature": "<base64>"}

:func:`check_signed` says why a document is refused, as a value the caller turns into its own
error: ``not_signed`` (not this shape or not this format), ``unknown_key``, ``bad_signature``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fapiao.core.canonical import canonical_bytes
from fapiao.core.errors import FapiaoError
from fapiao.core.signing import KeyRegistry, SigningKey, b64decode_strict, b64encode

Refusal = Literal["not_signed", "unknown_key", "bad_signature"]


@dataclass(frozen=True)
class Checked:
    """A checked document: its manifest when the signature verifies, else why it does not."""

    manifest: dict[str, Any] | None
    refusal: Refusal | None = None
    key_id: str = ""


def sign_document(manifest: Mapping[str, Any], key: SigningKey, *, format_name: str) -> dict[str, Any]:
    """The signed document of ``manifest``, whose ``format`` must be ``format_name``."""
    if manifest.get("format") != format_name:
        raise ValueError(f"a manifest's format is {format_name}")
    signature = b64encode(key.sign(canonical_bytes(dict(manifest))))
    return {"manifest": dict(manifest), "key_id": key.key_id, "signature": signature}


def check_signed(document: Any, keys: KeyRegistry, *, format_name: str) -> Checked:
    """The manifest of ``document`` if it is a ``format_name`` manifest signed by a known key."""
    if not isinstance(document, dict) or not isinstance(document.get("manifest"), dict):
        return Checked(None, "not_signed")
    manifest = document["manifest"]
    if manifest.get("format") != format_name:
        return Checked(None, "not_signed")
    key_id = str(document.get("key_id", ""))
    record = keys.get(key_id)
    if record is None:
        return Checked(None, "unknown_key", key_id)
    try:
        signature = b64decode_strict(str(document.get("signature", "")))
        Ed25519PublicKey.from_public_bytes(record.public_raw).verify(signature, canonical_bytes(manifest))
    except (InvalidSignature, FapiaoError, ValueError, TypeError):
        return Checked(None, "bad_signature", key_id)
    return Checked(dict(manifest), None, key_id)
