"""The backups as the 备份与演练 page shows them: each backup, its age, the result of its latest
verification and the key versions a restore of it needs.

The key versions come from the backup's signed manifest, which only this installation's backup
key opens: the newest :data:`KEYS_READ` backups are opened (a manifest is small); a manifest that
does not open is shown as such — on the page that is a warning in itself; the reason is what
``fapiao backup verify ID`` prints (the page does not show file paths).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from fapiao.core.errors import FapiaoError
from fapiao.ops.backup import store
from fapiao.ops.backup.retention import latest_verification
from fapiao.ops.backup.verification import open_manifest

KEYS_READ = 10
SHOWN = 100
NO_KEY = "no_key"  # this installation has no readable backup key
UNREADABLE = "unreadable"  # the manifest does not open with it


@dataclass(frozen=True)
class BackupStatus:
    backup_id: str
    created_at: datetime | None
    age: timedelta | None
    files: int
    size: int
    verified: bool | None  # None: never verified
    verified_at: datetime | None
    problems: list[str] = field(default_factory=list)
    backup_key: str = ""
    signing_keys: list[str] = field(default_factory=list)
    data_keys: list[int] = field(default_factory=list)
    keys_read: bool = False  # whether the manifest was opened (the key lists are known)
    keys_problem: str = ""  # why the key lists are unknown: NO_KEY, UNREADABLE ("": read, or not tried)

    @property
    def age_hours(self) -> float | None:
        return None if self.age is None else self.age.total_seconds() / 3600


def backups(now: datetime | None = None) -> list[BackupStatus]:
    """Every complete backup, newest first (at most :data:`SHOWN`)."""
    now = now or timezone.now()
    stored = list(reversed(store.all_stored()))[:SHOWN]
    key: bytes | None
    key_error = ""
    try:
        key = store.backup_key()
    except (FapiaoError, OSError, ValueError):
        key, key_error = None, NO_KEY
    found = []
    for index, backup in enumerate(stored):
        created = _created(backup.created_at)
        verification = latest_verification(backup.backup_id)
        keys: dict[str, object] = {}
        unread = key_error
        if key is not None and index < KEYS_READ:
            try:
                keys = dict(open_manifest(backup, key).get("keys") or {})
            except (FapiaoError, OSError, ValueError):
                unread = UNREADABLE
        found.append(
            BackupStatus(
                backup_id=backup.backup_id,
                created_at=created,
                age=None if created is None else now - created,
                files=int(backup.index.get("files", 0) or 0),
                size=backup.size,
                verified=None if verification is None else verification.ok,
                verified_at=None if verification is None else verification.finished_at,
                problems=[str(p) for p in (verification.problems if verification else [])][:10],
                backup_key=str(backup.index.get("backup_key_id", "")),
                signing_keys=[str(k) for k in _list(keys.get("signing"))],
                data_keys=[int(str(k)) for k in _list(keys.get("data"))],
                keys_read=bool(keys),
                keys_problem="" if keys or index >= KEYS_READ else unread,
            )
        )
    return found


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _created(stamp: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None
