"""Saved drill reports come back through the 备份与演练 page's reader, newest first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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


def test_every_drill_is_registered_with_the_common_options() -> None:
    import argparse

    expected = {
        "database-lost",
        "database-down",
        "disk-full",
        "bad-migration",
        "signing-key-compromised",
        "data-key-lost",
        "mass-missing",
        "ransomware",
        "operator-compromised",
    }
    assert set(SCENARIOS) == expected
    for scenario in SCENARIOS.values():
        parser = argparse.ArgumentParser()
        assert scenario.add_arguments is not None and scenario.markdown is not None
        scenario.add_arguments(parser)
        assert {"--invoices", "--keep", "--inside"} <= set(parser._option_string_actions)


def test_the_child_refuses_a_folder_that_is_not_its_scratch_copy(settings: Any, tmp_path: Path) -> None:
    from fapiao.ops.drills.scratch import MARKER, NotADrillCopyError, check_inside

    settings.VAR_DIR = tmp_path / "live"
    with pytest.raises(NotADrillCopyError):
        check_inside(tmp_path)  # no marker: not a drill's copy
    (tmp_path / MARKER).write_text("x\n")
    with pytest.raises(NotADrillCopyError):
        check_inside(tmp_path)  # a marker, but this process's var dir, database and keys are elsewhere


def test_the_markdown_report_lists_checks_and_known_gaps() -> None:
    from fapiao.ops.drills.scratch import markdown

    report = {
        "id": "20261201T010000Z-ransomware-aaaaaa",
        "scenario": "ransomware",
        "ok": False,
        "started_at": "2026-12-01T01:00:00Z",
        "finished_at": "2026-12-01T01:01:00Z",
        "rto_seconds": 12.5,
        "rpo_entries": 4,
        "checks": [{"command": "fapiao ledger verify", "exit": 1, "expect": 0, "ok": False}],
        "steps": [{"name": "replay", "seconds": 0.1, "ok": True}],
        "known_gaps": ["the audit trail the restore cut short"],
    }
    text = markdown(report)
    assert "`fapiao ledger verify` | 1 | 0 ✗" in text
    assert "the audit trail the restore cut short" in text
    assert "| replay | 0.1 | ok |" in text
