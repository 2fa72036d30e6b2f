"""Issue 14 in a browser: a claimed number no segment ever handed out, and a case support registers
for a merchant who phoned in (代商户登记).  Desktop and phone-width (390 px) screenshots of the
pages touched; with ``FAPIAO_GUIDE_SHOTS=1`` they are copied to docs/images/ for docs/guide.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, server_database
from tests.e2e.test_recovery_journey import (
    ACCEPTANCE,
    BUYER,
    BUYER_TAX_ID,
    CASE,
    act,
    assert_clean,
    fill_claim,
    issue_invoice,
    open_case,
    open_form,
    open_remedy,
    resolve,
    save_claim,
    state_is,
    submit,
)

pytestmark = pytest.mark.e2e

DOCS_DIR = ROOT / "docs" / "images"
MERCHANT = "91110108MA01ABCD84"  # the clerk's


def unused_number(database: Path, ahead: int) -> str:
    """A number of the clerk's segment this year that it has not handed out (``ahead`` beyond the next)."""
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
        year, province, channel, next_serial = db.execute(
            "SELECT s.year, s.province, s.channel, s.next_serial FROM accounts_numbersegment s "
            "JOIN accounts_merchant m ON m.id = s.merchant_id WHERE m.uscc = ? ORDER BY s.year LIMIT 1",
            [MERCHANT],
        ).fetchone()
    return f"{year:02d}{province}{channel}{next_serial + ahead:015d}"


def publish(shot: Path, name: str) -> None:
    """Copy a screenshot, as a 256-colour PNG, to docs/images/ (with FAPIAO_GUIDE_SHOTS=1)."""
    if not os.environ.get("FAPIAO_GUIDE_SHOTS"):
        return
    DOCS_DIR.mkdir(parents=True, exist_ok=True)
    with Image.open(shot) as image:
        small = image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
    target = DOCS_DIR / f"{name}.png"
    small.save(target, optimize=True)
    target.chmod(0o644)


def phone_shot(pilot_for: Any, demo_password: str, user: str, path: str, label: str) -> Path:
    """The page at 390 px: no sideways scrolling of the page itself."""
    phone = pilot_for(f"{label}-phone", width=390, height=844)
    phone.sign_in(user, demo_password)
    phone.goto(path)
    overflow = phone.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{label}: the page is {overflow}px wider than a 390px phone"
    shot = phone.shot(label)
    assert_clean(phone)
    return shot


def test_a_never_issued_number_is_re_issued_under_a_new_number(
    pilot_for: Any, demo_password: str, e2e_server: Any
) -> None:
    clerk, reviewer = pilot_for("never-issued-clerk"), pilot_for("never-issued-reviewer")
    clerk.sign_in("clerk", demo_password)
    reviewer.sign_in("reviewer", demo_password)
    claimed = unused_number(server_database(e2e_server), 500)

    clerk.goto("/cases/new/")
    fill_claim(
        clerk,
        number=claimed,
        issued_on="2025-03-05",
        buyer_name=BUYER,
        buyer_tax_id=BUYER_TAX_ID,
        total_with_tax="1,060.00",
        total_amount="1,000.00",
        total_tax="60.00",
        narrative="记得开过这张发票，系统里查不到。",
    )
    clerk.page.select_option("#f-kind", "ordinary")
    case_url = save_claim(clerk)
    acceptance = submit(clerk)
    # The merchant's steps: nobody asked for more, so 补正/沟通 is not marked done.
    expect(clerk.page.locator(".case-step.step-skipped")).to_have_count(1)
    expect(clerk.page.locator(".case-step.step-done")).to_have_count(2)

    open_case(reviewer, acceptance)
    box = reviewer.page.locator("[data-check=number-never-issued]")
    expect(box).to_be_visible()
    expect(box).to_contain_text(claimed)
    act(reviewer, "claim")
    state_is(reviewer, "in_review")
    # Rejecting is prefilled with the reason that explains it.
    expect(reviewer.page.locator("#reject-template")).to_have_value("never_issued")
    publish(reviewer.shot("never-issued-review"), "case-never-issued")
    publish(
        phone_shot(
            pilot_for, demo_password, "reviewer", case_url.split(e2e_server.base)[1], "never-issued-phone"
        ),
        "case-never-issued-phone",
    )

    form = open_form(reviewer, "approve")
    form.locator("#approve-template").select_option("evidence_consistent")
    with reviewer.page.expect_navigation():
        form.locator("button[type=submit]").click()
    state_is(reviewer, "approved")
    # Restore is not offered: only a re-issue under a new number.
    expect(reviewer.page.locator("a[href$='/resolve/?remedy=restore']")).to_have_count(0)
    open_remedy(reviewer, "reissue")
    resolve(reviewer, "reissue")
    expect(reviewer.page.locator("#result-heading ~ p").first).to_contain_text(claimed)

    clerk.page.goto(case_url)
    state_is(clerk, "resolved")
    clerk.page.click("#result-heading ~ p a.button")
    clerk.page.wait_for_url(lambda url: "/invoices/" in url)
    assert claimed not in clerk.page.url
    clerk.shot("reissued-invoice")
    assert_clean(clerk, reviewer)


def test_support_registers_a_case_for_a_merchant_who_phoned_in(
    pilot_for: Any, demo_password: str, e2e_server: Any
) -> None:
    support, clerk = pilot_for("register-support"), pilot_for("register-clerk")
    support.sign_in("support", demo_password)
    clerk.sign_in("clerk", demo_password)
    page = support.page

    support.goto("/cases/")
    page.click("a[href='/cases/register/']")
    page.wait_for_selector("#f-merchant")
    # Submitted empty: every required field says what is missing, nothing is written.
    page.click("main form button.primary")
    expect(page.locator(".error-summary")).to_be_visible()
    expect(page.locator("#f-merchant")).to_have_attribute("aria-invalid", "true")
    page.fill("#f-merchant", MERCHANT)
    page.select_option("#f-channel", "phone")
    fill_claim(
        support,
        number=unused_number(server_database(e2e_server), 600),
        issued_on="2025-03-06",
        buyer_name=BUYER,
        buyer_tax_id=BUYER_TAX_ID,
        total_with_tax="1,060.00",
        total_amount="1,000.00",
        total_tax="60.00",
        narrative="商户来电：上传中断，系统里查不到这张发票。",
    )
    publish(support.shot("register-form"), "case-register")
    page.click("main form button.primary")
    page.wait_for_url(CASE)
    state_is(support, "submitted")
    expect(page.locator("#claim-heading ~ dl.facts")).to_contain_text("电话（由客服登记）")
    acceptance_text = page.locator("h1").inner_text()
    match = ACCEPTANCE.search(acceptance_text)
    assert match, acceptance_text
    support.shot("registered")
    # Support spoke for the merchant: it has no decision to take here.
    expect(page.locator("form[action$='/act/approve/']")).to_have_count(0)
    publish(
        phone_shot(pilot_for, demo_password, "support", "/cases/register/", "register-phone"),
        "case-register-phone",
    )

    # The merchant is told, and finds the case among theirs.
    clerk.goto("/cases/notifications/")
    expect(clerk.page.locator("main")).to_contain_text(f"客服已为您登记补救申请 {match.group(0)}")
    clerk.shot("notified")
    clerk.goto("/cases/")
    clerk.page.click(f"table.cases a:has-text('{match.group(0)}')")
    clerk.page.wait_for_url(CASE)
    state_is(clerk, "submitted")
    assert_clean(support, clerk)


def test_phone_width_menu_and_tables(pilot_for: Any, demo_password: str) -> None:
    """At 390 px the menu collapses behind 菜单, and the invoice table shows 状态 and 价税合计 without
    scrolling sideways."""
    desk = pilot_for("phone-tables-desk")
    desk.sign_in("clerk", demo_password)
    issue_invoice(desk)
    expect(desk.page.locator("button.nav-toggle")).to_be_hidden()  # never on a wide screen
    expect(desk.page.locator(".site-nav")).to_be_visible()

    phone = pilot_for("phone-tables", width=390, height=844)
    phone.sign_in("clerk", demo_password)
    page = phone.page
    toggle = page.locator("button.nav-toggle")
    expect(toggle).to_be_visible()
    expect(page.locator(".site-nav")).to_be_hidden()
    publish(phone.shot("menu-closed"), "phone-menu-closed")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".site-nav a[href='/invoices/']")).to_be_visible()
    phone.shot("menu-open")

    phone.goto("/invoices/")
    table = page.locator("table.invoices")
    for heading in ("状态", "价税合计"):
        expect(table.locator("th", has_text=heading)).to_be_visible()
    wrap = page.locator("table.invoices").locator("xpath=..")
    sideways = wrap.evaluate("box => box.scrollWidth - box.clientWidth")
    assert sideways <= 1, f"the invoice table scrolls {sideways}px sideways at 390 px"
    publish(phone.shot("invoices"), "phone-invoices")
    assert_clean(desk, phone)


def test_role_homes_login_and_guide(pilot_for: Any, demo_password: str) -> None:
    """Support's and reviewers' homes show their queues with counts; the login page names every
    demo user; the guide covers issuing, searching, red-letter, batches and receipts."""
    for width, suffix in ((1280, ""), (390, "-phone")):
        anonymous = pilot_for(f"login{suffix}", width=width, height=900)
        anonymous.goto("/login/")
        expect(anonymous.page.locator(".demo-users li")).to_have_count(8)
        publish(anonymous.shot("login"), f"login{suffix}")
        anonymous.goto("/cases/guide/invoices/")
        expect(anonymous.page.locator("main h2")).to_have_count(5)
        publish(anonymous.shot("guide-invoices"), f"guide-invoices{suffix}")
        for user in ("support", "reviewer"):
            pilot = pilot_for(f"{user}-home{suffix}", width=width, height=900)
            pilot.sign_in(user, demo_password)
            work = pilot.page.locator(".desk-work")
            expect(work).to_be_visible()
            expect(work.locator(".queue-counts li")).to_have_count(4)
            publish(pilot.shot("home"), f"home-{user}{suffix}")
            assert_clean(pilot)
        assert_clean(anonymous)
