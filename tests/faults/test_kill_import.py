"""kill -9 in the middle of a 10,000-record import, then ``--resume``: nothing is imported twice or
half, and the final manifest equals an uninterrupted run's except for the fields that name the run
(``run``, ``started_at``, ``committed_at``; and the signature, made with each installation's key)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from fapiao.invoices.import_manifest import RUN_FIELDS
from tests.faults.server import LiveServer
from tests.integration.import_helpers import MERCHANT, csv_rows, save_mapping, write_csv

pytestmark = pytest.mark.slow
RECORDS = int(os.environ.get("FAPIAO_KILL_IMPORT_RECORDS", "10000"))


def _prepared(var_dir: Path, csv_path: Path) -> LiveServer:
    server = LiveServer(var_dir, env={"FAPIAO_IMPORT_MAPPINGS_DIR": str(csv_path.parent / "mappings")})
    server.prepare()
    return server


def _import_args(csv_path: Path, report: Path, *extra: str) -> list[str]:
    return [
        "import",
        str(csv_path),
        "--user",
        "madmin",
        "--merchant",
        MERCHANT,
        "--mapping",
        "old-erp",
        "--commit",
        "--batch",
        "250",
        "--report",
        str(report),
        *extra,
    ]


def _manifest(report: Path) -> dict[str, Any]:
    (found,) = report.glob("*-manifest.json")
    return json.loads(found.read_text(encoding="utf-8"))["manifest"]


def _count(db: Path, sql: str) -> Any:
    with sqlite3.connect(db, timeout=30) as connection:
        return connection.execute(sql).fetchone()


def test_a_killed_import_resumes_to_the_same_manifest(tmp_path: Path) -> None:
    save_mapping(tmp_path / "mappings")
    csv_path = write_csv(tmp_path / "legacy.csv", csv_rows(RECORDS))

    whole = _prepared(tmp_path / "whole", csv_path)
    shutil.copytree(whole.var_dir, tmp_path / "killed")  # migrated, with the demo: saves a second setup
    killed = LiveServer(tmp_path / "killed", env=whole.extra_env)
    whole.manage(*_import_args(csv_path, tmp_path / "whole-report"), timeout=900)
    expected = _manifest(tmp_path / "whole-report")

    process = subprocess.Popen(
        [killed.python, "-m", "fapiao.cli", *_import_args(csv_path, tmp_path / "killed-report")],
        env=killed.environment(),
        cwd=killed.var_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    imported = 0
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        try:
            imported = _count(killed.sqlite_path, "SELECT count(*) FROM invoices_invoice")[0]
        except sqlite3.OperationalError:
            continue
        if imported >= RECORDS // 3:
            break
    assert process.poll() is None, "the import finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    invoices, entries, records = (
        _count(killed.sqlite_path, f"SELECT count(*) FROM {table}")[0]  # noqa: S608  our table names
        for table in ("invoices_invoice", "ledger_logentry", "invoices_importedrecord")
    )
    assert 0 < invoices < RECORDS
    assert invoices == entries == records, "a batch was half written"
    (run_id,) = _count(killed.sqlite_path, "SELECT run_id FROM invoices_importrun")

    killed.manage(*_import_args(csv_path, tmp_path / "killed-report", "--resume", run_id), timeout=900)
    resumed = _manifest(tmp_path / "killed-report")
    assert _count(killed.sqlite_path, "SELECT count(*) FROM invoices_invoice")[0] == RECORDS
    assert _count(killed.sqlite_path, "SELECT count(*) FROM ledger_logentry")[0] == RECORDS
    for field in RUN_FIELDS:
        assert resumed.pop(field) != expected.pop(field) or field == "committed_at"
    assert resumed == expected
    assert "一致" in killed.manage("import", "verify", run_id, "--user", "madmin", timeout=600)
    killed.manage("ledger", "verify", timeout=600)
