"""PostgreSQL backups with pgBackRest on a throwaway cluster (docs/operations/backup.md, PostgreSQL):
`backup setup` on an existing cluster, full and incremental backups while the cluster runs, `backup
verify` on a throwaway cluster restored from the repository, and a point-in-time restore to a
moment between two invoices that has the first and not the second.

Needs pgBackRest and the PostgreSQL server binaries; under CI (CI=true) they must be there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.conftest import VALID_INVOICE
from tests.integration.pg_cluster import PgCluster, server_env, throwaway_cluster

pytestmark = pytest.mark.slow


def _needs_pgbackrest() -> None:
    if shutil.which("pgbackrest") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI: pgbackrest (Debian package pgbackrest) is required for the PostgreSQL tests")
        pytest.skip("pgbackrest is not installed")


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    _needs_pgbackrest()
    with throwaway_cluster() as made:
        with psycopg.connect(made.url(), autocommit=True) as db:
            db.execute("CREATE DATABASE fapiao")
        yield made


def fapiao(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fapiao.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def issue(env: dict[str, str], invoice: Path) -> str:
    return str(json.loads(ok(fapiao(env, "issue", str(invoice), "--user", "clerk")))["number"])


def numbers(cluster: PgCluster) -> set[str]:
    with psycopg.connect(cluster.url("fapiao")) as db:
        return {row[0] for row in db.execute("SELECT number FROM invoices_invoice")}


def test_pitr_between_two_invoices_has_the_first_and_not_the_second(
    cluster: PgCluster, tmp_path: Path
) -> None:
    env = server_env(
        var_dir=tmp_path / "var",
        database_url=cluster.url("fapiao"),
        FAPIAO_BACKUP_DIR=str(tmp_path / "backups"),
        FAPIAO_PGBACKREST_CONFIG=str(cluster.root / "pgbackrest" / "fapiao.conf"),
        FAPIAO_PGBACKREST_REPO=str(cluster.root / "repo"),
    )
    ok(fapiao(env, "migrate", "--noinput"))
    ok(fapiao(env, "demo"))
    invoice = tmp_path / "invoice.json"
    invoice.write_text(json.dumps(VALID_INVOICE, ensure_ascii=False), encoding="utf-8")
    issue(env, invoice)

    # An existing cluster without archiving: setup switches it on, which needs a restart.
    first = fapiao(env, "backup", "setup")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "archive_command" in first.stdout and "重启" in first.stderr
    cluster.stop()
    cluster.start()
    ok(fapiao(env, "backup", "setup"))
    assert (cluster.root / "pgbackrest" / "fapiao.conf").stat().st_mode & 0o077 == 0

    ok(fapiao(env, "backup", "create", "--type", "full"))
    ok(fapiao(env, "backup", "create", "--type", "incr"))
    listed = json.loads(ok(fapiao(env, "backup", "list", "--json")))["backups"]
    assert [b["engine"] for b in listed] == ["postgresql", "postgresql"]
    incremental = listed[0]["id"]

    verified = json.loads(ok(fapiao(env, "backup", "verify", incremental, "--json")))
    assert verified["ok"] is True and verified["problems"] == [] and verified["invoices"] == 1

    before = issue(env, invoice)
    time.sleep(1.5)
    moment = datetime.now(UTC).isoformat()
    time.sleep(1.5)
    after = issue(env, invoice)
    assert {before, after} <= numbers(cluster)

    refused = fapiao(env, "backup", "restore", incremental, "--target-time", moment)
    assert refused.returncode == 1 and "--force" in refused.stderr
    too_early = fapiao(
        env, "backup", "restore", incremental, "--target-time", "2020-01-01T00:00:00Z", "--force"
    )
    assert too_early.returncode == 1 and "早于备份" in too_early.stderr, too_early.stderr

    done = fapiao(env, "backup", "restore", incremental, "--target-time", moment, "--force", timeout=600)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # the second invoice is lost
    assert "log_shorter" in done.stderr and "91110108MA01ABCD84" in done.stderr
    found = numbers(cluster)
    assert before in found and after not in found
    # The audit records of the second invoice are lost for good: named, the old audit witness kept
    # aside, the witness re-based, so audit verify is clean.
    assert "audit_lost" in done.stderr and "audit:91110108MA01ABCD84" in done.stderr
    assert list((tmp_path / "var" / "witness").glob("audit-heads.jsonl.before-restore-*"))
    audit = fapiao(env, "audit", "verify")
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]
