"""`fapiao drill database-lost` on a real var dir: the drill works on a scratch copy, names its RPO
exactly, closes it by replay, saves its report — and the live database is left as it was."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from fapiao.ops.drill_reports import DrillReport, read_report
from tests.conftest import VALID_INVOICE
from tests.faults.server import LiveServer

pytestmark = pytest.mark.slow


def _state(database: Path) -> tuple[int, list[tuple[str, int]]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        invoices = int(db.execute("SELECT COUNT(*) FROM invoices_invoice").fetchone()[0])
        sizes = db.execute(
            "SELECT m.uscc, l.size FROM ledger_log l "
            "JOIN accounts_merchant m ON m.id = l.merchant_id ORDER BY 1"
        ).fetchall()
    return invoices, [(str(u), int(s)) for u, s in sizes]


def list_reports_of(live: LiveServer) -> list[DrillReport]:
    """What the 备份与演练 page reads of the saved reports."""
    return [read_report(path) for path in sorted((live.var_dir / "drills").glob("*.json"))]


def test_database_lost_drill_names_its_rpo_and_replay_closes_it(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "var")
    live.prepare()
    invoice = tmp_path / "invoice.json"
    invoice.write_text(json.dumps(VALID_INVOICE, ensure_ascii=False), encoding="utf-8")
    live.manage("issue", str(invoice), "--user", "clerk")
    before = _state(live.sqlite_path)
    witness = (live.var_dir / "witness" / "heads.jsonl").read_bytes()

    done = subprocess.run(
        [live.python, "-m", "fapiao.cli", "drill", "database-lost", "--invoices", "5", "--json"],
        env=live.environment(),
        cwd=live.var_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout[: done.stdout.rindex("}") + 1])

    assert report["format"] == "fapiao-drill/1" and report["scenario"] == "database-lost"
    assert report["ok"] is True
    assert report["invoices_after_backup"] == 5
    # RPO: exactly the five invoices written after the backup, per log, named.
    assert report["rpo_entries"] == 5
    assert report["rpo"] == {"91110108MA01ABCD84": 3, "91110105MA01EFGH56": 2}
    by_log = {r["log"]: (r["first"], r["last"]) for r in report["rpo_ranges"]}
    assert by_log == {"91110108MA01ABCD84": (1, 3), "91110105MA01EFGH56": (0, 1)}
    # Replay brought every one of them back, and the ledger verifies clean.
    assert report["replay"]["appended"] == 5 and report["replay"]["closed"] is True
    assert report["replay"]["refused"] == []
    assert report["verify_after_restore"]["ok"] is False
    assert "witness_mismatch/smaller" in report["verify_after_restore"]["findings"]
    assert report["verify_after_replay"] == {"ok": True, "errors": 0, "findings": []}
    awaiting = [n for log in report["replay"]["logs"] for n in log["awaiting_buyer"]]
    assert len(awaiting) == 2  # the drill's invoices 1 and 4 have a buyer address (sealed)
    assert report["rto_seconds"] > 0
    assert [s["name"] for s in report["steps"]] == [
        "backup",
        "invoices",
        "destroy",
        "restore",
        "verify_after_restore",
        "replay",
        "verify_after_replay",
    ]

    # Saved for the records, the scratch copy gone, the live data untouched.
    drills = live.var_dir / "drills"
    assert sorted(p.name for p in drills.iterdir()) == [f"{report['id']}.json", f"{report['id']}.md"]
    assert "RPO" in (drills / f"{report['id']}.md").read_text(encoding="utf-8")
    (listed,) = list_reports_of(live)
    assert (listed.scenario, listed.ok, listed.entries_lost) == ("database-lost", True, 5)
    assert _state(live.sqlite_path) == before
    assert (live.var_dir / "witness" / "heads.jsonl").read_bytes() == witness
    assert not (live.var_dir / "backups").exists()
    assert not (live.var_dir / "keys" / "backup-key").exists()
