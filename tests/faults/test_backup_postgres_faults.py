"""The backup faults of docs/operations/backup.md on PostgreSQL (pgBackRest), beside their SQLite
versions in test_backup.py: a flipped byte in the pgBackRest repository or in one of our own
archives fails ``backup verify`` and names the file; a wrong repository cipher pass is refused;
kill -9 of ``backup create`` (its whole process group: pgBackRest with it) lists nothing and the
next run succeeds.

One throwaway cluster with one full backup serves the module; each test puts back what it broke.
Needs pgBackRest and the PostgreSQL server binaries; under CI (CI=true) they must be there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import VALID_INVOICE
from tests.faults.test_backup_postgres import _needs_pgbackrest, fapiao, issue, ok
from tests.integration.pg_cluster import PgCluster, server_env, throwaway_cluster

pytestmark = pytest.mark.slow


@dataclass
class Installation:
    cluster: PgCluster
    env: dict[str, str]
    backups: Path
    repo: Path
    config: Path
    backup_id: str


def listed(env: dict[str, str]) -> list[str]:
    return [b["id"] for b in json.loads(ok(fapiao(env, "backup", "list", "--json")))["backups"]]


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    _needs_pgbackrest()
    tmp = tmp_path_factory.mktemp("pg-backup-faults")
    with throwaway_cluster() as cluster:
        with psycopg.connect(cluster.url(), autocommit=True) as db:
            db.execute("CREATE DATABASE fapiao")
        config = cluster.root / "pgbackrest" / "fapiao.conf"
        env = server_env(
            var_dir=tmp / "var",
            database_url=cluster.url("fapiao"),
            FAPIAO_BACKUP_DIR=str(tmp / "backups"),
            FAPIAO_PGBACKREST_CONFIG=str(config),
            FAPIAO_PGBACKREST_REPO=str(cluster.root / "repo"),
        )
        ok(fapiao(env, "migrate", "--noinput"))
        ok(fapiao(env, "demo"))
        invoice = tmp / "invoice.json"
        invoice.write_text(json.dumps(VALID_INVOICE, ensure_ascii=False), encoding="utf-8")
        issue(env, invoice)
        fapiao(env, "backup", "setup")  # switches archiving on: needs the restart that follows
        cluster.stop()
        cluster.start()
        ok(fapiao(env, "backup", "setup"))
        ok(fapiao(env, "backup", "create", "--type", "full"))
        yield Installation(cluster, env, tmp / "backups", cluster.root / "repo", config, listed(env)[0])


def _flip(path: Path) -> bytes:
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    return original


def _repository_files(installation: Installation) -> list[Path]:
    """The backup's data files in the pgBackRest repository, largest first."""
    found = [
        path
        for path in installation.repo.glob("backup/*/*/pg_data/base/**/*")
        if path.is_file() and path.stat().st_size > 0
    ]
    return sorted(found, key=lambda path: path.stat().st_size, reverse=True)


def test_a_flipped_byte_in_the_repository_fails_verify_and_names_the_file(installation: Installation):
    damaged = _repository_files(installation)[0]
    original = _flip(damaged)
    try:
        done = fapiao(installation.env, "backup", "verify", installation.backup_id)
        said = done.stdout + done.stderr
        assert done.returncode != 0, said
        assert damaged.name.split(".")[0] in said, said[-3000:]
    finally:
        damaged.write_bytes(original)
    again = fapiao(installation.env, "backup", "verify", installation.backup_id)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]


def test_a_flipped_byte_in_our_own_archive_fails_verify_and_names_the_file(installation: Installation):
    archives = sorted((installation.backups / installation.backup_id).rglob("*.enc"))
    damaged = next(path for path in archives if path.name != "manifest.json.enc")
    original = _flip(damaged)
    try:
        done = fapiao(installation.env, "backup", "verify", installation.backup_id)
        assert done.returncode != 0
        relative = damaged.relative_to(installation.backups / installation.backup_id).as_posix()
        assert relative.removesuffix(".enc") in done.stdout + done.stderr
    finally:
        damaged.write_bytes(original)


def test_a_wrong_repository_cipher_pass_is_refused(installation: Installation):
    text = installation.config.read_text()
    lines = [
        "repo1-cipher-pass=not-the-pass" if line.startswith("repo1-cipher-pass=") else line
        for line in text.splitlines()
    ]
    installation.config.write_text("\n".join(lines) + "\n")
    try:
        done = fapiao(installation.env, "backup", "verify", installation.backup_id)
        said = done.stdout + done.stderr
        assert done.returncode != 0, said
        assert "Traceback" not in said, said[-3000:]
        assert "无法用" in said and "解密" in said and str(installation.config) in said, said[-3000:]
        assert "\ufffd" not in said  # none of what pgBackRest "decrypted" with the wrong pass
    finally:
        installation.config.write_text(text)


def test_kill_9_during_create_lists_nothing_and_the_next_run_succeeds(installation: Installation):
    before = listed(installation.env)
    process = subprocess.Popen(
        [sys.executable, "-m", "fapiao.cli", "backup", "create", "--type", "full"],
        env=installation.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: pgBackRest dies with it, as with the host
    )
    deadline = time.monotonic() + 120
    while (
        not list(installation.backups.glob(".partial-*"))
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    time.sleep(0.5)  # into pgBackRest's work
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert listed(installation.env) == before
    ok(fapiao(installation.env, "backup", "create", "--type", "full"))
    after = listed(installation.env)
    assert len(after) == len(before) + 1
    assert not list(installation.backups.glob(".partial-*"))
    verified = json.loads(ok(fapiao(installation.env, "backup", "verify", after[0], "--json")))
    assert verified["ok"] is True, verified
