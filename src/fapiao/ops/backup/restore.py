"""``fapiao backup restore ID --force``: verify, then put the backup in place of the live database.

The live database is never deleted: it is moved aside (``fapiao.sqlite3.before-restore-<time>``).
Evidence files the live store lacks are copied back; the live witness files are never
overwritten.  Each restored log is then compared with the live witness: a log the witness saw
longer lost entries written after the backup, reported with the exact missing index range and an
integrity incident; the receipts merchants kept prove each lost entry.

The audit records written after the backup cannot be brought back that way (nobody keeps a receipt
of them), so the audit witness is re-based at the restored heads (``audit.store.rebase_witness``):
the old file is kept aside, and the restore's audit record, its report and an integrity incident
per audit log name the exact ranges lost.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from fapiao.accounts.models import Merchant
from fapiao.audit.services import record as audit_record
from fapiao.audit.store import WitnessCut, rebase_witness
from fapiao.core.canonical import utc_stamp
from fapiao.core.choices import IncidentKind
from fapiao.core.errors import ConflictError, InvalidValueError
from fapiao.ledger.incidents import open_incident
from fapiao.ledger.models import Log
from fapiao.ops.backup import pgbackrest, store
from fapiao.ops.backup.service import DATABASE, EVIDENCE, database_path, scratch_root
from fapiao.ops.backup.verification import open_manifest, verify_backup
from fapiao.ops.models import BackupVerification
from fapiao.ops.running import no_server
from fapiao.platform import keys
from fapiao.platform.verifying import read_witness


class RestoreNeedsForceError(InvalidValueError):
    """A restore replaces the live database (which is kept aside, not deleted). Add --force to go ahead."""

    code = "restore_needs_force"


class PointInTimeNeedsPostgresError(InvalidValueError):
    """--target-time is for PostgreSQL (pgBackRest replays its WAL archive); a SQLite backup restores as it was taken."""  # noqa: E501

    code = "point_in_time_needs_postgres"


class BackupOfAnotherEngineError(ConflictError):
    """Backup {backup_id} is of {engine}; this installation runs on {vendor}."""

    code = "backup_of_another_engine"


class RestoreRefusedError(ConflictError):
    """Backup {backup_id} did not verify, so nothing was restored: {problems}"""

    code = "restore_refused"


@dataclass(frozen=True)
class LostRange:
    log: str
    first: int  # the first missing index
    last: int  # the last missing index (inclusive)
    incident: int | None


@dataclass
class Restored:
    backup_id: str
    moved_aside: Path | None
    evidence_copied: int
    lost: list[LostRange] = field(default_factory=list)
    audit_lost: list[LostRange] = field(default_factory=list)
    audit_witness_aside: Path | None = None  # the audit witness as it was before the restore


def restore_backup(backup_id: str, *, force: bool, target_time: str | None = None) -> Restored:
    postgres = store.stored(backup_id).index.get("engine") == "postgresql"
    if postgres:
        return _restore_postgres(backup_id, force=force, target_time=target_time)
    if target_time:
        raise PointInTimeNeedsPostgresError()
    if not force:
        raise RestoreNeedsForceError()
    with no_server():
        scratch = scratch_root() / f"restore-{backup_id}"
        # The live database is gone (the disaster itself): nothing can be recorded in it until the
        # backup is in its place; the verification is recorded in the restored database instead.
        gone = not _has_tables(database_path())
        try:
            verified = verify_backup(backup_id, keep=scratch, record=not gone)
            if not verified.ok:
                raise RestoreRefusedError(backup_id=backup_id, problems="; ".join(verified.problems[:5]))
            connection.close()
            moved = _replace_database(scratch / DATABASE)
            copied = _copy_missing_evidence(scratch / EVIDENCE)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        rebased = _rebase_audit_witness()  # before the restored database gets any audit record
        if verified.unrecorded is not None:
            verified.unrecorded.save()
        lost = compare_with_witness()
        restored = Restored(backup_id, moved, copied, lost, *_audit_incidents(*rebased))
    return _restored(restored)


def _restore_postgres(backup_id: str, *, force: bool, target_time: str | None) -> Restored:
    """Verify the backup, then have pgBackRest restore the live cluster in place (``--delta``) to
    the backup's consistent point or to ``target_time`` (its WAL archive replayed up to it)."""
    if connection.vendor != "postgresql":
        raise BackupOfAnotherEngineError(backup_id=backup_id, engine="postgresql", vendor=connection.vendor)
    target = pgbackrest.parse_target_time(target_time) if target_time else None
    if not force:
        raise RestoreNeedsForceError()
    with no_server():
        part = open_manifest(store.stored(backup_id), store.backup_key())["engine"]["pgbackrest"]
        consistent = datetime.fromisoformat(str(part["consistent_at"]).replace("Z", "+00:00"))
        if target is not None and target < consistent:
            raise pgbackrest.TargetTimeTooEarlyError(
                target=utc_stamp(target), backup_id=backup_id, at=part["consistent_at"]
            )
        scratch = scratch_root() / f"restore-{backup_id}"
        try:
            verified = verify_backup(backup_id, keep=scratch)
            if not verified.ok:
                raise RestoreRefusedError(backup_id=backup_id, problems="; ".join(verified.problems[:5]))
            pgbackrest.restore_live(part, target)
            copied = _copy_missing_evidence(scratch / EVIDENCE)
            rebased = _rebase_audit_witness()  # before the restored database gets any audit record
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        lost = compare_with_witness()
        restored = Restored(backup_id, None, copied, lost, *_audit_incidents(*rebased))
    return _restored(restored, target_time=utc_stamp(target) if target else None)


def _restored(restored: Restored, **extra: object) -> Restored:
    """Record the restore in the audit trail: what the witness says was lost, the evidence copied back."""
    audit_record(
        actor=None,
        action="backup.restore",
        target_type="backup",
        target_id=restored.backup_id,
        after={
            "lost": [f"{r.log}:{r.first}-{r.last}" for r in restored.lost],
            "audit_lost": [f"{r.log}:{r.first}-{r.last}" for r in restored.audit_lost],
            "audit_witness_rebased": restored.audit_witness_aside is not None,
            "audit_witness_aside": str(restored.audit_witness_aside or ""),
            "evidence_copied": restored.evidence_copied,
            **extra,
        },
    )
    return restored


def _rebase_audit_witness() -> tuple[list[WitnessCut], Path | None]:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    return rebase_witness(suffix=f"before-restore-{stamp}")


def _audit_incidents(cuts: list[WitnessCut], aside: Path | None) -> tuple[list[LostRange], Path | None]:
    """An integrity incident for each audit log the restore cut short: the records it lost."""
    lost = []
    for cut in cuts:
        details: dict[str, Any] = {
            "log": cut.log,
            "audit_log": cut.log,
            "first_missing": cut.first,
            "last_missing": cut.last,
            "restored_size": cut.first,
            "witness_size": cut.last + 1,
            "witness_kept_as": str(aside or ""),
        }
        incident, _created = open_incident(
            kind=IncidentKind.RESTORE_LOST_ENTRIES,
            merchant=None,
            identity={"audit_log": cut.log, "restored_size": cut.first, "witness_size": cut.last + 1},
            details=details,
        )
        lost.append(LostRange(cut.log, cut.first, cut.last, incident.pk))
    return lost, aside


def _has_tables(path: Path) -> bool:
    """Whether ``path`` is a database with this installation's tables (not lost, not empty)."""
    if not path.is_file() or not path.stat().st_size:
        return False
    try:
        reading = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = reading.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                [BackupVerification._meta.db_table],
            ).fetchone()
        finally:
            reading.close()
    except sqlite3.Error:
        return False
    return found is not None


def _replace_database(restored: Path) -> Path | None:
    live = database_path()
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    aside = live.with_name(f"{live.name}.before-restore-{stamp}")
    moved = None
    for suffix in ("", "-wal", "-shm"):
        current = Path(f"{live}{suffix}")
        if current.exists():
            os.rename(current, Path(f"{aside}{suffix}"))
            moved = aside
    shutil.move(restored, live)
    os.chmod(live, 0o600)
    return moved


def _copy_missing_evidence(source: Path) -> int:
    target_root = Path(settings.FAPIAO_EVIDENCE_DIR)
    copied = 0
    if not source.is_dir():
        return 0
    for blob in source.rglob("*"):
        if not blob.is_file():
            continue
        target = target_root / blob.relative_to(source)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(blob, target)
        os.chmod(target, 0o600)
        copied += 1
    return copied


def compare_with_witness() -> list[LostRange]:
    """Each log against the live witness: the index ranges the witness saw that the log lacks."""
    witnessed, _findings = read_witness(Path(settings.FAPIAO_WITNESS_FILE), keys=keys.registry())
    sizes = {log.merchant.uscc: log.size for log in Log.objects.select_related("merchant")}
    merchants = {m.uscc: m for m in Merchant.objects.filter(uscc__in=list(witnessed))}
    lost = []
    for name, seen in sorted(witnessed.items()):
        have = sizes.get(name, 0)
        if seen.max_size <= have:
            continue
        details: dict[str, Any] = {
            "log": name,
            "first_missing": have,
            "last_missing": seen.max_size - 1,
            "restored_size": have,
            "witness_size": seen.max_size,
        }
        incident, _created = open_incident(
            kind=IncidentKind.RESTORE_LOST_ENTRIES,
            merchant=merchants.get(name),
            identity={"log": name, "restored_size": have, "witness_size": seen.max_size},
            details=details,
        )
        lost.append(LostRange(name, have, seen.max_size - 1, incident.pk))
    return lost
