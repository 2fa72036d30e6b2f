"""``fapiao backup verify``: restore into scratch, run the checks an operator would, compare with
the manifest."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from fapiao.audit.services import record as audit_record
from fapiao.core.backup import (
    BackupDamagedError,
    ManifestRefusedError,
    backup_key_id,
    compare_summaries,
    decrypt_stream,
    verify_manifest,
)
from fapiao.core.errors import FapiaoError, _
from fapiao.ops.backup import pgbackrest, store
from fapiao.ops.backup.service import (
    CHECK_TIMEOUT,
    DATABASE,
    EVIDENCE,
    WITNESS,
    create_private_file,
    engine,
    scratch_root,
    summary_of,
)
from fapiao.ops.backup.store import MANIFEST, BackupKeyError, Stored, encrypted_name
from fapiao.ops.models import BackupVerification
from fapiao.platform import keys

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
    sink = io.BytesIO()
    with path.open("rb") as reading:
        decrypt_stream(reading, sink, key=key, backup_id=backup.backup_id, name=MANIFEST)
    try:
        document = json.loads(sink.getvalue())
    except ValueError:
        raise ManifestRefusedError(reason=_("it is not a signed fapiao-backup/1 manifest")) from None
    return verify_manifest(document, keys.registry(), backup_id=backup.backup_id)


@dataclass
class Verified:
    backup_id: str
    ok: bool
    problems: list[str]
    seconds: float
    invoices: int = 0
    entries: int = 0
    unrecorded: BackupVerification | None = None  # with record=False: the row to save later


def verify_backup(backup_id: str, *, keep: Path | None = None, record: bool = True) -> Verified:
    """Restore into scratch, run the checks, compare with the manifest; the result is recorded.

    A refused manifest (wrong key, another installation, a changed signature) raises: nothing is
    restored.  ``keep``: leave the checked copy there (used by restore).  ``record=False``: the
    live database is gone (a restore after losing it): nothing is written to it; the result's
    ``unrecorded`` row is saved by the caller once a database is back."""
    engine()
    started = time.monotonic()
    run = BackupVerification(backup_id=backup_id, started_at=timezone.now())
    if record:
        run.save()
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
            found = _check_database(manifest, scratch, problems)
            found.pop("keys", None)
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
        if record:
            run.save()
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    if not record:
        seconds = time.monotonic() - started
        return Verified(backup_id, not problems, problems, seconds, run.invoices, run.entries, unrecorded=run)
    audit_record(
        actor=None,
        action="backup.verify",
        target_type="backup",
        target_id=backup_id,
        after={"ok": not problems, "problems": problems[:20]},
    )
    return Verified(backup_id, not problems, problems, time.monotonic() - started, run.invoices, run.entries)


def _check_database(manifest: dict[str, Any], scratch: Path, problems: list[str]) -> dict[str, Any]:
    """Run the checks on the restored database and recompute its summary: the SQLite copy in
    ``scratch``, or a throwaway cluster on pgBackRest's restore of the backup (PostgreSQL)."""
    part = manifest.get("engine", {}).get("pgbackrest")
    if part is None:
        found, summary = run_checks(scratch_environment(scratch), lambda: summary_of(scratch / DATABASE))
        problems += found
        return summary
    with pgbackrest.scratch_cluster(part) as cluster:
        env = scratch_environment(scratch)
        env["FAPIAO_DATABASE_URL"] = cluster.url
        found, summary = run_checks(env, lambda: pgbackrest.scratch_summary(cluster))
        problems += found
        return summary


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
            with source.open("rb") as reading, create_private_file(target) as writing:
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
        # A verify on the copy keeps what it finds there (for the copy's own report): no mail to
        # merchants about a copy's findings (issue 14 notifies them), so no mail server at all.
        FAPIAO_SMTP_HOST="",
        DJANGO_SETTINGS_MODULE="fapiao.settings",
    )
    return env


def fapiao_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fapiao.cli", *args]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False
    )


def run_checks(
    env: dict[str, str], summary: Callable[[], dict[str, Any]]
) -> tuple[list[str], dict[str, Any]]:
    """What an operator runs after a restore, on the copy: ``migrate``, then ``ledger verify`` and
    ``audit verify`` side by side (both only read), while ``summary`` recomputes the manifest's
    summary of the migrated copy in a thread.  Returns the problems and the summary."""
    problems = _failed(("migrate", "--noinput"), fapiao_command("migrate", "--noinput", env=env))
    with ThreadPoolExecutor(max_workers=3) as pool:
        summarised = pool.submit(summary)
        checks = {
            args: pool.submit(fapiao_command, *args, env=env)
            for args in (("ledger", "verify"), ("audit", "verify"))
        }
        for args, done in checks.items():
            problems += _failed(args, done.result())
        return problems, summarised.result()


def _failed(args: tuple[str, ...], done: subprocess.CompletedProcess[str]) -> list[str]:
    if done.returncode == 0:
        return []
    tail = (done.stdout + done.stderr).strip().splitlines()[-8:]
    return [f"fapiao {' '.join(args)}: exit {done.returncode}: " + " | ".join(tail)]
