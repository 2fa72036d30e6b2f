"""The operators' pages in Chromium, on ``make run``'s server: 运维概览 with its three hourly charts
and 备份与演练 with a real backup (made and verified by the ``fapiao backup`` commands, as cron would)
and a drill report, at desktop width and at 390 px (a phone).  Every page is checked for console
errors and untranslated words.  With ``FAPIAO_GUIDE_SHOTS=1`` the screenshots docs/guide/operations.md
shows are copied to docs/images/."""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import VALID_INVOICE
from tests.e2e.conftest import Pilot
from tests.integration.pg_cluster import Server, fapiao_command, server_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DOCS_IMAGES = ROOT / "docs" / "images"
DRILL = {
    "scenario": "database-lost",
    "started_at": "2026-12-05T19:00:00Z",
    "finished_at": "2026-12-05T19:03:41Z",
    "ok": True,
    "rto_seconds": 221.4,
    "rpo": {"91110108MA01ABCD84": 0},
    "report_md": "# 演练报告：数据库丢失\n\n从最新的已核验备份恢复，账本核验通过，没有丢失条目。\n",
}


def environment(server: Server, demo_password: str) -> dict[str, str]:
    """The environment of the e2e server (its var dir holds the log file), for the command line."""
    var = server.log_file.parent
    return server_env(
        var_dir=var,
        database_url=f"sqlite:///{var / 'fapiao.sqlite3'}",
        FAPIAO_DEMO="1",
        FAPIAO_DEMO_PASSWORD=demo_password,
    )


def request(server: Server, method: str, path: str, token: str, body: Any = None) -> int:
    address = urlsplit(server.base)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
    try:
        connection.request(
            method,
            path,
            body=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        answer = connection.getresponse()
        answer.read()
        return int(answer.status)
    finally:
        connection.close()


def bars(pilot: Pilot, key: str) -> list[int]:
    counts = pilot.page.eval_on_selector_all(
        f"#chart-{key} rect.bar", "bars => bars.map(bar => Number(bar.dataset.count))"
    )
    return [int(count) for count in counts]


def visit(pilot: Pilot, suffix: str) -> dict[str, Path]:
    pilot.goto("/operations/")
    pilot.page.wait_for_selector("#chart-issued")
    shots = {f"ops-overview{suffix}": pilot.shot("overview")}
    pilot.goto("/operations/backups/")
    pilot.page.wait_for_selector("#backup-list")
    shots[f"ops-backups{suffix}"] = pilot.shot("backups")
    return shots


def publish(shots: dict[str, Path]) -> None:
    if not os.environ.get("FAPIAO_GUIDE_SHOTS"):
        return
    from PIL import Image  # only when publishing: Pillow comes with the docs tooling

    for name, shot in shots.items():
        with Image.open(shot) as image:
            small = image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
        small.save(DOCS_IMAGES / f"{name}.png", optimize=True)


def test_operators_see_the_overview_and_the_backups(
    pilot_for: Any, e2e_server: Server, demo_password: str
) -> None:
    env = environment(e2e_server, demo_password)
    token = (
        fapiao_command(env, "token", "create", "clerk", "--scope", "write", "--name", "运维页面测试")
        .strip()
        .split()[-1]
    )
    issued = [request(e2e_server, "POST", "/api/v1/invoices", token, VALID_INVOICE) for _ in range(3)]
    assert issued == [201, 201, 201]
    refused = [request(e2e_server, "GET", "/api/v1/invoices", "not-a-token") for _ in range(2)]
    assert refused == [401, 401]
    fapiao_command(env, "ledger", "verify")
    fapiao_command(env, "audit", "verify")
    fapiao_command(env, "backup", "create", timeout=300)
    listed = json.loads(fapiao_command(env, "backup", "list", "--json"))["backups"]
    fapiao_command(env, "backup", "verify", listed[0]["id"], timeout=300)
    drills = e2e_server.log_file.parent / "drills"
    drills.mkdir(exist_ok=True)
    (drills / "20261205T190000Z-database-lost.json").write_text(json.dumps(DRILL, ensure_ascii=False))

    desktop = pilot_for("operations")
    desktop.sign_in("operator", demo_password)
    shots = visit(desktop, "")
    desktop.goto("/operations/")
    issued_bars, refused_bars = bars(desktop, "issued"), bars(desktop, "refused")
    assert len(issued_bars) == len(refused_bars) == len(bars(desktop, "unavailable")) == 24
    # This hour's bar, or the one before if the hour turned since they were issued (and whatever else
    # the suite issued).
    assert sum(issued_bars[-2:]) >= 3
    assert sum(refused_bars[-2:]) >= 2
    assert desktop.page.locator('tr[data-check="backup"] td.passed').count() == 1
    assert desktop.page.locator("#last-ledger-verify .passed").count() == 1
    desktop.goto("/operations/backups/")
    newest = desktop.page.locator(f'[data-backup="{listed[0]["id"]}"]')
    assert newest.locator(".passed").count() == 1
    assert newest.locator("code").count() >= 3  # the backup key and at least one signing key
    assert desktop.page.locator('[data-drill="20261205T190000Z-database-lost.json"] .passed').count() == 1

    phone = pilot_for("operations-phone", width=390, height=844)
    phone.sign_in("operator", demo_password)
    shots |= visit(phone, "-phone")
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone: {width}px"

    desktop.assert_clean()
    phone.assert_clean()
    publish(shots)
