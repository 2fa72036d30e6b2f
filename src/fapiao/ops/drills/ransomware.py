"""``fapiao drill ransomware``: the database, evidence, keys and online backups are encrypted by an
attacker; the installation is rebuilt from the offline copies and the merchants' receipts
(应急预案, scenario 8).

On the scratch copy (:mod:`fapiao.ops.drills.scratch`): a backup made (it is verified on the clean
host), copied with the key directory to an "offline" folder (the plan's offline backup and key
safe), invoices issued after it (merchants keep the receipts), then the attack: the database,
every evidence file, every key file and every online backup overwritten with random bytes.
``fapiao ledger verify`` fails. The way back is the plan's, with the scratch folder as the clean
host: the encrypted files moved to a quarantine folder (never deleted), keys and backups put back
from the offline copies, ``fapiao backup verify``, ``fapiao backup restore --force`` (exit 1: it
names the entries written after the backup), ``fapiao ledger replay`` with the receipts, ``fapiao
ledger verify`` exit 0, ``fapiao audit verify`` (only the records after the backup lost), the
signing key declared compromised since the attack, ``fapiao keys rotate-data``, and a new backup
made and verified. RPO: per log, what the restore lost — the replay must bring back every entry.
RTO: from the attack until the ledger verifies clean.
"""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from fapiao.ops.backup.service import database_path
from fapiao.ops.drills import Scenario, register, scratch

NAME = "ransomware"


def add_arguments(parser: Any) -> None:
    scratch.add_arguments(parser, invoices=4)


def run(options: dict[str, Any]) -> dict[str, Any]:
    return scratch.run_drill(NAME, options, inside, markdown, default_invoices=4)


def _files(*folders: Path) -> list[Path]:
    return [
        path for folder in folders if folder.is_dir() for path in sorted(folder.rglob("*")) if path.is_file()
    ]


def _encrypt(path: Path) -> None:
    """What the attacker leaves: the same size of random bytes, and a new name."""
    size = path.stat().st_size
    path.write_bytes(secrets.token_bytes(max(size, 64)))
    path.rename(path.with_name(path.name + ".locked"))


def _attack(record: scratch.Record, live: Path, *folders: Path) -> int:
    began = time.monotonic()
    connections.close_all()
    for suffix in ("-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    victims = [live, *_files(*folders)]
    for path in victims:
        _encrypt(path)
    record.step("encrypted", began, not live.exists(), files=len(victims))
    return len(victims)


def _clean_host(record: scratch.Record, work: Path, live: Path, victims: int) -> None:
    """The scratch folder stands for the clean host: the encrypted files moved to a quarantine
    (never deleted), keys and backups back from the offline copies."""
    began = time.monotonic()
    connections.close_all()
    quarantine = work / "quarantine"
    quarantine.mkdir(mode=0o700)
    for path in _files(work):
        if path.name.endswith(".locked"):
            path.rename(quarantine / str(path.relative_to(work)).replace("/", "__"))
    for suffix in ("", "-wal", "-shm"):  # what the failed verify left: an empty database file
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    for name in ("backups", "keys"):
        shutil.copytree(work / "offline" / name, work / name, dirs_exist_ok=True)
    quarantined = len(_files(quarantine))
    record.step("clean_host", began, quarantined == victims, quarantined=quarantined)


def inside(work: Path, count: int) -> dict[str, Any]:
    record = scratch.Record(work=work)
    live = database_path()
    keys, evidence, backups = (
        Path(settings.KEYS_DIR),
        Path(settings.FAPIAO_EVIDENCE_DIR),
        Path(settings.FAPIAO_BACKUP_DIR),
    )
    began = time.monotonic()
    record.check(scratch.command("backup", "create"), when="before the attack")
    backup_id = str((scratch.command("backup", "list", "--json").json().get("backups") or [{}])[0].get("id"))
    offline = work / "offline"
    shutil.copytree(backups, offline / "backups")
    shutil.copytree(keys, offline / "keys")
    old_key = str(scratch.command("keys", "list", "--json").json().get("current"))
    issued = scratch.issue_invoices(work / "receipts", count)
    before = scratch.counts()
    record.step("before", began, bool(issued), backup_id=backup_id, issued=len(issued))

    attacked_at = time.monotonic()
    since = timezone.now().isoformat()
    victims = _attack(record, live, evidence, keys, backups)
    record.check(scratch.ledger_verify(), expect=1, when="after the attack")

    _clean_host(record, work, live, victims)
    record.check(scratch.command("migrate", "--noinput"), when="a fresh installation on the clean host")
    record.check(scratch.command("backup", "list"))
    record.check(scratch.command("backup", "verify", backup_id))
    restored = scratch.command("backup", "restore", backup_id, "--force")
    record.check(restored, expect=1, when="entries written after the backup are named")
    connections.close_all()
    after_restore = scratch.counts()
    lost = {log: size - after_restore["log_sizes"].get(log, 0) for log, size in before["log_sizes"].items()}
    lost = {log: entries for log, entries in lost.items() if entries}

    began = time.monotonic()
    replayed = scratch.command("ledger", "replay", str(work / "receipts"), "--json")
    record.check(replayed)
    brought_back = {log["log"]: log["appended_count"] for log in (replayed.json() or {}).get("logs", [])}
    record.step("replay", began, brought_back == lost, brought_back=brought_back)
    record.check(scratch.ledger_verify())
    rto = time.monotonic() - attacked_at
    audit = scratch.audit_after_restore(record)
    record.step("counts_back", began, scratch.counts() == before)

    began = time.monotonic()
    record.check(scratch.command("keys", "compromised", old_key, "--since", since))
    record.check(scratch.command("keys", "rotate-data"))
    new_key = str(scratch.command("keys", "list", "--json").json().get("current"))
    record.step("keys_replaced", began, new_key != old_key, old_key=old_key, new_key=new_key)
    scratch.backup_and_verify(record)
    record.check(scratch.ledger_verify())
    return record.result(ok=True, rto_seconds=rto, rpo=lost, backup_id=backup_id, audit_after_restore=audit)


def markdown(report: dict[str, Any]) -> str:
    return scratch.markdown(report)


register(
    Scenario(
        NAME,
        "database, evidence, keys and online backups encrypted: rebuilt from offline copies and receipts",
        run,
        add_arguments,
        markdown,
    )
)
