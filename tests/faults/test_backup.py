"""Backups taken from a real server under write load, then broken every way the issue names
(docs/operations/backup.md): each backup is proven by restoring it, and every fault is refused.

One server (gunicorn, group commit) on a SQLite var dir serves all the tests of this module; the
`fapiao backup` commands run as separate processes, as an operator's cron or shell would.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VALID_INVOICE
from tests.faults.server import LiveServer

MERCHANT = "91110108MA01ABCD84"  # the demo clerk's merchant


def _post_invoice(server: LiveServer, token: str, key: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(
            "POST",
            "/api/v1/invoices",
            body=json.dumps(VALID_INVOICE).encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def fapiao(
    server: LiveServer, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [server.python, "-m", "fapiao.cli", *args],
        env={**server.environment(), **(env or {})},
        cwd=server.var_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def backups(server: LiveServer) -> list[dict[str, Any]]:
    done = fapiao(server, "backup", "list", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["backups"])


def newest_backup(server: LiveServer) -> str:
    return str(backups(server)[0]["id"])


def invoice_count(server: LiveServer) -> int:
    with sqlite3.connect(f"file:{server.sqlite_path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM invoices_invoice").fetchone()[0])


class Load:
    """Issuing threads that keep writing until stopped; counts what was acknowledged."""

    def __init__(self, server: LiveServer, token: str, threads: int = 4) -> None:
        self.server, self.token = server, token
        self.stop = threading.Event()
        self.acknowledged = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def _run(self, number: int) -> None:
        sent = 0
        while not self.stop.is_set():
            sent += 1
            if _post_invoice(self.server, self.token, f"load-{number}-{sent}-{time.monotonic_ns()}") == 201:
                with self._lock:
                    self.acknowledged += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("backup") / "var", workers=2, threads=8)
    live.prepare()
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def token(server: LiveServer) -> str:
    return server.token()


@pytest.fixture(scope="module")
def loaded_backups(server: LiveServer, token: str) -> list[str]:
    """Two backups taken while four clients keep issuing invoices."""
    for n in range(5):
        assert _post_invoice(server, token, f"before-{n}") == 201
    made = []
    with Load(server, token) as load:
        time.sleep(0.5)
        for _ in range(2):
            done = fapiao(server, "backup", "create")
            assert done.returncode == 0, done.stderr
            made.append(newest_backup(server))
            time.sleep(0.3)
    assert load.acknowledged > 0, "the load never wrote: the backups were not taken under writes"
    return made


def test_backups_taken_under_load_restore_and_verify_clean(server: LiveServer, loaded_backups: list[str]):
    listed = {row["id"] for row in backups(server)}
    assert set(loaded_backups) <= listed
    for backup_id in loaded_backups:
        done = fapiao(server, "backup", "verify", backup_id, "--json")
        result = json.loads(done.stdout)
        assert done.returncode == 0 and result["ok"], result
        assert 5 <= result["invoices"] <= invoice_count(server)
    assert all(row["verified"] for row in backups(server) if row["id"] in loaded_backups)


def test_readyz_reports_the_verified_backup(server: LiveServer, loaded_backups: list[str]):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/readyz")
    checks = json.loads(connection.getresponse().read())["checks"]
    assert checks["backup"] == "ok"


@pytest.mark.parametrize("damaged", ["db.sqlite3.enc", "witness/heads.jsonl.enc", "manifest.json.enc"])
def test_one_flipped_byte_fails_verify_and_names_the_file(
    server: LiveServer, loaded_backups: list[str], damaged: str
):
    path = server.var_dir / "backups" / loaded_backups[0] / damaged
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    try:
        done = fapiao(server, "backup", "verify", loaded_backups[0])
        assert done.returncode != 0
        assert damaged.removesuffix(".enc") in done.stdout + done.stderr
    finally:
        path.write_bytes(original)


def test_a_wrong_backup_key_is_refused_and_nothing_is_restored(server: LiveServer, loaded_backups: list[str]):
    other_key = "A" * 43 + "="
    before = server.sqlite_path.stat().st_mtime_ns
    done = fapiao(server, "backup", "verify", loaded_backups[0], env={"FAPIAO_BACKUP_KEY": other_key})
    assert done.returncode != 0
    assert "备份密钥" in done.stderr  # "…was encrypted with backup key …"
    assert server.sqlite_path.stat().st_mtime_ns >= before  # the live database is not replaced


def test_a_backup_of_another_installation_is_refused(server: LiveServer, tmp_path: Path):
    """Same backup key, another installation (its own signing key): the manifest is refused."""
    key = (server.var_dir / "keys" / "backup-key").read_text().strip()
    other = LiveServer(tmp_path / "other", env={"FAPIAO_BACKUP_KEY": key})
    other.prepare()
    made = fapiao(other, "backup", "create")
    assert made.returncode == 0, made.stderr
    backup_id = newest_backup(other)
    subprocess.run(
        ["cp", "-a", str(other.var_dir / "backups" / backup_id), str(server.var_dir / "backups" / backup_id)],
        check=True,
    )
    try:
        done = fapiao(server, "backup", "verify", backup_id)
        assert done.returncode != 0
        assert "不认识该密钥" in done.stderr  # "…which this installation does not know"
    finally:
        subprocess.run(["rm", "-rf", str(server.var_dir / "backups" / backup_id)], check=True)


def test_kill_9_during_create_leaves_nothing_listed_and_the_next_run_cleans_up(
    server: LiveServer, token: str
):
    listed_before = {row["id"] for row in backups(server)}
    process = subprocess.Popen(
        [server.python, "-m", "fapiao.cli", "backup", "create"],
        env=server.environment(),
        cwd=server.var_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    directory = server.var_dir / "backups"
    deadline = time.monotonic() + 60
    while not list(directory.glob(".partial-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert {row["id"] for row in backups(server)} == listed_before
    done = fapiao(server, "backup", "create")
    assert done.returncode == 0, done.stderr
    assert not list(directory.glob(".partial-*"))
    assert len(backups(server)) == len(listed_before) + 1


def test_restore_is_refused_while_the_server_runs_or_without_force(
    server: LiveServer, loaded_backups: list[str]
):
    running = fapiao(server, "backup", "restore", loaded_backups[0], "--force")
    assert running.returncode != 0 and "正在运行" in running.stderr  # "…server is running on …"
    server.stop()
    try:
        unforced = fapiao(server, "backup", "restore", loaded_backups[0])
        assert unforced.returncode != 0 and "--force" in unforced.stderr
    finally:
        server.start()


def test_restore_names_exactly_what_the_backup_lost(server: LiveServer, token: str):
    """Invoices written after the backup: the restore reports the log's missing index range."""
    made = fapiao(server, "backup", "create")
    assert made.returncode == 0, made.stderr
    backup_id = newest_backup(server)
    with sqlite3.connect(f"file:{server.sqlite_path}?mode=ro", uri=True) as db:
        size = db.execute(
            "SELECT l.size FROM ledger_log l JOIN accounts_merchant m ON m.id = l.merchant_id "
            "WHERE m.uscc = ?",
            (MERCHANT,),
        ).fetchone()[0]
    for n in range(3):
        assert _post_invoice(server, token, f"after-backup-{n}") == 201
    server.stop()
    try:
        done = fapiao(server, "backup", "restore", backup_id, "--force")
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"日志 {MERCHANT} 丢失了备份之后写入的第 {size}..{size + 2} 条记录" in done.stderr
        assert list(server.var_dir.glob("fapiao.sqlite3.before-restore-*"))  # kept, never deleted
        incidents = fapiao(server, "incidents", "list", "--json")
        assert "restore_lost_entries" in incidents.stdout
    finally:
        server.start()


def _audit_sizes(server: LiveServer) -> dict[str, int]:
    with sqlite3.connect(f"file:{server.sqlite_path}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT name, size FROM audit_auditlog").fetchall())


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path / "var", workers=1, threads=4)
    live.prepare()
    live.start()
    try:
        yield live
    finally:
        live.stop()


def test_after_a_restore_the_audit_witness_is_rebased_and_later_backups_verify(fresh_server: LiveServer):
    """The audit records written after the backup are lost for good: the restore names their exact
    ranges (report, audit record, incident), keeps the old audit witness aside and re-bases it, so
    later ``audit verify`` and ``backup verify`` are clean instead of failing forever."""
    server = fresh_server
    token = server.token()
    assert _post_invoice(server, token, "audit-before-backup") == 201
    before_backup = _audit_sizes(server)
    assert fapiao(server, "backup", "create").returncode == 0
    backup_id = newest_backup(server)
    at_backup = _audit_sizes(server)
    # Only audit records after the backup (no ledger entry lost): a staff and a merchant record.
    assert fapiao(server, "keys", "rotate").returncode == 0
    server.token(scope="read")
    witness = server.var_dir / "witness" / "audit-heads.jsonl"
    old_witness = witness.read_bytes()
    server.stop()
    try:
        done = fapiao(server, "backup", "restore", backup_id, "--force")
        assert done.returncode == 0, done.stdout + done.stderr  # no ledger entry lost
        aside = list(witness.parent.glob("audit-heads.jsonl.before-restore-*"))
        # kept as it was (the restore's own verification, recorded before the swap, at its end)
        assert len(aside) == 1 and aside[0].read_bytes().startswith(old_witness)
        assert str(aside[0]) in done.stderr
        seen: dict[str, int] = {}  # what the witness saw: the restore can name no more than that
        for line in aside[0].read_bytes().splitlines():
            head = json.loads(line)["head"]
            seen[head["log"]] = max(seen.get(head["log"], 0), int(head["size"]))
        cut = {name: size for name, size in seen.items() if size > at_backup.get(name, 0)}
        assert "audit:staff" in cut and f"audit:{MERCHANT}" in cut
        restored = {}  # each cut log's size in the backup: the first record lost
        for name, size in cut.items():
            wanted = rf"审计日志 {name} 丢失了备份之后写入的第 (\d+)\.\.{size - 1} 条记录"
            found = re.search(wanted, done.stderr)
            assert found, done.stderr
            restored[name] = int(found[1])
            assert before_backup.get(name, 0) <= restored[name] <= at_backup.get(name, 0)
        with sqlite3.connect(f"file:{server.sqlite_path}?mode=ro", uri=True) as db:
            rotated = db.execute("SELECT COUNT(*) FROM audit_auditrecord WHERE action = 'keys.rotate'")
            assert rotated.fetchone()[0] == 0  # the records named lost are gone indeed
        with sqlite3.connect(f"file:{server.sqlite_path}?mode=ro", uri=True) as db:
            after = json.loads(
                db.execute(
                    "SELECT after FROM audit_auditrecord WHERE action = 'backup.restore' ORDER BY at DESC"
                ).fetchone()[0]
            )
        assert sorted(after["audit_lost"]) == sorted(
            f"{name}:{restored.get(name, 0)}-{size - 1}" for name, size in cut.items()
        )
        assert after["audit_witness_aside"] == str(aside[0])
        incidents = json.loads(fapiao(server, "incidents", "list", "--json").stdout)
        assert {i["details"].get("audit_log") for i in incidents["incidents"]} >= set(cut)
        audit = fapiao(server, "audit", "verify", "--json")
        assert audit.returncode == 0, audit.stdout[-2000:]
    finally:
        server.start()
    assert _post_invoice(server, token, "audit-after-restore") == 201
    assert fapiao(server, "backup", "create").returncode == 0
    verified = fapiao(server, "backup", "verify", newest_backup(server), "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert fapiao(server, "audit", "verify").returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB file system (tmpfs): too small for a backup of the server's database."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must be able to mount a small tmpfs for the disk-full test: {done.stderr}")
        pytest.skip(f"cannot mount a tmpfs here (not root?): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_while_writing_a_backup_is_a_clear_error(server: LiveServer, small_disk: Path):
    inode = server.sqlite_path.stat().st_ino
    count = invoice_count(server)
    done = fapiao(server, "backup", "create", env={"FAPIAO_BACKUP_DIR": str(small_disk)})
    assert done.returncode != 0
    assert "设备空间已满" in done.stderr  # "no space left on the device"
    assert not [p for p in small_disk.iterdir() if p.name != ".lock"]  # no partial, nothing listed
    assert server.sqlite_path.stat().st_ino == inode and invoice_count(server) == count
