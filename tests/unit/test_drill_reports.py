"""`fapiao.ops.drills.list_reports`: the saved drill reports, newest first, for the operators' pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fapiao.ops.drills import FORMAT, SCENARIOS, list_reports, save_report


def _report(drill_id: str, started: str) -> dict[str, Any]:
    return {"format": FORMAT, "id": drill_id, "scenario": "database-lost", "started_at": started, "ok": True}


def test_reports_come_back_newest_first_and_strays_are_skipped(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    assert list_reports() == []
    save_report(_report("20261201T010000Z-database-lost-aaaaaa", "2026-12-01T01:00:00Z"), "# one\n")
    save_report(_report("20261203T010000Z-database-lost-bbbbbb", "2026-12-03T01:00:00Z"), "# two\n")
    save_report(_report("20261202T010000Z-database-lost-cccccc", "2026-12-02T01:00:00Z"), "# three\n")
    (tmp_path / "drills" / "20261209T010000Z-database-lost-dddddd.json").write_text("{not json")
    (tmp_path / "drills" / "notes.json").write_text(json.dumps(_report("notes", "2027-01-01T00:00:00Z")))
    found = list_reports()
    assert [r["id"][:8] for r in found] == ["20261203", "20261202", "20261201"]
    assert found[0]["markdown_path"] == str(tmp_path / "drills" / "20261203T010000Z-database-lost-bbbbbb.md")
    assert [r["id"][:8] for r in list_reports(limit=1)] == ["20261203"]
    assert (tmp_path / "drills").stat().st_mode & 0o777 == 0o700


def test_database_lost_is_a_registered_scenario() -> None:
    assert "database-lost" in SCENARIOS
    assert SCENARIOS["database-lost"].markdown is not None
