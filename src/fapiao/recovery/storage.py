"""Evidence bytes, stored content-addressed by SHA-256 behind Django's storage API (docs/spec/recovery.md).

A file's name is its fingerprint, ``sha256/ab/cd/abcd…`` (two directory levels keep any one
directory small), so the same bytes are stored once however often they are attached, and a
stored file that no longer hashes to its name has been altered: :func:`open_blob` refuses to
return it.  There is deliberately no delete: evidence is kept for the retention period.

On the file system (``FAPIAO_EVIDENCE_DIR``, files 0600, directories 0700) a blob is written
under a temporary name in its final directory, flushed to disk and renamed into place, so a
crash never leaves a half-written file under a real fingerprint.  Another storage configured as
``STORAGES["evidence"]`` (object storage) is used through the plain API; its puts are atomic.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from functools import lru_cache

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages

from fapiao.core.errors import FapiaoError, NotFoundError

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")


class EvidenceMissingError(NotFoundError):
    """No such evidence file."""

    code = "evidence_missing"


class EvidenceTamperedError(FapiaoError):
    """A stored evidence file was altered after it was stored; the operator must look into it."""

    status = 500
    code = "evidence_tampered"


def evidence_storage() -> Storage:
    """``STORAGES["evidence"]`` if configured, else a private file system store at ``FAPIAO_EVIDENCE_DIR``.

    Cached per location, so a test that points the setting elsewhere gets a store there.
    """
    if "evidence" in settings.STORAGES:
        return storages["evidence"]
    return _file_storage(str(settings.FAPIAO_EVIDENCE_DIR))


@lru_cache(maxsize=8)
def _file_storage(location: str) -> FileSystemStorage:
    return FileSystemStorage(location=location, file_permissions_mode=0o600, directory_permissions_mode=0o700)


def blob_name(sha256: str) -> str:
    """Where a blob lives: ``sha256/ab/cd/<hex>``.  Anything but 64 lower-case hex digits is refused."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise EvidenceMissingError()
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def store_blob(data: bytes) -> str:
    """Store ``data`` once and return its SHA-256 (hex).  Storing the same bytes again is a no-op.

    If a file already sits under that fingerprint it is re-hashed first; a mismatch raises
    :class:`EvidenceTamperedError` rather than quietly overwriting what an operator must see.
    """
    digest = hashlib.sha256(data).hexdigest()
    name = blob_name(digest)
    storage = evidence_storage()
    if storage.exists(name):
        _read_verified(storage, name, digest)
        return digest
    if isinstance(storage, FileSystemStorage):
        _save_atomically(storage, name, data)
    else:
        storage.save(name, ContentFile(data))
    return digest


def open_blob(sha256: str) -> bytes:
    """The stored bytes of ``sha256``, re-hashed on every read.

    Raises :class:`EvidenceMissingError` when there is no such blob and
    :class:`EvidenceTamperedError` when the bytes on disk no longer match.
    """
    name = blob_name(sha256)
    storage = evidence_storage()
    if not storage.exists(name):
        raise EvidenceMissingError()
    return _read_verified(storage, name, sha256)


def _read_verified(storage: Storage, name: str, sha256: str) -> bytes:
    with storage.open(name, "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        log.error("evidence blob %s no longer matches its SHA-256: altered or damaged on storage", name)
        raise EvidenceTamperedError(sha256=sha256)
    return bytes(data)


def _save_atomically(storage: FileSystemStorage, name: str, data: bytes) -> None:
    """Save under a unique temporary name beside the target, fsync, rename, fsync the directory.

    Two writers racing with the same bytes both rename identical files into place; the last
    rename wins and nothing is lost.
    """
    directory, _slash, base = name.rpartition("/")
    temporary = storage.save(f"{directory}/.{base}.{uuid.uuid4().hex}.tmp", ContentFile(data))
    temporary_path = storage.path(temporary)
    try:
        _fsync(temporary_path)
        os.replace(temporary_path, storage.path(name))
    except BaseException:
        if os.path.exists(temporary_path):
            os.unlink(temporary_path)  # our own temporary file, never a stored blob
        raise
    _fsync(os.path.dirname(storage.path(name)))


def _fsync(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
