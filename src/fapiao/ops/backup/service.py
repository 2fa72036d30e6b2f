"""``fapiao backup create | verify | list | prune | restore`` (docs/operations/backup.md), SQLite.

A backup is taken while writes continue: the witness files are copied first, then SQLite's online
backup API copies the database in one step (one read transaction, so a consistent snapshot that
never blocks writers in WAL mode), then the manifest is computed *from that copy*, every file is
encrypted, read back and checked, and only then is the backup renamed into the listing.

``verify`` restores into a scratch directory and runs what an operator would run after a real
restore — ``fapiao migrate``, ``fapiao ledger verify``, ``fapiao audit verify`` — as separate
processes pointed at the scratch copy, then compares the copy with the manifest.  The result is
recorded (:class:`~fapiao.ops.models.BackupVerification`) and ``/readyz`` reports its age.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from fapiao.audit.services import record as audit_record
from fapiao.core.backup import (
    FORMAT,
    BackupDamagedError,
    TranslatedReason,
    backup_key_id,
    decrypt_stream,
    encrypt_stream,
    sign_manifest,
)
from fapiao.core.canonical import utc_stamp
from fapiao.core.errors import ConflictError, FapiaoError, _
from fapiao.ops.backup import pgbackrest, store
from fapiao.ops.backup.store import MANIFEST, PARTIAL, Stored, encrypted_name
from fapiao.ops.backup.summary import summarise
from fapiao.platform import keys

DATABASE = "db.sqlite3"
WITNESS = ("witness/heads.jsonl", "witness/audit-heads.jsonl")
EVIDENCE = "evidence"
CHECK_TIMEOUT = 3600  # seconds for one of the checks run on the scratch copy


class BackupEngineError(ConflictError):
    """`fapiao backup` works on SQLite and on PostgreSQL (with pgBackRest), not on {vendor}."""

    code = "backup_engine"


class BackupTypeError(ConflictError):
    """--type {kind} is for PostgreSQL (pgBackRest's full, diff and incr); a SQLite backup is always whole."""

    code = "backup_type"


class SameFilesystemError(ConflictError):
    """FAPIAO_BACKUP_DIR ({directory}) is on the same file system as the database: a lost disk would lose both. Point it at another disk or machine."""  # noqa: E501

    code = "backup_same_filesystem"


class BackupWriteError(TranslatedReason, FapiaoError):
    """The backup could not be written to {directory}: {reason}. Nothing was listed; the database was not touched."""  # noqa: E501

    status = 507
    code = "backup_write_failed"


# --- where things are -----------------------------------------------------------------------------


def database_path() -> Path:
    return Path(str(settings.DATABASES["default"]["NAME"]))


def require_sqlite() -> None:
    if connection.vendor != "sqlite":
        raise BackupEngineError(vendor=connection.vendor)


def engine() -> str:
    """``sqlite`` or ``postgresql``: the engines `fapiao backup` works on."""
    if connection.vendor not in {"sqlite", "postgresql"}:
        raise BackupEngineError(vendor=connection.vendor)
    return str(connection.vendor)


def database_home() -> Path:
    """The directory the database's files live in (the cluster's data directory on PostgreSQL)."""
    if engine() == "postgresql":
        return Path(pgbackrest.load_cluster().data_dir)
    return database_path().parent


def refuse_same_filesystem(directory: Path) -> None:
    """In production the backups must not share the database's disk."""
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if os.stat(probe).st_dev == os.stat(database_home()).st_dev:
        raise SameFilesystemError(directory=directory)


def scratch_root() -> Path:
    """Plaintext copies exist only here, beside the live database (same disk, same protection)."""
    root = Path(settings.VAR_DIR) / "backup-scratch"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def _witness_sources() -> dict[str, Path]:
    ledger = Path(settings.FAPIAO_WITNESS_FILE)
    return {WITNESS[0]: ledger, WITNESS[1]: ledger.with_name("audit-heads.jsonl")}


# --- create ---------------------------------------------------------------------------------------


@dataclass
class Created:
    backup: Stored
    files: int
    bytes: int
    seconds: float
    cleaned: list[str] = field(default_factory=list)


def create_backup(*, allow_same_filesystem: bool = False, kind: str | None = None) -> Created:
    """Take a consistent backup while writes continue; listed only once complete and checked.

    ``allow_same_filesystem``: a drill's scratch backup of its scratch copy (never the live one).
    ``kind``: PostgreSQL's pgBackRest backup type (``full`` by default, ``diff``, ``incr``)."""
    vendor = engine()
    if vendor == "sqlite" and kind:
        raise BackupTypeError(kind=kind)
    started = time.monotonic()
    directory = store.backup_dir()
    if settings.PRODUCTION and not allow_same_filesystem:
        refuse_same_filesystem(directory)
    with store.exclusive(directory):
        cleaned = store.remove_partials(directory)
        shutil.rmtree(scratch_root() / "create", ignore_errors=True)
        key = store.backup_key(create=True)
        now = timezone.now()
        backup_id = store.new_id(now)
        partial = directory / (PARTIAL + backup_id)
        scratch = scratch_root() / "create"
        try:
            partial.mkdir(mode=0o700)
            scratch.mkdir(mode=0o700)
            if vendor == "postgresql":
                files = _write_files(partial, scratch, key=key, backup_id=backup_id, database=False)
                taken = pgbackrest.backup(backup_id, kind or "full")
                summary, part = taken.summary, taken.manifest_part()
            else:
                # The snapshot's summary is computed while its files are encrypted (SQLite reads
                # without the GIL; so does AES-GCM).
                with ThreadPoolExecutor(max_workers=1) as pool:
                    pending: list[Future[dict[str, Any]]] = []
                    files = _write_files(
                        partial,
                        scratch,
                        key=key,
                        backup_id=backup_id,
                        on_snapshot=lambda: pending.append(pool.submit(summary_of, scratch / DATABASE)),
                    )
                    summary, part = pending[0].result(), None
            manifest = _manifest(backup_id, now, files, summary, key, pgbackrest_part=part)
            _write_manifest(
                partial, sign_manifest(manifest, keys.signing_key()), key=key, backup_id=backup_id
            )
            _write_index(partial, backup_id, now, key, files, vendor=vendor)
            store.fsync_tree(partial)
            _check_files(partial, files, key=key, backup_id=backup_id)
            os.rename(partial, directory / backup_id)
            store.fsync_tree(directory / backup_id)
        except (OSError, sqlite3.Error) as error:
            shutil.rmtree(partial, ignore_errors=True)
            raise BackupWriteError(directory=directory, reason=_write_failure(error)) from error
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    backup = store.stored(backup_id)
    audit_record(
        actor=None,
        action="backup.create",
        target_type="backup",
        target_id=backup_id,
        after={"files": len(files), "bytes": backup.size},
    )
    return Created(backup, len(files), backup.size, time.monotonic() - started, cleaned)


def _write_failure(error: OSError | sqlite3.Error) -> str:
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "full" in str(error).lower():
        return _("no space left on the device")
    if isinstance(error, OSError) and error.errno:
        return f"{os.strerror(error.errno)} ({error.filename or ''})"
    return str(error)


def _write_files(
    partial: Path,
    scratch: Path,
    *,
    key: bytes,
    backup_id: str,
    database: bool = True,
    on_snapshot: Callable[[], object] | None = None,
) -> list[dict[str, Any]]:
    """Witness copies first (so they never run ahead of the snapshot), the snapshot (SQLite; on
    PostgreSQL pgBackRest's backup follows), then evidence."""
    plain: list[tuple[str, Path]] = []
    for name, source in _witness_sources().items():
        if source.is_file():
            copy = scratch / name
            copy.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(source, copy)
            plain.append((name, copy))
    if database:
        snapshot_sqlite(database_path(), scratch / DATABASE)
        plain.insert(0, (DATABASE, scratch / DATABASE))
        if on_snapshot is not None:
            on_snapshot()
    evidence = Path(settings.FAPIAO_EVIDENCE_DIR)
    if evidence.is_dir():
        for blob in sorted(p for p in evidence.rglob("*") if p.is_file() and not p.name.startswith(".")):
            plain.append((f"{EVIDENCE}/{blob.relative_to(evidence).as_posix()}", blob))
    files = []
    for name, source in plain:
        target = partial / encrypted_name(name)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with source.open("rb") as reading, create_private_file(target) as writing:
            digest, size = encrypt_stream(reading, writing, key=key, backup_id=backup_id, name=name)
        files.append({"name": name, "sha256": digest, "size": size})
    return files


def create_private_file(path: Path) -> Any:
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def snapshot_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup of ``source`` in one step: a consistent copy while writers go on."""
    reading = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        writing = sqlite3.connect(target)
        try:
            reading.backup(writing)
        finally:
            writing.close()
    finally:
        reading.close()
    os.chmod(target, 0o600)


def summary_of(database: Path) -> dict[str, Any]:
    reading = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return summarise(reading.cursor())
    finally:
        reading.close()


def _manifest(
    backup_id: str,
    now: Any,
    files: list[dict[str, Any]],
    summary: dict[str, Any],
    key: bytes,
    *,
    pgbackrest_part: dict[str, Any] | None = None,
) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
        migrations = [f"{app}.{name}" for app, name in cursor.fetchall()]
    needed = summary.pop("keys")
    if pgbackrest_part is None:
        engine_part: dict[str, Any] = {"vendor": "sqlite", "version": sqlite3.sqlite_version}
    else:
        engine_part = {
            "vendor": "postgresql",
            "version": str(connection.pg_version),  # type: ignore[attr-defined]
            "pgbackrest": pgbackrest_part,
        }
    return {
        "format": FORMAT,
        "id": backup_id,
        "created_at": utc_stamp(now),
        "engine": engine_part,
        "migrations": migrations,
        "keys": {"signing": needed["signing"], "data": needed["data"], "backup": backup_key_id(key)},
        "summary": summary,
        "files": files,
    }


def _write_manifest(partial: Path, document: dict[str, Any], *, key: bytes, backup_id: str) -> None:
    data = json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
    with create_private_file(partial / MANIFEST) as writing:
        encrypt_stream(io.BytesIO(data), writing, key=key, backup_id=backup_id, name=MANIFEST)


def _write_index(
    partial: Path, backup_id: str, now: Any, key: bytes, files: list[dict[str, Any]], *, vendor: str
) -> None:
    index = {
        "format": FORMAT,
        "id": backup_id,
        "created_at": utc_stamp(now),
        "engine": vendor,
        "backup_key_id": backup_key_id(key),
        "files": len(files),
    }
    with create_private_file(partial / store.INDEX) as writing:
        writing.write(json.dumps(index, indent=2, sort_keys=True).encode() + b"\n")


def _check_files(partial: Path, files: list[dict[str, Any]], *, key: bytes, backup_id: str) -> None:
    """Read every written file back: it decrypts and gives the digest the manifest lists."""
    for entry in files:
        name = entry["name"]
        with (partial / encrypted_name(name)).open("rb") as reading:
            digest, _size = decrypt_stream(reading, None, key=key, backup_id=backup_id, name=name)
        if digest != entry["sha256"]:
            raise BackupDamagedError(name=name, reason=_("it does not read back as it was written"))
