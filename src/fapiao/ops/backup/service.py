"""``fapiao backup create | verify | list | prune | restore`` (DESIGN.md C7), SQLite.

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
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from fapiao.audit.services import record as audit_record
from fapiao.core.backup import (
    FORMAT,
    BackupDamagedError,
    Kept,
    ManifestRefusedError,
    TranslatedReason,
    backup_key_id,
    backups_to_keep,
    compare_summaries,
    decrypt_stream,
    encrypt_stream,
    sign_manifest,
    verify_manifest,
)
from fapiao.core.canonical import utc_stamp
from fapiao.core.errors import ConflictError, FapiaoError, InvalidValueError, _
from fapiao.ops.backup import store
from fapiao.ops.backup.store import MANIFEST, PARTIAL, BackupKeyError, Stored, encrypted_name
from fapiao.ops.backup.summary import summarise
from fapiao.ops.models import BackupVerification
from fapiao.platform import keys

DATABASE = "db.sqlite3"
WITNESS = ("witness/heads.jsonl", "witness/audit-heads.jsonl")
EVIDENCE = "evidence"
CHECK_TIMEOUT = 3600  # seconds for one of the checks run on the scratch copy


class BackupEngineError(ConflictError):
    """`fapiao backup` works on SQLite; backups of {vendor} with pgBackRest are not built yet (docs/operations/backup.md)."""  # noqa: E501

    code = "backup_engine"


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


def _require_sqlite() -> None:
    if connection.vendor != "sqlite":
        raise BackupEngineError(vendor=connection.vendor)


def refuse_same_filesystem(directory: Path) -> None:
    """In production the backups must not share the database's disk."""
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if os.stat(probe).st_dev == os.stat(database_path().parent).st_dev:
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


def create_backup() -> Created:
    """Take a consistent backup while writes continue; listed only once complete and checked."""
    _require_sqlite()
    started = time.monotonic()
    directory = store.backup_dir()
    if settings.PRODUCTION:
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
            files = _write_files(partial, scratch, key=key, backup_id=backup_id)
            summary = _summary_of(scratch / DATABASE)
            manifest = _manifest(backup_id, now, files, summary, key)
            _write_manifest(
                partial, sign_manifest(manifest, keys.signing_key()), key=key, backup_id=backup_id
            )
            _write_index(partial, backup_id, now, key, files)
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


def _write_files(partial: Path, scratch: Path, *, key: bytes, backup_id: str) -> list[dict[str, Any]]:
    """Witness copies first (so they never run ahead of the snapshot), the snapshot, then evidence."""
    plain: list[tuple[str, Path]] = []
    for name, source in _witness_sources().items():
        if source.is_file():
            copy = scratch / name
            copy.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(source, copy)
            plain.append((name, copy))
    snapshot_sqlite(database_path(), scratch / DATABASE)
    plain.insert(0, (DATABASE, scratch / DATABASE))
    evidence = Path(settings.FAPIAO_EVIDENCE_DIR)
    if evidence.is_dir():
        for blob in sorted(p for p in evidence.rglob("*") if p.is_file() and not p.name.startswith(".")):
            plain.append((f"{EVIDENCE}/{blob.relative_to(evidence).as_posix()}", blob))
    files = []
    for name, source in plain:
        target = partial / encrypted_name(name)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with source.open("rb") as reading, _create(target) as writing:
            digest, size = encrypt_stream(reading, writing, key=key, backup_id=backup_id, name=name)
        files.append({"name": name, "sha256": digest, "size": size})
    return files


def _create(path: Path) -> Any:
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


def _summary_of(database: Path) -> dict[str, Any]:
    reading = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return summarise(reading.cursor())
    finally:
        reading.close()


def _manifest(
    backup_id: str, now: Any, files: list[dict[str, Any]], summary: dict[str, Any], key: bytes
) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
        migrations = [f"{app}.{name}" for app, name in cursor.fetchall()]
    needed = summary.pop("keys")
    return {
        "format": FORMAT,
        "id": backup_id,
        "created_at": utc_stamp(now),
        "engine": {"vendor": "sqlite", "version": sqlite3.sqlite_version},
        "migrations": migrations,
        "keys": {"signing": needed["signing"], "data": needed["data"], "backup": backup_key_id(key)},
        "summary": summary,
        "files": files,
    }


def _write_manifest(partial: Path, document: dict[str, Any], *, key: bytes, backup_id: str) -> None:
    data = json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
    source = _BytesReader(data)
    with _create(partial / MANIFEST) as writing:
        encrypt_stream(source, writing, key=key, backup_id=backup_id, name=MANIFEST)  # type: ignore[arg-type]


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def read(self, size: int) -> bytes:
        chunk = self._data[self._at : self._at + size]
        self._at += len(chunk)
        return chunk


def _write_index(partial: Path, backup_id: str, now: Any, key: bytes, files: list[dict[str, Any]]) -> None:
    index = {
        "format": FORMAT,
        "id": backup_id,
        "created_at": utc_stamp(now),
        "engine": "sqlite",
        "backup_key_id": backup_key_id(key),
        "files": len(files),
    }
    with _create(partial / store.INDEX) as writing:
        writing.write(json.dumps(index, indent=2, sort_keys=True).encode() + b"\n")


def _check_files(partial: Path, files: list[dict[str, Any]], *, key: bytes, backup_id: str) -> None:
    """Read every written file back: it decrypts and gives the digest the manifest lists."""
    for entry in files:
        name = entry["name"]
        with (partial / encrypted_name(name)).open("rb") as reading:
            digest, _size = decrypt_stream(reading, None, key=key, backup_id=backup_id, name=name)
        if digest != entry["sha256"]:
            raise BackupDamagedError(name=name, reason=_("it does not read back as it was written"))


# --- open and verify ------------------------------------------------------------------------------


def open_manifest(backup: Stored, key: bytes) -> dict[str, Any]:
    """The backup's manifest: decrypted with this installation's backup key, its signature
    verified with a signing key this installation knows; refused otherwise, naming why."""
    wanted = str(backup.index.get("backup_key_id", ""))
    have = backup_key_id(key)
    if wanted != have:
        raise BackupKeyError(
            _(
                "Backup {backup_id} was encrypted with backup key {wanted}; this installation's backup key "
                "is {have}. Restore the backup key it was made with (FAPIAO_BACKUP_KEY or the key "
                "directory's backup-key) and try again."
            ),
            backup_id=backup.backup_id,
            wanted=wanted or "?",
            have=have,
        )
    path = backup.path / MANIFEST
    if not path.is_file():
        raise BackupDamagedError(name=MANIFEST, reason=_("the file is missing"))
    sink = _BytesSink()
    with path.open("rb") as reading:
        decrypt_stream(reading, sink, key=key, backup_id=backup.backup_id, name=MANIFEST)  # type: ignore[arg-type]
    try:
        document = json.loads(bytes(sink.data))
    except ValueError:
        raise ManifestRefusedError(reason=_("it is not a signed fapiao-backup/1 manifest")) from None
    return verify_manifest(document, keys.registry(), backup_id=backup.backup_id)


class _BytesSink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk


@dataclass
class Verified:
    backup_id: str
    ok: bool
    problems: list[str]
    seconds: float
    invoices: int = 0
    entries: int = 0


def verify_backup(backup_id: str, *, keep: Path | None = None) -> Verified:
    """Restore into scratch, run the checks, compare with the manifest; the result is recorded.

    A refused manifest (wrong key, another installation, a changed signature) raises: nothing is
    restored.  ``keep``: leave the checked copy there (used by restore)."""
    _require_sqlite()
    started = time.monotonic()
    run = BackupVerification.objects.create(backup_id=backup_id, started_at=timezone.now())
    scratch = keep or scratch_root() / f"verify-{backup_id}"
    shutil.rmtree(scratch, ignore_errors=True)
    problems: list[str] = []
    manifest: dict[str, Any] = {}
    try:
        backup = store.stored(backup_id)
        key = store.backup_key()
        manifest = open_manifest(backup, key)
        scratch.mkdir(parents=True, mode=0o700)
        problems += _restore_files(backup, manifest, scratch, key=key)
        if not problems:
            problems += run_checks(scratch)
            found = _summary_of(scratch / DATABASE)
            found.pop("keys")
            problems += [str(d) for d in compare_summaries(manifest["summary"], found)]
            stored_blobs = {f["name"] for f in manifest["files"]}
            problems += [
                _("evidence {sha256} is referenced by the database but not in the backup").format(sha256=sha)
                for sha in found.get("evidence", [])
                if f"{EVIDENCE}/sha256/{sha[:2]}/{sha[2:4]}/{sha}" not in stored_blobs
            ]
    except FapiaoError as error:
        problems.append(error.render())
        raise
    finally:
        run.finished_at = timezone.now()
        run.ok = not problems
        run.problems = problems
        summary = manifest.get("summary", {})
        run.invoices = sum(m.get("invoices", 0) for m in summary.get("merchants", {}).values())
        run.entries = sum(log.get("entries", 0) for log in summary.get("ledger", {}).values())
        run.save()
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    audit_record(
        actor=None,
        action="backup.verify",
        target_type="backup",
        target_id=backup_id,
        after={"ok": not problems, "problems": problems[:20]},
    )
    return Verified(backup_id, not problems, problems, time.monotonic() - started, run.invoices, run.entries)


def _restore_files(backup: Stored, manifest: dict[str, Any], scratch: Path, *, key: bytes) -> list[str]:
    """Decrypt every file the manifest lists into ``scratch``; name every file that fails."""
    problems = []
    listed = set()
    for entry in manifest["files"]:
        name = str(entry["name"])
        listed.add(encrypted_name(name))
        target = _inside(scratch, name)
        source = backup.path / encrypted_name(name)
        if target is None:
            problems.append(_("file {name}: not a name a backup can hold").format(name=name))
            continue
        if not source.is_file():
            problems.append(_("file {name}: missing from the backup").format(name=name))
            continue
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            with source.open("rb") as reading, _create(target) as writing:
                digest, size = decrypt_stream(
                    reading, writing, key=key, backup_id=backup.backup_id, name=name
                )
        except BackupDamagedError as error:
            problems.append(error.render())
            continue
        if digest != entry["sha256"] or size != entry["size"]:
            problems.append(_("file {name}: its SHA-256 is not the manifest's").format(name=name))
    for path in backup.path.rglob("*.enc"):
        relative = path.relative_to(backup.path).as_posix()
        if relative != MANIFEST and relative not in listed:
            problems.append(_("file {name}: in the backup but not in its manifest").format(name=relative))
    return problems


def _inside(root: Path, name: str) -> Path | None:
    """``root/name`` when ``name`` stays inside ``root`` (a signed manifest still gets no ``..``)."""
    target = (root / name).resolve()
    return target if target.is_relative_to(root.resolve()) and ".." not in Path(name).parts else None


def scratch_environment(scratch: Path) -> dict[str, str]:
    """The environment of a ``fapiao`` command that works on the copy in ``scratch``."""
    env = dict(os.environ)
    env.update(
        FAPIAO_VAR_DIR=str(scratch),
        FAPIAO_DATABASE_URL=f"sqlite:///{scratch / DATABASE}",
        FAPIAO_EVIDENCE_DIR=str(scratch / EVIDENCE),
        FAPIAO_WITNESS_FILE=str(scratch / WITNESS[0]),
        FAPIAO_KEYS_DIR=str(settings.KEYS_DIR),
        FAPIAO_BACKUP_DIR=str(scratch / "no-backups"),
        DJANGO_SETTINGS_MODULE="fapiao.settings",
    )
    return env


def fapiao_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fapiao.cli", *args]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False
    )


def run_checks(scratch: Path) -> list[str]:
    """What an operator runs after a restore, on the copy: migrate, ledger verify, audit verify."""
    env = scratch_environment(scratch)
    problems = []
    for args in (("migrate", "--noinput"), ("ledger", "verify"), ("audit", "verify")):
        done = fapiao_command(*args, env=env)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-8:]
            problems.append(f"fapiao {' '.join(args)}: exit {done.returncode}: " + " | ".join(tail))
    return problems


# --- list and prune -------------------------------------------------------------------------------


def latest_verification(backup_id: str) -> BackupVerification | None:
    return (
        BackupVerification.objects.filter(backup_id=backup_id, finished_at__isnull=False)
        .order_by("-finished_at", "-pk")
        .first()
    )


def listing() -> list[dict[str, Any]]:
    """Every complete backup, newest first, with the result of its latest verification."""
    rows = []
    for backup in reversed(store.all_stored()):
        verification = latest_verification(backup.backup_id)
        rows.append(
            {
                "id": backup.backup_id,
                "created_at": backup.created_at,
                "engine": backup.index.get("engine", ""),
                "files": backup.index.get("files", 0),
                "bytes": backup.size,
                "verified": None if verification is None else verification.ok,
                "verified_at": utc_stamp(verification.finished_at)
                if verification and verification.finished_at
                else None,
            }
        )
    return rows


class PruneKeepsNothingError(InvalidValueError):
    """Keep at least one backup: --keep-daily, --keep-weekly and --keep-monthly are all 0."""

    code = "prune_keeps_nothing"


def prune(*, daily: int, weekly: int, monthly: int, dry_run: bool = False) -> tuple[list[str], list[str]]:
    """Remove the backups a daily/weekly/monthly retention no longer keeps (never the newest
    verified one); returns (kept, removed)."""
    if daily < 0 or weekly < 0 or monthly < 0 or not daily + weekly + monthly:
        raise PruneKeepsNothingError()
    directory = store.backup_dir()
    with store.exclusive(directory):
        backups = store.all_stored()
        kept_rows = [
            Kept(b.backup_id, _created(b), bool((v := latest_verification(b.backup_id)) and v.ok))
            for b in backups
        ]
        keep = backups_to_keep(kept_rows, daily=daily, weekly=weekly, monthly=monthly)
        removed = [b.backup_id for b in backups if b.backup_id not in keep]
        if not dry_run:
            for backup_id in removed:
                shutil.rmtree(directory / backup_id)
                audit_record(actor=None, action="backup.prune", target_type="backup", target_id=backup_id)
    return sorted(keep), removed


def _created(backup: Stored) -> datetime:
    return datetime.fromisoformat(backup.created_at.replace("Z", "+00:00"))
