"""Every `fapiao drill` on one real, prepared var dir: each works on a scratch copy, provokes its failure,
proves recovery with the plan's commands and saves its report; `database-lost` names its RPO exactly and
closes it by replay — and the live database, witness files and keys are left as they were."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# --- every drill of the emergency plan, on one prepared installation ------------------------------


def _fingerprint(live: LiveServer) -> dict[str, object]:
    """What a drill must never change: the live database's counts and sizes, the witness files and
    every key file."""
    keys = live.var_dir / "keys"
    return {
        "state": _state(live.sqlite_path),
        "witness": {p.name: p.read_bytes() for p in sorted((live.var_dir / "witness").glob("*.jsonl"))},
        "keys": {p.name: p.read_bytes() for p in sorted(keys.iterdir()) if p.is_file()},
    }


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, object]]]:
    live = LiveServer(tmp_path_factory.mktemp("drills") / "var")
    live.prepare()
    invoice = live.var_dir / "invoice.json"
    invoice.write_text(json.dumps(VALID_INVOICE, ensure_ascii=False), encoding="utf-8")
    live.manage("issue", str(invoice), "--user", "clerk")
    yield live, _fingerprint(live)


def _drill(live: LiveServer, name: str) -> dict[str, Any]:
    done = subprocess.run(
        [live.python, "-m", "fapiao.cli", "drill", name, "--json"],
        env=live.environment(),
        cwd=live.var_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert report["format"] == "fapiao-drill/1" and report["scenario"] == name and report["ok"] is True
    assert report["steps"] and all(step["ok"] for step in report["steps"]), report["steps"]
    assert report["checks"] and all(check["ok"] for check in report["checks"]), report["checks"]
    assert report["rto_seconds"] is not None and report["rto_seconds"] >= 0
    # Saved as the 备份与演练 page reads it; the scratch copy gone.
    drills = live.var_dir / "drills"
    listed = read_report(drills / f"{report['id']}.json")
    assert (listed.problem, listed.scenario, listed.ok) == ("", name, True)
    assert listed.entries_lost == report["rpo_entries"]
    assert report["id"] in (drills / f"{report['id']}.md").read_text(encoding="utf-8")
    assert not (drills / f"{report['id']}.work").exists()
    return report


def _step(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(step for step in report["steps"] if step["name"] == name)


def _commands(report: dict[str, Any]) -> list[tuple[str, int]]:
    return [(check["command"].split(" --")[0], check["exit"]) for check in report["checks"]]


def test_database_down_drill(installation: tuple[LiveServer, dict[str, object]]) -> None:
    report = _drill(installation[0], "database-down")
    assert _step(report, "readyz_while_down")["status"] == 503
    assert _step(report, "write_while_down")["status"] == 503
    assert _step(report, "nothing_half_written")["before"] == _step(report, "nothing_half_written")["after"]
    assert _step(report, "retry_issues_once")["status"] == 201
    assert report["readyz_down"]["checks"]["database"] == "unavailable"


def test_disk_full_drill(installation: tuple[LiveServer, dict[str, object]]) -> None:
    report = _drill(installation[0], "disk-full")
    assert _step(report, "write_while_full")["status"] == 503
    assert _step(report, "nothing_half_written")["integrity"] == "ok"
    assert _step(report, "retry_issues_once")["status"] == 201


def test_bad_migration_drill(installation: tuple[LiveServer, dict[str, object]]) -> None:
    report = _drill(installation[0], "bad-migration")
    assert "invoice_mismatch" in report["findings_after_migration"]
    assert report["incidents"]
    assert _step(report, "restored")["names_as_issued"] == _step(report, "invoices")["invoices"]
    assert ("fapiao ledger verify", 1) in _commands(report) and ("fapiao ledger verify", 0) in _commands(
        report
    )
    assert report["audit_after_restore"]["findings"] == [] and report["known_gaps"] == []


def test_signing_key_compromised_drill(installation: tuple[LiveServer, dict[str, object]]) -> None:
    report = _drill(installation[0], "signing-key-compromised")
    assert report["new_key"] != report["old_key"]
    assert _step(report, "compromised")["old_status"] == "compromised"
    assert _step(report, "compromised")["heads_left_to_resign"] == 0
    assert _step(report, "compromised")["audit_heads_left_to_resign"] == 0
    assert ("fapiao audit verify", 0) in _commands(report)
    refused = [c for c in report["checks"] if c["when"] == "signed with the stolen key"]
    assert refused and all(c["exit"] == 1 for c in refused)
    assert _step(report, "fresh_receipts")["key_ids"] == [report["new_key"]]


def test_data_key_lost_drill(installation: tuple[LiveServer, dict[str, object]]) -> None:
    report = _drill(installation[0], "data-key-lost")
    assert "invoice_mismatch/unreadable" in report["findings_while_lost"]
    lost, back = _step(report, "key_lost"), _step(report, "key_restored")
    assert lost["unreadable"] == back["readable"] == _step(report, "before")["sealed"] > 0


def test_mass_missing_drill(installation: tuple[LiveServer, dict[str, object]]) -> None:
    report = _drill(installation[0], "mass-missing")
    assert report["rpo_entries"] == 6 and len(report["rpo"]) == 2
    assert _step(report, "replay")["brought_back"] == report["rpo"]
    assert [e for c, e in _commands(report) if c.startswith("fapiao ledger check-receipt")][:2] == [3, 3]
    assert "entry_without_invoice" in report["findings"] and "witness_mismatch/smaller" in report["findings"]
    assert _step(report, "merchants_told")["findings"] == 2 and _step(report, "merchants_told")["people"] > 0
    assert len(_step(report, "cases_restore_rows")["restored"]) == 2


def test_ransomware_drill(installation: tuple[LiveServer, dict[str, object]]) -> None:
    report = _drill(installation[0], "ransomware")
    assert report["rpo_entries"] == 4
    assert _step(report, "replay")["brought_back"] == report["rpo"]
    assert _step(report, "keys_replaced")["new_key"] != _step(report, "keys_replaced")["old_key"]
    # The audit records after the backup are named lost, the audit witness re-based: audit verify
    # and the new backup's verify are clean, nothing left as a known gap.
    assert report["audit_after_restore"]["findings"] == [] and report["audit_after_restore"]["lost"]
    commands = _commands(report)
    assert ("fapiao audit verify", 0) in commands
    assert [e for c, e in commands if c.startswith("fapiao backup verify")][-1] == 0  # the new backup
    assert report["known_gaps"] == []


def test_operator_compromised_drill(installation: tuple[LiveServer, dict[str, object]]) -> None:
    report = _drill(installation[0], "operator-compromised")
    assert {"token.create", "user.invite"} <= set(report["intruder_actions"])
    assert _step(report, "locked_out")["api"] == 401
    assert _step(report, "locked_out")["staff_page"] != 200


def test_database_lost_drill_names_its_rpo_and_replay_closes_it(
    installation: tuple[LiveServer, dict[str, object]],
) -> None:
    live = installation[0]
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
    # The audit records after the backup are named lost and the audit witness re-based: clean.
    assert report["audit_after_replay"]["ok"] is True and report["audit_after_replay"]["lost"]
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
    assert sorted(p.name for p in drills.glob(f"{report['id']}*")) == [
        f"{report['id']}.json",
        f"{report['id']}.md",
    ]
    assert "RPO" in (drills / f"{report['id']}.md").read_text(encoding="utf-8")
    listed = read_report(drills / f"{report['id']}.json")
    assert (listed.scenario, listed.ok, listed.entries_lost) == ("database-lost", True, 5)
    assert _state(live.sqlite_path) == before
    assert (live.var_dir / "witness" / "heads.jsonl").read_bytes() == witness
    assert not (live.var_dir / "backups").exists()
    assert not (live.var_dir / "keys" / "backup-key").exists()


def test_no_drill_touched_the_live_installation(installation: tuple[LiveServer, dict[str, object]]) -> None:
    live, before = installation
    assert _fingerprint(live) == before
    assert all(report.problem == "" for report in list_reports_of(live))
