"""Where backups live and how one is read: the backup directory, the backup key, a backup's files.

``FAPIAO_BACKUP_DIR/<id>/`` holds ``backup.json`` (what any listing may show: no business data),
``manifest.json.enc`` (the signed manifest) and one ``.enc`` file per backed-up file.  A backup is
written under ``.partial-<id>`` and renamed into place only once every file was read back and
checked, so a listed backup is always whole; a crash leaves a ``.partial-*`` directory that the
next run removes.  The backup key (AES-256) lives in the key directory, never beside the backups.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from fapiao.core.backup import FORMAT, KEY_BYTES, backup_key_id
from fapiao.core.errors import ConflictError, FapiaoError, NotFoundError, _

INDEX = "backup.json"
MANIFEST = "manifest.json.enc"
PARTIAL = ".partial-"
_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


class BackupNotFoundError(NotFoundError):
    """No backup {backup_id} in {directory}. `fapiao backup list` shows the backups there."""

    code = "backup_not_found"


class BackupKeyError(FapiaoError):
    """The backup key is missing or is not the one this backup was made with."""

    status = 422
    code = "backup_key"


class BackupBusyError(ConflictError):
    """Another `fapiao backup` is running on {directory}; try again when it has finished."""

    code = "backup_busy"


def backup_dir() -> Path:
    return Path(settings.FAPIAO_BACKUP_DIR)


def key_path() -> Path:
    return Path(settings.KEYS_DIR) / "backup-key"


def backup_key(*, create: bool = False) -> bytes:
    """The AES-256 key of our backups: ``FAPIAO_BACKUP_KEY`` (base64), else ``$FAPIAO_KEYS_DIR/backup-key``,
    made (0600) by the first ``backup create``.  Kept apart from the backups, like the signing keys."""
    text = settings.FAPIAO_BACKUP_KEY or ""
    if not text:
        path = key_path()
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            if not create:
                raise BackupKeyError(
                    _("There is no backup key ({path}): it is made by the first `fapiao backup create`."),
                    path=path,
                ) from None
            return _new_key(path)
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise BackupKeyError(
            _("The backup key is not 32 bytes in base64 (FAPIAO_BACKUP_KEY or {path})."), path=key_path()
        )
    return key


def _new_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return backup_key()
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key


def new_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@contextlib.contextmanager
def exclusive(directory: Path) -> Iterator[None]:
    """One ``fapiao backup`` that writes or removes backups at a time, per backup directory."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupBusyError(directory=directory) from None
        yield
    finally:
        os.close(fd)


def remove_partials(directory: Path) -> list[str]:
    """Leftovers of backups that never finished (killed, disk full): removed, never listed."""
    removed = []
    for path in sorted(directory.glob(PARTIAL + "*")):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


@dataclass(frozen=True)
class Stored:
    """A complete backup as ``backup.json`` describes it."""

    backup_id: str
    path: Path
    index: dict[str, Any]

    @property
    def created_at(self) -> str:
        return str(self.index.get("created_at", ""))

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


def stored(backup_id: str) -> Stored:
    directory = backup_dir()
    path = directory / backup_id
    if not _ID.fullmatch(backup_id) or not (path / INDEX).is_file():
        raise BackupNotFoundError(backup_id=backup_id, directory=directory)
    return Stored(backup_id, path, read_index(path))


def read_index(path: Path) -> dict[str, Any]:
    try:
        index = json.loads((path / INDEX).read_text())
    except (OSError, ValueError):
        index = {}
    return index if isinstance(index, dict) and index.get("format") == FORMAT else {}


def all_stored() -> list[Stored]:
    """Every complete backup, oldest first."""
    directory = backup_dir()
    if not directory.is_dir():
        return []
    found = [
        Stored(path.name, path, read_index(path))
        for path in directory.iterdir()
        if _ID.fullmatch(path.name) and (path / INDEX).is_file()
    ]
    return sorted(found, key=lambda b: b.backup_id)


def encrypted_name(name: str) -> str:
    return name + ".enc"


def this_key_id() -> str:
    return backup_key_id(backup_key())


def fsync_tree(root: Path) -> None:
    """Every file and directory under ``root`` on disk (a listed backup survives a power cut)."""
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
