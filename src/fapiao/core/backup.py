"""Backups without a database (``fapiao backup``): the encrypted file format, the signed manifest,
the comparison of a restored database with its manifest, and which backups a retention keeps.

**Encrypted files.** Each file of a backup is stored as ``MAGIC`` ‖ 8-byte random prefix ‖ chunks.
A chunk is a 4-byte big-endian length, then AES-256-GCM ciphertext + tag of at most ``CHUNK`` bytes
of the file, under the nonce prefix ‖ chunk number (4 bytes).  The associated data binds the chunk
to its backup, its file name, its number and whether it is the last: a chunk moved to another
place, another file or another backup, a truncated file and a flipped byte all fail to decrypt,
and the error names the file.  Memory stays at one chunk whatever the file's size.

**Manifest** (``fapiao-backup/1``): what the backup holds, signed with the ledger's signing key
(Ed25519 over its RFC 8785 bytes), so that a backup from another installation, or one whose
manifest was edited, is refused before anything is restored.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fapiao.core.errors import FapiaoError, _
from fapiao.core.signed_document import check_signed, sign_document
from fapiao.core.signing import KeyRegistry, SigningKey

FORMAT = "fapiao-backup/1"
MAGIC = b"FVBACKUP1\n"
CHUNK = 1 << 20
KEY_BYTES = 32
_PREFIX = 8
_LENGTH = struct.Struct(">I")
_TAG = 16


class TranslatedReason:
    # Mixed into an error whose ``reason`` parameter is itself a message (an msgid with placeholders).
    message: str
    params: dict[str, Any]

    def render(self, translate: Any = None) -> str:
        params = dict(self.params)
        reason = str(params.get("reason", ""))
        reason = translate(reason) if translate and reason else reason
        try:
            params["reason"] = reason.format(**params)
        except (KeyError, IndexError):
            params["reason"] = reason
        text = translate(self.message) if translate else self.message
        try:
            return text.format(**params)
        except (KeyError, IndexError):
            return text


class BackupDamagedError(TranslatedReason, FapiaoError):
    """The backup file {name} is damaged or was changed: {reason}. Nothing was restored from it."""

    status = 422
    code = "backup_damaged"


class ManifestRefusedError(TranslatedReason, FapiaoError):
    """The backup's manifest is refused: {reason}. Nothing was restored."""

    status = 422
    code = "backup_manifest_refused"


def backup_key_id(key: bytes) -> str:
    """Names a backup key without revealing it: hex of the first 8 bytes of SHA-256(key)."""
    return hashlib.sha256(b"fapiao-backup-key|" + key).hexdigest()[:16]


def _aad(backup_id: str, name: str, number: int, last: bool) -> bytes:
    return f"{FORMAT}|{backup_id}|{name}|{number}|{'last' if last else 'more'}".encode()


def encrypt_stream(
    source: BinaryIO, target: BinaryIO, *, key: bytes, backup_id: str, name: str
) -> tuple[str, int]:
    """Encrypt ``source`` into ``target``; returns the plaintext's SHA-256 (hex) and size."""
    cipher = AESGCM(key)
    prefix = os.urandom(_PREFIX)
    target.write(MAGIC + prefix)
    digest = hashlib.sha256()
    size = 0
    number = 0
    chunk = source.read(CHUNK)
    while True:
        following = source.read(CHUNK) if chunk else b""
        last = not following
        digest.update(chunk)
        size += len(chunk)
        nonce = prefix + number.to_bytes(4, "big")
        sealed = cipher.encrypt(nonce, chunk, _aad(backup_id, name, number, last))
        target.write(_LENGTH.pack(len(sealed)) + sealed)
        if last:
            return digest.hexdigest(), size
        number += 1
        chunk = following


def decrypt_chunks(source: BinaryIO, *, key: bytes, backup_id: str, name: str) -> Iterator[bytes]:
    """The plaintext of an encrypted file, a chunk at a time; :class:`BackupDamagedError` when any
    chunk fails to authenticate, the file is cut short, or bytes follow its last chunk."""
    cipher = AESGCM(key)
    head = source.read(len(MAGIC) + _PREFIX)
    if len(head) != len(MAGIC) + _PREFIX or not head.startswith(MAGIC):
        raise BackupDamagedError(name=name, reason=_("not an encrypted backup file"))
    prefix = head[len(MAGIC) :]
    number = 0
    while True:
        length_bytes = source.read(_LENGTH.size)
        if len(length_bytes) != _LENGTH.size:
            raise BackupDamagedError(name=name, reason=_("the file ends before its last part"))
        (length,) = _LENGTH.unpack(length_bytes)
        if not _TAG <= length <= CHUNK + _TAG:
            raise BackupDamagedError(name=name, reason=_("a part has an impossible length"))
        sealed = source.read(length)
        if len(sealed) != length:
            raise BackupDamagedError(name=name, reason=_("the file ends before its last part"))
        nonce = prefix + number.to_bytes(4, "big")
        plain = _open(cipher, nonce, sealed, functools.partial(_aad, backup_id, name, number))
        if plain is None:
            raise BackupDamagedError(name=name, reason=_("part {number} fails its check"), number=number)
        chunk, last = plain
        yield chunk
        if last:
            if source.read(1):
                raise BackupDamagedError(name=name, reason=_("bytes follow its last part"))
            return
        number += 1


def _open(
    cipher: AESGCM, nonce: bytes, sealed: bytes, aad: Callable[[bool], bytes]
) -> tuple[bytes, bool] | None:
    """The chunk and whether it is the file's last (the associated data says which)."""
    for last in (False, True):
        try:
            return cipher.decrypt(nonce, sealed, aad(last)), last
        except InvalidTag:
            continue
    return None


def decrypt_stream(
    source: BinaryIO, target: BinaryIO | None, *, key: bytes, backup_id: str, name: str
) -> tuple[str, int]:
    """Decrypt into ``target`` (or only check, when None); the plaintext's SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    for chunk in decrypt_chunks(source, key=key, backup_id=backup_id, name=name):
        digest.update(chunk)
        size += len(chunk)
        if target is not None:
            target.write(chunk)
    return digest.hexdigest(), size


# --- The manifest ----------------------------------------------------------------------------------


def sign_manifest(manifest: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """The signed manifest document: the manifest, the signing key's id and the signature."""
    return sign_document(manifest, key, format_name=FORMAT)


def verify_manifest(document: Any, keys: KeyRegistry, *, backup_id: str) -> dict[str, Any]:
    """The manifest of a signed manifest document, once its signature verifies with a key this
    installation knows and it names ``backup_id``; :class:`ManifestRefusedError` otherwise."""
    checked = check_signed(document, keys, format_name=FORMAT)
    if checked.refusal == "not_signed":
        raise ManifestRefusedError(reason=_("it is not a signed fapiao-backup/1 manifest"))
    if checked.refusal == "unknown_key":
        raise ManifestRefusedError(
            reason=_(
                "it was signed by key {key_id}, which this installation does not know "
                "(a backup of another installation?)"
            ),
            key_id=checked.key_id,
        )
    if checked.manifest is None:
        reason = _("its signature does not verify (it was changed after it was signed)")
        raise ManifestRefusedError(reason=reason)
    manifest = checked.manifest
    if manifest.get("id") != backup_id:
        raise ManifestRefusedError(
            reason=_("it belongs to backup {found}, not {expected}"),
            found=manifest.get("id"),
            expected=backup_id,
        )
    return manifest


# --- Comparing a restored database with its manifest ------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One way a restored database differs from the manifest of its backup."""

    where: str  # e.g. "merchant 91110000… invoices", "ledger 91110000…", "file db.sqlite3"
    expected: Any
    found: Any

    def __str__(self) -> str:
        return f"{self.where}: expected {self.expected!r}, found {self.found!r}"


SUMMARY_PARTS = ("merchants", "ledger", "audit")


def compare_summaries(expected: Mapping[str, Any], found: Mapping[str, Any]) -> list[Difference]:
    """Every difference between the manifest's summary and the one recomputed after a restore."""
    differences: list[Difference] = []
    for part in SUMMARY_PARTS:
        want: Mapping[str, Any] = expected.get(part, {})
        have: Mapping[str, Any] = found.get(part, {})
        for name in sorted(set(want) | set(have)):
            if want.get(name) != have.get(name):
                differences.extend(_differences(f"{part} {name}", want.get(name), have.get(name)))
    return differences


def _differences(where: str, want: Any, have: Any) -> list[Difference]:
    if isinstance(want, Mapping) and isinstance(have, Mapping):
        found: list[Difference] = []
        for key in sorted(set(want) | set(have)):
            if want.get(key) != have.get(key):
                found.extend(_differences(f"{where} {key}", want.get(key), have.get(key)))
        return found
    return [Difference(where, want, have)]


# --- Retention ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kept:
    backup_id: str
    created: datetime
    verified: bool


def backups_to_keep(backups: Iterable[Kept], *, daily: int, weekly: int, monthly: int) -> set[str]:
    """Grandfather-father-son: the newest backup of each of the last ``daily`` days, ``weekly``
    ISO weeks and ``monthly`` months that have one — and always the newest verified backup."""
    ordered = sorted(backups, key=lambda b: b.created, reverse=True)
    keep: set[str] = set()
    for count, period in ((daily, _day), (weekly, _week), (monthly, _month)):
        seen: list[Any] = []
        for backup in ordered:
            slot = period(backup.created)
            if slot in seen:
                continue
            if len(seen) == count:
                break
            seen.append(slot)
            keep.add(backup.backup_id)
    newest_verified = next((b for b in ordered if b.verified), None)
    if newest_verified is not None:
        keep.add(newest_verified.backup_id)
    return keep


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _week(moment: datetime) -> tuple[int, int]:
    iso = moment.astimezone(UTC).isocalendar()
    return iso.year, iso.week


def _month(moment: datetime) -> tuple[int, int]:
    utc = moment.astimezone(UTC)
    return utc.year, utc.month


def parse_age(text: str) -> timedelta:
    """``24h``, ``90m``, ``2d`` or ``3600s`` (``--if-older-than``)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    if len(value) < 2 or value[-1] not in units or not value[:-1].isascii() or not value[:-1].isdigit():
        raise ValueError(text)
    return timedelta(seconds=int(value[:-1]) * units[value[-1]])
