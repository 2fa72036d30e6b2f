"""The drill reports the 备份与演练 page lists, read from ``FAPIAO_VAR_DIR/drills/*.json``.

A drill (``fapiao drill SCENARIO``) rehearses an emergency on a scratch copy and leaves one JSON
file per run.  This module only reads them; the shape it expects is::

    {
      "scenario": "database-lost",                  # the drill's name
      "started_at": "2026-12-05T03:00:00Z",          # UTC, ISO 8601
      "finished_at": "2026-12-05T03:04:12Z",
      "ok": true,                                    # the drill proved recovery
      "rto_seconds": 252.4,                          # time to recover
      "rpo": {"<log>": 0},                           # per ledger log: entries lost
      "report_md": "# …"                             # the human report (Markdown, shown as text)
    }

A file that cannot be read, or is not this shape, is listed with what is wrong (a drill that
wrote garbage is worth seeing), never raised.  Files above :data:`MAX_BYTES` are not opened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.utils.translation import gettext

from fapiao.ops.drills import drills_dir

MAX_BYTES = 1024 * 1024
MAX_REPORTS = 50


@dataclass(frozen=True)
class DrillReport:
    file: str
    scenario: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    ok: bool = False
    rto_seconds: float | None = None
    rpo: dict[str, int] = field(default_factory=dict)
    report_md: str = ""
    problem: str = ""  # why the file could not be read ("" when it could)

    @property
    def entries_lost(self) -> int:
        return sum(self.rpo.values())


def list_reports() -> list[DrillReport]:
    """The newest :data:`MAX_REPORTS` reports, newest first (by start time, then file name)."""
    directory = drills_dir()
    if not directory.is_dir():
        return []
    files = sorted(directory.glob("*.json"), key=lambda path: path.name, reverse=True)
    reports = [read_report(path) for path in files[: MAX_REPORTS * 2]]
    epoch = datetime.min.replace(tzinfo=UTC)
    reports.sort(key=lambda report: (report.started_at or epoch, report.file), reverse=True)
    return reports[:MAX_REPORTS]


def read_report(path: Path) -> DrillReport:
    try:
        if path.stat().st_size > MAX_BYTES:
            return DrillReport(path.name, problem=gettext("The file is larger than 1 MB; not read."))
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DrillReport(path.name, problem=gettext("The file is not readable JSON."))
    if not isinstance(document, dict):
        return DrillReport(path.name, problem=gettext("The file is not a drill report."))
    try:
        return _report(path.name, document)
    except (TypeError, ValueError):
        return DrillReport(path.name, problem=gettext("The file is not a drill report."))


def _report(name: str, document: dict[str, Any]) -> DrillReport:
    scenario = document.get("scenario")
    if not isinstance(scenario, str) or not scenario:
        raise ValueError("no scenario")
    rpo = document.get("rpo") or {}
    if not isinstance(rpo, dict):
        raise TypeError("rpo is not an object")
    rto = document.get("rto_seconds")
    report_md = document.get("report_md") or ""
    return DrillReport(
        file=name,
        scenario=scenario,
        started_at=_moment(document.get("started_at")),
        finished_at=_moment(document.get("finished_at")),
        ok=document.get("ok") is True,
        rto_seconds=None if rto is None else float(rto),
        rpo={str(log): int(entries) for log, entries in rpo.items()},
        report_md=str(report_md),
    )


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a drill time must carry a time zone")
    return moment.astimezone(UTC)
