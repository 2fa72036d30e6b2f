"""Docs are tested: every setting and every CLI command appears in the docs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented():
    used = set()
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "tests").rglob("*.py"), ROOT / "Makefile"]:
        used |= set(re.findall(r"FAPIAO_[A-Z_]+[A-Z]", path.read_text(encoding="utf-8")))
    used.discard("FAPIAO_DEMO_PASSWORD_DEFAULT")  # a Django setting, not an environment variable
    documented = set(re.findall(r"`(FAPIAO_[A-Z_]+)`", (ROOT / "docs/operations/settings.md").read_text()))
    assert used - documented == set(), "document these in docs/operations/settings.md"


def test_every_management_command_is_documented():
    commands = {path.stem for path in (ROOT / "src/fapiao").glob("*/management/commands/*.py")} - {"__init__"}
    text = (ROOT / "README.md").read_text(encoding="utf-8") + (ROOT / "docs").joinpath("cli.md").read_text(
        encoding="utf-8"
    )
    missing = {name for name in commands if f"fapiao {name}" not in text}
    assert missing == set(), "document these commands in docs/cli.md"
