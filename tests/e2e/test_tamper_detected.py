"""An invoice row deleted behind the application's back — a crash, a broken migration, an intruder —
is found by 账本核验 in the browser; the run opens an integrity incident the operator sees on every
page, and /readyz reports it.  On a server of its own, so the incident cannot reach the other walks."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Pilot, demo_server, server_database
from tests.e2e.test_recovery_journey import issue_invoice, lose_invoice
from tests.integration.pg_cluster import Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory, demo_password: str) -> Iterator[Server]:
    with demo_server(tmp_path_factory.mktemp("tamper-var"), demo_password) as server:
        yield server


def run_verification(pilot: Pilot) -> str:
    pilot.goto("/ledger/verify/")
    pilot.page.click("main form button[type=submit]")
    pilot.page.wait_for_selector("#result")
    return str(pilot.page.get_attribute("#result", "class"))


def readyz(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(server.base + "/readyz", timeout=10) as response:  # noqa: S310  our own server
        body: dict[str, Any] = json.load(response)
    return body


def test_a_deleted_invoice_is_found_and_the_operator_is_told(
    pilot_for: Any, own_server: Server, demo_password: str
) -> None:
    clerk = pilot_for("tamper-clerk", server=own_server)
    clerk.sign_in("clerk", demo_password)
    number = issue_invoice(clerk)

    operator = pilot_for("tamper-operator", server=own_server)
    operator.sign_in("operator", demo_password)
    assert run_verification(operator) == "passed"
    assert readyz(own_server)["checks"]["ledger_verify"] == "ok"

    lose_invoice(server_database(own_server), number)  # the row is gone; its signed entry stays

    assert run_verification(operator) == "failed"
    page = operator.page
    findings = page.inner_text("main table")
    assert number in findings  # the finding names the invoice that is gone
    alert = page.inner_text("main p.failed[role=alert]")
    assert alert.startswith("数据完整性事件") and "已开立" in alert
    operator.shot("verify-failed")

    operator.goto("/")
    banner = page.inner_text(".banner-incident")
    assert banner.startswith("有 1 个完整性事件尚未解决")
    operator.shot("incident-banner")
    body = readyz(own_server)
    assert body["status"] == "degraded"
    assert body["checks"]["ledger_verify"] == "failed" and body["checks"]["incidents"] == "open: 1"

    clerk.assert_clean()
    operator.assert_clean()
