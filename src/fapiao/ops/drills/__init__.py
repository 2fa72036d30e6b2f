"""Drills (应急演练): rehearsed disasters on a scratch copy, never the live data
(``fapiao drill SCENARIO``; docs/operations/backup.md, Drills).

A scenario is registered here by name (:func:`register`, e.g. from an app's ``AppConfig.ready``)
with its help line, its options and the function that runs it and returns a report.  Every
report is saved under ``$FAPIAO_VAR_DIR/drills/`` as ``<id>.json`` (``fapiao-drill/1``, the shape
documented in docs/operations/backup.md) and ``<id>.md`` for the emergency-plan (应急预案)
records; :mod:`fapiao.ops.drill_reports` reads them back for the operators' pages.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

FORMAT = "fapiao-drill/1"
_ID = re.compile(r"\d{8}T\d{6}Z-[a-z0-9-]{1,40}-[0-9a-f]{6}")


@dataclass(frozen=True)
class Scenario:
    """One drill: ``run(options)`` rehearses it and returns the report (a ``fapiao-drill/1`` dict)."""

    name: str
    help: str
    run: Callable[[dict[str, Any]], dict[str, Any]]
    add_arguments: Callable[[Any], None] | None = None
    markdown: Callable[[dict[str, Any]], str] | None = None


SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    """Add a scenario (a second registration of the same name replaces the first)."""
    SCENARIOS[scenario.name] = scenario
    return scenario


def drills_dir() -> Path:
    return Path(settings.VAR_DIR) / "drills"


def new_id(scenario: str, now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{scenario}-{secrets.token_hex(3)}"


def _write_private(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def save_report(report: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``<id>.json`` and ``<id>.md`` under the drills directory; returns both paths."""
    directory = drills_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    drill_id = str(report["id"])
    if not _ID.fullmatch(drill_id):
        raise ValueError(f"not a drill id: {drill_id!r}")
    json_path, md_path = directory / f"{drill_id}.json", directory / f"{drill_id}.md"
    report = {**report, "report_md": markdown}  # the 备份与演练 page shows it (fapiao.ops.drill_reports)
    _write_private(md_path, markdown)
    _write_private(json_path, json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    return json_path, md_path
