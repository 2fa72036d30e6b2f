"""The emergency plan (docs/operations/emergency-plan.md) names only what exists: each scenario the
issue lists has its five parts, every alert it names is in deploy/prometheus/alerts.yml, and every
`fapiao …` command in its code blocks is a real command, subcommand and option of this installation."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "docs" / "operations" / "emergency-plan.md"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SCENARIOS = [
    "数据库不可用",
    "磁盘满",
    "数据库丢失或损坏",
    "错误的数据库迁移",
    "签名密钥泄露",
    "数据密钥丢失",
    "多个商户同时反映发票缺失",
    "勒索软件",
    "运维账户被盗",
]
PARTS = ["**告警：**", "**前 15 分钟：**", "**命令", "**通知谁：**", "**怎样证明已恢复：**"]


def plan() -> str:
    return PLAN.read_text(encoding="utf-8")


def sections() -> dict[str, str]:
    found = {}
    for match in re.finditer(r"^## \d\. (.+)$", plan(), flags=re.MULTILINE):
        rest = plan()[match.end() :]
        end = re.search(r"^## ", rest, flags=re.MULTILINE)
        found[match.group(1).strip()] = rest[: end.start() if end else len(rest)]
    return found


def test_every_scenario_has_its_five_parts():
    found = sections()
    assert list(found) == SCENARIOS
    for name, text in found.items():
        missing = [part for part in PARTS if part not in text]
        assert not missing, f"{name}: {missing}"


def test_every_alert_named_exists():
    alerts = set(re.findall(r"^\s*- alert: (\w+)$", ALERTS.read_text(encoding="utf-8"), flags=re.MULTILINE))
    named = set(re.findall(r"\bFapiao[A-Z][A-Za-z]+\b", plan()))
    assert named, "the plan names the alerts"
    assert named - alerts == set()
    for name, text in sections().items():
        alert_line = text[text.index("**告警：**") :].split("\n\n")[0]
        assert re.search(r"Fapiao[A-Z]", alert_line) or "没有" in alert_line, name


def command_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", plan(), flags=re.DOTALL)
    lines = []
    for block in blocks:
        for line in block.splitlines():
            for part in line.split("#")[0].split("&&"):
                if part.strip().startswith("fapiao "):
                    lines.append(part.strip())
    return lines


def parser_of(name: str) -> argparse.ArgumentParser:
    return load_command_class(get_commands()[name], name).create_parser("fapiao", name)


@pytest.mark.parametrize("line", command_lines())
def test_every_command_exists(line: str):
    words = re.findall(r'"[^"]*"|\S+', line)[1:]
    assert words[0] in get_commands(), f"no command fapiao {words[0]}"
    parser = parser_of(words[0])
    subparsers = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if subparsers:
        assert words[1] in subparsers[0].choices, f"fapiao {words[0]} has no subcommand {words[1]}"
        parser = subparsers[0].choices[words[1]]
    options = set(parser._option_string_actions)
    for word in words:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"{line}: no option {word}"


def test_the_plan_is_linked_from_the_runbook_and_the_docs_index():
    assert "emergency-plan.md" in (ROOT / "docs" / "operations" / "runbook.md").read_text(encoding="utf-8")
    assert "docs/operations/emergency-plan.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_scenario_names_its_drill_and_every_drill_is_named():
    from fapiao.ops.drills import SCENARIOS

    named = []
    for name, text in sections().items():
        drills = re.findall(r"^fapiao drill ([a-z-]+)$", text, flags=re.MULTILINE)
        assert len(drills) == 1, f"{name}: names no drill command"
        assert drills[0] in SCENARIOS, f"{name}: fapiao drill {drills[0]} is not registered"
        named.append(drills[0])
    assert sorted(named) == sorted(SCENARIOS)
    backup = (ROOT / "docs" / "operations" / "backup.md").read_text(encoding="utf-8")
    assert [drill for drill in SCENARIOS if f"| `{drill}` |" not in backup] == []
