"""``fapiao backup list`` and ``prune``: what is kept, with the result of its latest verification."""

from __future__ import annotations

import shutil
from datetime import datetime
from typing import Any

from fapiao.audit.services import record as audit_record
from fapiao.core.backup import (
    Kept,
    backups_to_keep,
)
from fapiao.core.canonical import utc_stamp
from fapiao.core.errors import InvalidValueError
from fapiao.ops.backup import store
from fapiao.ops.backup.store import Stored
from fapiao.ops.models import BackupVerification

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
