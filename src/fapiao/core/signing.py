"""Ed25519 signed tree heads, key files and the public-key registry (docs/spec/ledger.md, docs/api.md).

A head is ``{"log","size","root","at","key_id"}``; its signature covers the RFC 8785
bytes of all five members.  ``key_id`` is the hex of the first 8 bytes of SHA-256 of
the raw 32-byte public key; base64 is standard with padding.

Imports only the standard library, ``cryptography`` and ``rfc8785``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fapiao.core.canonical import canonical_bytes, parse_stamp, utc_stamp
from fapiao.core.errors import FapiaoError, InvalidValueError

__all__ = [
    "HEAD_FIELDS",
    "KeyRecord",
    "KeyRegistry",
    "SigningKey",
    "b64decode_strict",
    "b64encode",
    "head_bytes",
    "key_id",
    "load_public_keys",
    "make_head",
    "read_private_key",
    "sign_head",
    "verify_head",
    "write_private_key",
]

HEAD_FIELDS = ("log", "size", "root", "at", "key_id")
KEY_STATUSES = ("active", "retired", "compromised")
KeyStatus = Literal["active", "retired", "compromised"]
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def b64encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: str) -> bytes:
    """Decode standard padded base64, refusing anything that does not re-encode identically."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeError, ValueError, AttributeError) as exc:
        raise InvalidValueError("Not valid base64.", code="bad_base64") from exc
    if b64encode(data) != text:
        raise InvalidValueError("Not canonical base64.", code="bad_base64")
    return data


def key_id(public_raw: bytes) -> str:
    """Hex of the first 8 bytes of SHA-256(raw 32-byte Ed25519 public key)."""
    if len(public_raw) != 32:
        raise InvalidValueError("An Ed25519 public key is 32 bytes.", code="bad_key")
    return hashlib.sha256(public_raw).digest()[:8].hex()


def make_head(*, log: str, size: int, root: bytes, at: datetime | str, key_id: str) -> dict[str, Any]:
    """A tree head dict in the API's member order (the root as base64)."""
    stamp = utc_stamp(at) if isinstance(at, datetime) else at
    parse_stamp(stamp)
    return {"log": log, "size": size, "root": b64encode(root), "at": stamp, "key_id": key_id}


def head_bytes(head: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of the five head members (the signed message); other members are ignored."""
    missing = [name for name in HEAD_FIELDS if name not in head]
    if missing:
        raise InvalidValueError("A tree head lacks {names}.", code="malformed", names=", ".join(missing))
    return canonical_bytes({name: head[name] for name in HEAD_FIELDS})


class SigningKey:
    """An Ed25519 private key with its raw public key and key id."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_raw: bytes = private.public_key().public_bytes(*_RAW)
        self.key_id: str = key_id(self.public_raw)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed32: bytes) -> SigningKey:
        if len(seed32) != 32:
            raise InvalidValueError("An Ed25519 seed is 32 bytes.", code="bad_key")
        return cls(Ed25519PrivateKey.from_private_bytes(seed32))

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._private

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"


def sign_head(head: Mapping[str, Any], key: SigningKey) -> str:
    """Base64 Ed25519 signature over :func:`head_bytes` (head)."""
    return b64encode(key.sign(head_bytes(head)))


def verify_head(head: Mapping[str, Any], signature_b64: str, public_raw: bytes) -> bool:
    """True iff ``signature_b64`` is a valid signature of ``head`` by ``public_raw``; never raises."""
    try:
        signature = b64decode_strict(signature_b64)
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, head_bytes(head))
    except (InvalidSignature, FapiaoError, ValueError, TypeError):
        return False
    return True


def write_private_key(path: str | os.PathLike[str], key: SigningKey) -> None:
    """Write ``key`` as unencrypted PKCS#8 PEM to a NEW file created with mode 0600."""
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_private_key(path: str | os.PathLike[str]) -> SigningKey:
    """Load a PEM Ed25519 private key, refusing a file that group or others may access."""
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise FapiaoError(
                "The key file {path} is accessible by group or others (mode {mode}); run chmod 600 on it.",
                path=str(path),
                mode=oct(stat.S_IMODE(mode)),
            )
        private = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise FapiaoError(
            "Cannot read the key file {path}: {reason}.", path=str(path), reason=exc.strerror
        ) from exc
    except (ValueError, TypeError) as exc:
        raise FapiaoError(
            "The key file {path} is not an unencrypted PEM private key.", path=str(path)
        ) from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise FapiaoError("The key file {path} does not hold an Ed25519 key.", path=str(path))
    return SigningKey(private)


@dataclass(frozen=True)
class KeyRecord:
    """One public key as the registry and ``GET /api/v1/ledger/public-keys`` show it."""

    key_id: str
    public_raw: bytes
    created_at: str | None
    status: KeyStatus = "active"
    compromised_since: str | None = None

    def trusts(self, at: str) -> bool:
        """Whether this key vouches for a head made at UTC stamp ``at``."""
        if self.status != "compromised":
            return True
        return self.compromised_since is not None and at < self.compromised_since

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "public_key": b64encode(self.public_raw),
            "created_at": self.created_at,
            "status": self.status,
            "compromised_since": self.compromised_since,
        }

    @classmethod
    def from_json(cls, item: Any) -> KeyRecord:
        if not isinstance(item, dict):
            raise InvalidValueError("A key entry must be an object.", code="bad_registry")
        try:
            raw = b64decode_strict(item["public_key"])
            record = cls(
                item["key_id"],
                raw,
                item.get("created_at"),
                item.get("status", "active"),
                item.get("compromised_since"),
            )
        except (KeyError, TypeError, InvalidValueError) as exc:
            raise InvalidValueError(
                "A key entry lacks key_id or a base64 public_key.", code="bad_registry"
            ) from exc
        if len(raw) != 32 or record.key_id != key_id(raw):
            raise InvalidValueError(
                "Key {key_id} does not match its public key.", code="bad_registry", key_id=str(record.key_id)
            )
        if record.status not in KEY_STATUSES:
            raise InvalidValueError(
                "Key {key_id} has an unknown status.", code="bad_registry", key_id=record.key_id
            )
        for stamp in (record.created_at, record.compromised_since):
            if stamp is not None:
                parse_stamp(stamp)
        if (record.status == "compromised") != (record.compromised_since is not None):
            raise InvalidValueError(
                "Key {key_id}: compromised_since goes with status compromised.",
                code="bad_registry",
                key_id=record.key_id,
            )
        return record


class KeyRegistry:
    """The public keys heads may be signed with: ``{"keys":[{key_id, public_key, created_at,
    status, compromised_since}]}``."""

    def __init__(self, records: Mapping[str, KeyRecord] | None = None) -> None:
        self._records: dict[str, KeyRecord] = dict(records or {})

    @classmethod
    def from_json(cls, doc: Any) -> KeyRegistry:
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise InvalidValueError('A key registry is {"keys": [...]}.', code="bad_registry")
        registry = cls()
        for item in doc["keys"]:
            record = KeyRecord.from_json(item)
            registry._records[record.key_id] = record
        return registry

    def to_json(self) -> dict[str, Any]:
        return {"keys": [record.to_json() for record in self._records.values()]}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyRegistry:
        try:
            return cls.from_json(json.loads(Path(path).read_text("utf-8")))
        except (OSError, UnicodeError, ValueError) as exc:
            raise FapiaoError(
                "Cannot read the key registry {path}: {reason}", path=str(path), reason=str(exc)
            ) from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: a temporary file in the same directory, fsynced, then renamed over ``path``."""
        target = Path(path)
        data = json.dumps(self.to_json(), ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)  # public keys, but under the private var dir like everything else
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add(
        self, public_raw: bytes, *, created_at: datetime | str | None = None, status: KeyStatus = "active"
    ) -> KeyRecord:
        stamp = utc_stamp(created_at) if isinstance(created_at, datetime) else created_at
        record = KeyRecord.from_json(
            {
                "key_id": key_id(public_raw),
                "public_key": b64encode(public_raw),
                "created_at": stamp,
                "status": status,
            }
        )
        self._records[record.key_id] = record
        return record

    def get(self, key_id: str) -> KeyRecord | None:
        return self._records.get(key_id)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._records

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> list[KeyRecord]:
        return list(self._records.values())

    def mark_compromised(self, key_id: str, since: datetime | str) -> KeyRecord:
        record = self._records.get(key_id)
        if record is None:
            raise InvalidValueError("Unknown key {key_id}.", code="unknown_key", key_id=key_id)
        stamp = utc_stamp(since) if isinstance(since, datetime) else since
        parse_stamp(stamp)
        self._records[key_id] = replace(record, status="compromised", compromised_since=stamp)
        return self._records[key_id]

    def retire(self, key_id: str) -> KeyRecord:
        record = self._records.get(key_id)
        if record is None:
            raise InvalidValueError("Unknown key {key_id}.", code="unknown_key", key_id=key_id)
        if record.status == "active":
            self._records[key_id] = replace(record, status="retired")
        return self._records[key_id]

    def active(self) -> list[KeyRecord]:
        return [record for record in self._records.values() if record.status == "active"]

    def trust(self, key_id: str, at: str) -> Literal["ok", "unknown_key", "key_compromised"]:
        """Known, and not (compromised and ``at`` >= compromised_since)."""
        record = self._records.get(key_id)
        if record is None:
            return "unknown_key"
        return "ok" if record.trusts(at) else "key_compromised"


def _registry_of_raw(raw: bytes) -> KeyRegistry:
    registry = KeyRegistry()
    registry.add(raw)
    return registry


def load_public_keys(path: str | os.PathLike[str]) -> KeyRegistry:
    """Read ``--public-key FILE``: a registry JSON document, a PEM public key, or base64 raw key."""
    try:
        text = Path(path).read_text("utf-8").strip()
    except (OSError, UnicodeError) as exc:
        raise FapiaoError("Cannot read the public key file {path}.", path=str(path)) from exc
    try:
        if text.startswith("{"):
            return KeyRegistry.from_json(json.loads(text))
        if text.startswith("-----BEGIN"):
            public = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(public, Ed25519PublicKey):
                raise InvalidValueError("Not an Ed25519 public key.", code="bad_key")
            return _registry_of_raw(public.public_bytes(*_RAW))
        raw = b64decode_strict(text)
        if len(raw) != 32:
            raise InvalidValueError("A raw Ed25519 public key is 32 bytes.", code="bad_key")
        return _registry_of_raw(raw)
    except (ValueError, TypeError, UnicodeError, FapiaoError) as exc:
        raise FapiaoError(
            "The public key file {path} is not a key registry, a PEM Ed25519 public key or a base64 key.",
            path=str(path),
        ) from exc
