"""Field encryption of sensitive party data and its keyed blind index (docs/spec/security.md).

**Ciphertext.**  AES-256-GCM with a fresh random 12-byte nonce for every value::

    version (1 byte, 0x01) ‖ key version (4 bytes, big-endian) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16)

**Associated data** binds the value to where it lives, so a ciphertext copied to another
row, field or merchant, or relabelled with another key version, fails to decrypt::

    "fapiao-field/1|<merchant id>|<table>|<field>|<row UUID>|<key version>"   (UTF-8)

**Blind index.**  ``HMAC-SHA256(index key, "fapiao-index/1|<purpose>|<value>")`` as hex,
truncated to 32 characters (128 bits): equal values give equal indexes, so an exact search
works, but the index reveals nothing without the index key, which is separate from the
encryption keys and is not rotated with them.

Pure Python over ``cryptography``; key custody (files, environment) is
:mod:`fapiao.platform.datakeys`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fapiao.core.errors import FapiaoError

__all__ = [
    "FORMAT_VERSION",
    "INDEX_HEX_LENGTH",
    "KEY_BYTES",
    "DecryptionError",
    "FieldContext",
    "Keyring",
    "associated_data",
    "key_version_of",
]

FORMAT_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
INDEX_HEX_LENGTH = 32
_HEADER = struct.Struct(">BI")
_MIN_LENGTH = _HEADER.size + NONCE_BYTES + TAG_BYTES


class DecryptionError(FapiaoError):
    """An encrypted field cannot be decrypted: it was altered, moved, or its key is missing."""

    status = 500
    code = "decryption_failed"


@dataclass(frozen=True)
class FieldContext:
    """Where a value lives: bound into the associated data of its ciphertext."""

    merchant_id: int
    table: str
    field: str
    row: str  # the row's UUID in its canonical text form

    def __post_init__(self) -> None:
        for part in (self.table, self.field, self.row):
            if not part or "|" in part:
                raise ValueError("table, field and row must be non-empty and contain no '|'")


def associated_data(context: FieldContext, key_version: int) -> bytes:
    return (
        f"fapiao-field/{FORMAT_VERSION}|{context.merchant_id}|{context.table}|{context.field}|"
        f"{context.row}|{key_version}"
    ).encode()


def key_version_of(blob: bytes) -> int:
    """The key version a ciphertext was made with (no key needed)."""
    if len(blob) < _MIN_LENGTH:
        raise DecryptionError("An encrypted field is too short to be a ciphertext.")
    version, key_version = _HEADER.unpack_from(blob)
    if version != FORMAT_VERSION:
        raise DecryptionError("An encrypted field has unknown format version {version}.", version=version)
    return int(key_version)


class Keyring:
    """The data keys by version (``current`` encrypts), and the blind-index key."""

    def __init__(self, keys: Mapping[int, bytes], *, current: int, index_key: bytes) -> None:
        if current not in keys:
            raise ValueError("the current key version is not in the keyring")
        for version, key in keys.items():
            if not 0 < version < 2**32 or len(key) != KEY_BYTES:
                raise ValueError("data keys are 32 bytes with versions from 1")
        if len(index_key) != KEY_BYTES:
            raise ValueError("the index key is 32 bytes")
        self._ciphers = {version: AESGCM(key) for version, key in keys.items()}
        self.current = current
        self._index_key = index_key

    @property
    def versions(self) -> list[int]:
        return sorted(self._ciphers)

    def encrypt(self, plaintext: str | bytes, context: FieldContext) -> bytes:
        """A fresh ciphertext of ``plaintext`` (text is UTF-8) under the current key."""
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, data, associated_data(context, self.current))
        return _HEADER.pack(FORMAT_VERSION, self.current) + nonce + sealed

    def decrypt(self, blob: bytes | memoryview, context: FieldContext) -> bytes:
        data = bytes(blob)
        key_version = key_version_of(data)
        cipher = self._ciphers.get(key_version)
        if cipher is None:
            raise DecryptionError(
                "Data key version {version} is not in the keyring; restore it from the key backup.",
                version=key_version,
            )
        nonce = data[_HEADER.size : _HEADER.size + NONCE_BYTES]
        try:
            return cipher.decrypt(
                nonce, data[_HEADER.size + NONCE_BYTES :], associated_data(context, key_version)
            )
        except InvalidTag:
            raise DecryptionError() from None

    def decrypt_text(self, blob: bytes | memoryview, context: FieldContext) -> str:
        try:
            return self.decrypt(blob, context).decode()
        except UnicodeDecodeError:
            raise DecryptionError() from None

    def blind_index(self, value: str, *, purpose: str) -> str:
        """The keyed blind index of ``value`` (already normalised by the caller)."""
        message = f"fapiao-index/{FORMAT_VERSION}|{purpose}|{value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()[:INDEX_HEX_LENGTH]

    def keyed_digest(self, data: bytes, *, purpose: str) -> str:
        """Full HMAC-SHA256 (hex) of ``data`` under the index key, for fingerprints that must not be
        brute-forced from a database copy (e.g. a request body with a phone number in it)."""
        prefix = f"fapiao-digest/{FORMAT_VERSION}|{purpose}|".encode()
        return hmac.new(self._index_key, prefix + data, hashlib.sha256).hexdigest()
