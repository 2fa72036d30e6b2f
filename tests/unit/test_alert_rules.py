"""The alert rules (deploy/prometheus/alerts.yml) and the example Prometheus and Alertmanager
configurations, checked by Prometheus' own tools: ``promtool check rules``, ``promtool test rules``
(each alert fires on the series that should fire it and stays quiet on a healthy installation),
``promtool check config`` and ``amtool check-config``.  Plus what a person on call needs from
every alert: a Chinese summary and a runbook link to a section that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "prometheus"
RUNBOOK = ROOT / "docs" / "operations" / "runbook.md"
CJK = re.compile(r"[\u4e00-\u9fff]")


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=DEPLOY, capture_output=True, text=True, timeout=120, check=False)


def alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules():
    done = run(require_tool("promtool"), "check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr


TEST_FILES = ("alerts_test.yml", "alerts_test_daily.yml")  # minute by minute; a day in 15-minute steps


def test_promtool_unit_tests_of_the_rules_pass():
    done = run(require_tool("promtool"), "test", "rules", *TEST_FILES)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path):
    """The unit tests can fail: with one threshold moved, promtool reports the alert that no longer fires."""
    promtool = require_tool("promtool")
    rules = (DEPLOY / "alerts.yml").read_text(encoding="utf-8")
    assert "fapiao_integrity_incidents_open > 0" in rules
    broken = rules.replace("fapiao_integrity_incidents_open > 0", "fapiao_integrity_incidents_open > 5")
    (tmp_path / "alerts.yml").write_text(broken, encoding="utf-8")
    (tmp_path / "alerts_test.yml").write_text((DEPLOY / "alerts_test.yml").read_text(encoding="utf-8"))
    done = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "FapiaoIntegrityIncidentOpen" in done.stdout + done.stderr


def test_the_example_prometheus_configuration_is_valid():
    done = run(require_tool("promtool"), "check", "config", "--syntax-only", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_alertmanager_configuration_is_valid_and_mails_the_operators():
    amtool = require_tool("amtool")
    done = run(amtool, "check-config", "alertmanager.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    for severity, receiver in (("critical", "operators-on-call"), ("warning", "operators")):
        routed = run(
            amtool,
            "config",
            "routes",
            "test",
            "--config.file=alertmanager.yml",
            f"--verify.receivers={receiver}",
            "service=fapiao",
            f"severity={severity}",
        )
        assert routed.returncode == 0, routed.stdout + routed.stderr
    config = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text(encoding="utf-8"))
    for receiver in config["receivers"]:
        assert receiver["email_configs"], receiver["name"]
        assert all("fapiao-operators@" in mail["to"] for mail in receiver["email_configs"])


def runbook_anchors() -> set[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    return set(re.findall(r'<a id="([^"]+)"></a>', text))


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_every_alert_says_what_happened_in_chinese_and_links_its_runbook_section(rule: dict[str, Any]):
    annotations = rule["annotations"]
    assert CJK.search(annotations["summary"]), "the summary is for the person on call: 中文"
    assert annotations["description"]
    link = annotations["runbook_url"]
    page, _sep, anchor = link.partition("#")
    assert page == "docs/operations/runbook.md"
    assert anchor in runbook_anchors(), f'runbook.md has no <a id="{anchor}"></a>'
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["labels"]["service"] == "fapiao"


def test_every_alert_is_tested_firing_and_quiet():
    tests = [
        case
        for name in TEST_FILES
        for case in yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8"))["tests"]
    ]
    fires, quiet = set(), set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    healthy = next(case for case in tests if case["name"] == "a healthy installation")
    quiet_when_healthy = {
        check["alertname"] for check in healthy["alert_rule_test"] if not check["exp_alerts"]
    }
    names = {rule["alert"] for rule in alerts()}
    assert names - fires == set(), "add a promtool test in which these fire"
    assert names - quiet_when_healthy == set(), "list these in the healthy installation's test"
