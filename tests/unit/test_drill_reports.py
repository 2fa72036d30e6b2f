"""Saved drill reports come back through the 备份与演练 page's reader, newest first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fapiao.ops.drill_reports import list_reports
from fapiao.ops.drills import FORMAT, SCENARIOS, save_report


def _report(drill_id: str, started: str) -> dict[str, Any]:
    return {"format": FORMAT, "id": drill_id, "scenario": "database-lost", "started_at": started, "ok": True}


def test_reports_come_back_newest_first_and_strays_are_named(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    assert list_reports() == []
    save_report(_report("20261201T010000Z-database-lost-aaaaaa", "2026-12-01T01:00:00Z"), "# one\n")
    save_report(_report("20261203T010000Z-database-lost-bbbbbb", "2026-12-03T01:00:00Z"), "# two\n")
    save_report(_report("20261202T010000Z-database-lost-cccccc", "2026-12-02T01:00:00Z"), "# three\n")
    (tmp_path / "drills" / "20261209T010000Z-database-lost-dddddd.json").write_text("{not json")
    found = list_reports()
    readable = [r for r in found if not r.problem]
    assert [r.file[:8] for r in readable] == ["20261203", "20261202", "20261201"]
    assert readable[0].report_md == "# two\n"  # the Markdown report, as saved beside the JSON
    assert [r.file[:8] for r in found if r.problem] == ["20261209"]  # listed with what is wrong
    assert (tmp_path / "drills" / "20261203T010000Z-database-lost-bbbbbb.md").read_text() == "# two\n"
    assert (tmp_path / "drills").stat().st_mode & 0o777 == 0o700


def test_database_lost_is_a_registered_scenario() -> None:
    assert "database-lost" in SCENARIOS
    assert SCENARIOS["database-lost"].markdown is not None
