"""A detected loss reaches the merchant (issue 14), in Chromium, on a server of its own.

Two invoices are issued on the clerk's page; then, behind the server's back (as a bad migration
would), one row is deleted and another's buyer and total are changed in the SQLite file.  The
operator's 账本核验 finds both; the banner links to the incidents page, which names them in Chinese.
The clerk's 我的发票 flags them (缺失 / 与账本不一致) with what the ledger says, the print view carries
the red mark, 月度汇总 warns with the numbers and amounts, and a notification is waiting.  One click on
each flagged invoice opens a case prefilled from the ledger; the clerk submits; the reviewer approves
and restores the missing one and repairs the altered one; the flags and the warning clear, verify
passes, and the operator acknowledges and resolves the incident with a note.

Every page is a screenshot under ``artifacts/screenshots/``; the touched pages are shot at desktop and
at 390 px.  With ``FAPIAO_GUIDE_SHOTS=1`` those docs/guide/ledger-findings.md shows are copied
(palette-compressed) to ``docs/images/``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, Pilot, demo_server, server_database
from tests.e2e.test_recovery_journey import (
    CASE,
    claim_and_approve,
    issue_invoice,
    lose_invoice,
    open_case,
    open_remedy,
    resolve,
    state_is,
    submit,
)
from tests.e2e.test_tamper_detected import run_verification
from tests.integration.pg_cluster import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DOCS_DIR = ROOT / "docs" / "images"
WRONG_BUYER = "改动后的买方有限公司"
INCIDENT = re.compile(r".*/incidents/(\d+)/$")


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory, demo_password: str) -> Iterator[Server]:
    with demo_server(tmp_path_factory.mktemp("loss-var"), demo_password) as server:
        yield server


def alter_invoice(database: Path, number: str) -> None:
    """Change the row's buyer and total (its ledger entry stays as signed)."""
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db, db:
        changed = db.execute(
            "UPDATE invoices_invoice SET buyer_name = ?, total_with_tax = total_with_tax + 100000 "
            "WHERE number = ?",
            [WRONG_BUYER, number],
        ).rowcount
    assert changed == 1


def publish(shots: dict[str, Path]) -> None:
    """Copy the guide's screenshots, as 256-colour PNGs, to docs/images/."""
    if not os.environ.get("FAPIAO_GUIDE_SHOTS"):
        return
    from PIL import Image

    for name, shot in shots.items():
        with Image.open(shot) as image:
            small = image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
        small.save(DOCS_DIR / f"loss-{name}.png", optimize=True)


def apply_from_finding(pilot: Pilot, number: str) -> str:
    """The flagged invoice's one click: a draft case prefilled from the ledger; submitted."""
    page = pilot.page
    pilot.goto(f"/invoices/{number}/")
    with page.expect_navigation():
        page.click("#apply-from-finding")
    page.wait_for_url(CASE)
    state_is(pilot, "draft")
    facts = page.locator("main").inner_text()
    assert number in facts and "ledger-finding" in facts
    return submit(pilot)


def test_a_loss_reaches_the_merchant_and_the_remedy_clears_it(
    pilot_for: Any, own_server: Server, demo_password: str
) -> None:
    shots: dict[str, Path] = {}
    clerk = pilot_for("loss-clerk", server=own_server)
    clerk.sign_in("clerk", demo_password)
    lost = issue_invoice(clerk)
    altered = issue_invoice(clerk)

    database = server_database(own_server)
    lose_invoice(database, lost)
    alter_invoice(database, altered)

    # The operator's verification finds both; the banner links to the incidents page.
    operator = pilot_for("loss-operator", server=own_server)
    operator.sign_in("operator", demo_password)
    assert run_verification(operator) == "failed"
    findings = operator.page.inner_text("main")
    assert "账本有记录但发票缺失" in findings and "发票与账本不一致" in findings
    operator.goto("/")
    operator.page.click(".banner-incident a")
    operator.page.wait_for_url(re.compile(r".*/incidents/$"))
    listing = operator.page.inner_text("main")
    assert "账本核验未通过" in listing and "账本有记录但发票缺失" in listing
    shots["incidents"] = operator.shot("incidents")
    operator.page.click(".incident-cards a")
    operator.page.wait_for_url(INCIDENT)
    incident_url = operator.page.url
    expect(operator.page.locator("main")).to_contain_text(lost)
    expect(operator.page.locator("main")).to_contain_text(altered)
    with operator.page.expect_navigation():
        operator.page.click("button[value=acknowledge]")
    expect(operator.page.locator(".title-row .state")).to_have_text("已受理，处理中")
    shots["incident"] = operator.shot("incident")

    # The merchant: a notification, the flags with the ledger's values, the marks, the warning.
    page = clerk.page
    clerk.goto("/")
    expect(page.locator("a.notifications .badge")).to_be_visible()
    clerk.goto("/cases/notifications/")
    expect(page.locator(".notification-list")).to_contain_text(f"发票 {lost} 缺失")
    expect(page.locator(".notification-list")).to_contain_text(f"发票 {altered} 与账本不一致")
    shots["notifications"] = clerk.shot("notifications")
    clerk.goto("/invoices/")
    expect(page.locator(".ledger-warning")).to_be_visible()
    expect(page.locator("tr.flag-missing")).to_contain_text(lost)
    expect(page.locator("tr.flag-altered")).to_contain_text(altered)
    shots["list"] = clerk.shot("list-flagged")
    clerk.goto(f"/invoices/{altered}/")
    compare = page.locator(".ledger-compare")
    expect(compare).to_contain_text(WRONG_BUYER)
    expect(compare).to_contain_text("北京买方贸易有限公司")
    shots["altered"] = clerk.shot("altered")
    clerk.goto(f"/invoices/{altered}/print/")
    expect(page.locator(".ledger-mark")).to_contain_text("与账本不一致")
    shots["print"] = clerk.shot("print-marked")
    clerk.goto(f"/invoices/{lost}/")
    expect(page.locator(".ledger-flag-box")).to_contain_text("账本中有这张发票")
    shots["missing"] = clerk.shot("missing")
    clerk.goto("/totals/")
    warning = page.locator(".totals-warning")
    expect(warning).to_contain_text(lost)
    expect(warning).to_contain_text(altered)
    expect(warning).to_contain_text("未计入")
    shots["totals"] = clerk.shot("totals-warning")

    # The same pages at phone width.
    phone = pilot_for("loss-phone", width=390, height=844, server=own_server)
    phone.sign_in("clerk", demo_password)
    for path, name in (
        ("/invoices/", "list"),
        (f"/invoices/{altered}/", "altered"),
        (f"/invoices/{lost}/", "missing"),
        ("/totals/", "totals"),
    ):
        phone.goto(path)
        shots[f"{name}-phone"] = phone.shot(f"{name}-phone")
    operator_phone = pilot_for("loss-operator-phone", width=390, height=844, server=own_server)
    operator_phone.sign_in("operator", demo_password)
    operator_phone.goto("/incidents/")
    shots["incidents-phone"] = operator_phone.shot("incidents-phone")
    operator_phone.page.goto(incident_url)
    shots["incident-phone"] = operator_phone.shot("incident-phone")

    # One click each: cases prefilled from the ledger, submitted.
    repair_no = apply_from_finding(clerk, altered)
    shots["case"] = clerk.shot("case-prefilled")
    restore_no = apply_from_finding(clerk, lost)

    # The reviewer approves; the altered row is repaired, the missing one restored.
    reviewer = pilot_for("loss-reviewer", server=own_server)
    reviewer.sign_in("reviewer", demo_password)
    open_case(reviewer, repair_no)
    claim_and_approve(reviewer, "receipt_verified")
    open_remedy(reviewer, "restore")  # the row is there: the page offers the repair
    expect(reviewer.page.locator("h1")).to_contain_text("修复发票")
    shots["repair"] = reviewer.shot("repair-form")
    resolve(reviewer, "repair")
    open_case(reviewer, restore_no)
    claim_and_approve(reviewer, "receipt_verified")
    open_remedy(reviewer, "restore")
    resolve(reviewer, "restore")

    # The flags and the warning clear; verify passes; the operator resolves the incident.
    clerk.goto("/invoices/")
    expect(page.locator(".ledger-warning")).to_have_count(0)
    expect(page.locator("tr.ledger-flag")).to_have_count(0)
    clerk.goto(f"/invoices/{altered}/")
    expect(page.locator(".ledger-flag-box")).to_have_count(0)
    expect(page.locator("dl.facts")).to_be_visible()
    clerk.goto("/totals/")
    expect(page.locator(".totals-warning")).to_have_count(0)
    shots["cleared"] = clerk.shot("totals-cleared")
    assert run_verification(operator) == "passed"
    operator.page.goto(incident_url)
    note = "迁移脚本误删一张、改动一张发票；商户已申请，恢复与修复均已完成，核验通过。"
    operator.page.fill("#f-note", note)
    with operator.page.expect_navigation():
        operator.page.click("form:has(#f-note) button[type=submit]")
    expect(operator.page.locator(".title-row .state")).to_have_text("已解决")
    operator.shot("incident-resolved")

    publish(shots)
    for pilot in (clerk, operator, reviewer, phone, operator_phone):
        pilot.assert_clean()
