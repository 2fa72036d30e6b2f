"""Recovery cases (补救申请) in Chromium, one browser session per person: merchant clerk, support
agent, reviewer.

The invoice is issued on the clerk's page, its system receipt downloaded, then lost: its row is
deleted from the server's SQLite file, as a crash or a broken migration would, while its ledger
entry stays.  The clerk's empty search offers the application; two files and a submit give an
acceptance number and a receipt PDF; support asks for more; the clerk adds a file; the reviewer
takes the case, approves and restores; the clerk finds the invoice again (origin: restored), its
new receipt verifies offline, and confirms.  Then a rejection answered by an edit and a second
submission, and a re-issue under a new number.

Every page is a full-page screenshot under ``artifacts/screenshots/``.  With
``FAPIAO_GUIDE_SHOTS=1`` the steps the in-app guide and docs/guide/recovery.md show are copied
(palette-compressed) to ``src/fapiao/recovery/static/recovery/guide/`` and ``docs/images/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pdfplumber
import pytest
from playwright.sync_api import expect

from fapiao.core.receipt import verify_receipt
from fapiao.core.signing import load_public_keys
from tests.e2e.conftest import ROOT, Pilot, server_database
from tests.integration.case_helpers import PNG, pdf_named

pytestmark = pytest.mark.e2e

BUYER = "北京买方贸易有限公司"
BUYER_TAX_ID = "91110000MA01XKQ2TQ"
ITEM = "*信息技术服务*软件开发"
TAX_CODE = "3040201000000000000"
INVOICE = re.compile(r".*/invoices/(\d{20})/$")
CASE = re.compile(r".*/cases/([0-9a-f-]{36})/(\?submitted=1)?$")
ACCEPTANCE = re.compile(r"BJ-\d{4}-\d{6}")
GUIDE_DIR = ROOT / "src" / "fapiao" / "recovery" / "static" / "recovery" / "guide"
DOCS_DIR = ROOT / "docs" / "images"
# zh-Hans labels of the invoice's origin (fapiao.platform.labels.ORIGINS).
RESTORED, REISSUED = "经补救申请恢复", "经补救申请补开"


# --- the merchant ---------------------------------------------------------------------------------


def issue_invoice(pilot: Pilot) -> str:
    """1,000.00 + 6% on the clerk's issue form; returns the new invoice's number."""
    page = pilot.page
    pilot.goto("/invoices/new/")
    page.fill("#f-buyer_name", BUYER)
    page.fill("#f-buyer_tax_id", BUYER_TAX_ID)
    page.fill("#f-lines-0-name", ITEM)
    page.fill("#f-lines-0-tax_code", TAX_CODE)
    page.fill("#f-lines-0-unit", "项")
    page.fill("#f-lines-0-quantity", "1")
    page.fill("#f-lines-0-unit_price", "1000")
    page.select_option("#f-lines-0-tax_rate", "0.06")
    page.click("button.primary[value=review]")
    page.click("button[value=confirm]")
    page.wait_for_url(INVOICE)
    match = INVOICE.match(page.url)
    assert match
    return match.group(1)


def download_receipt(pilot: Pilot, folder: Path) -> tuple[Path, Path]:
    """The invoice page's receipt and the platform's public keys, saved in ``folder``."""
    page = pilot.page
    with page.expect_download() as receipt:
        page.click(".receipt-box a.primary")
    receipt_file = folder / receipt.value.suggested_filename
    receipt.value.save_as(receipt_file)
    with page.expect_download() as keys:
        page.click(".receipt-box a[download='keys.json']")
    keys_file = folder / "keys.json"
    keys.value.save_as(keys_file)
    return receipt_file, keys_file


def lose_invoice(database: Path, number: str) -> dict[str, Any]:
    """Delete the invoice's row behind the server's back (its ledger entry stays)."""
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db, db:
        row = db.execute(
            "SELECT id, issued_on, total_with_tax FROM invoices_invoice WHERE number = ?", [number]
        ).fetchone()
        assert row, f"invoice {number} is not in {database}"
        db.execute("DELETE FROM invoices_invoiceline WHERE invoice_id = ?", [row[0]])
        db.execute("DELETE FROM invoices_invoice WHERE id = ?", [row[0]])
    return {"issued_on": str(row[1]), "yuan": f"{row[2] // 100}.{row[2] % 100:02d}"}


def search_finds_nothing(pilot: Pilot, number: str, kept: dict[str, Any]) -> Path:
    page = pilot.page
    pilot.goto("/invoices/")
    page.fill("#f-number", number)
    page.fill("#f-buyer", BUYER)
    page.fill("#f-date_from", kept["issued_on"])
    page.fill("#f-date_to", kept["issued_on"])
    page.fill("#f-amount_min", kept["yuan"])
    page.fill("#f-amount_max", kept["yuan"])
    page.click("form.search button.primary")
    page.wait_for_selector("main .empty a.button.primary[href^='/cases/new/']")
    assert page.locator("table.invoices").count() == 0
    return pilot.shot("step1-search")


def fill_claim(pilot: Pilot, *, narrative: str, **fields: str) -> None:
    for name, value in fields.items():
        pilot.page.fill(f"#f-{name}", value)
    pilot.page.fill("#f-narrative", narrative)


def save_claim(pilot: Pilot) -> str:
    """Save the application form; returns the case page's address."""
    pilot.page.click("main form.stack button.primary[type=submit]")
    pilot.page.wait_for_url(CASE)
    return str(pilot.page.url)


def upload(pilot: Pilot, kind: str, *files: Path) -> None:
    """Pick the files, press Upload: the script sends them one by one, then reloads the page."""
    page = pilot.page
    page.select_option("#f-type", kind)
    page.set_input_files("#f-file", [str(f) for f in files])
    expect(page.locator("[data-queue] li")).to_have_count(len(files))  # listed before they are sent
    with page.expect_navigation():
        page.click("[data-upload-button]")
    for file in files:
        expect(page.locator(f"#files-heading ~ .table-wrap a:has-text('{file.name}')")).to_be_visible()


def act(pilot: Pilot, action: str) -> None:
    """Press the button of one of the case page's action forms (submit, claim, confirm …)."""
    with pilot.page.expect_navigation():
        pilot.page.click(f"form[action$='/act/{action}/'] button[type=submit]")


def state_is(pilot: Pilot, state: str) -> None:
    expect(pilot.page.locator(f".title-row .case-state-{state}")).to_be_visible()


def submit(pilot: Pilot) -> str:
    """Submit the draft; returns the acceptance number shown with the receipt link."""
    act(pilot, "submit")
    pilot.page.wait_for_selector("#submitted-heading")
    number = str(pilot.page.inner_text(".acceptance-no"))
    assert ACCEPTANCE.fullmatch(number), number
    return number


def pdf_text(data: bytes) -> str:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return "\n".join(page.extract_text() or "" for page in pdf.pages)


def download_submission_receipt(pilot: Pilot, acceptance: str, files: list[Path]) -> None:
    page = pilot.page
    with page.expect_download() as download:
        page.click("#submitted-heading ~ p a.primary[download]")
    data = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename == f"{acceptance}.pdf"
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert acceptance in text
    for file in files:  # every file handed in, by its fingerprint
        assert hashlib.sha256(file.read_bytes()).hexdigest() in text, file.name


def find_invoice(pilot: Pilot, number: str, origin: str) -> Path:
    """我的发票 finds the number again; its page says where it came from."""
    page = pilot.page
    pilot.goto(f"/invoices/?number={number}")
    rows = page.locator("table.invoices tbody tr")
    expect(rows).to_have_count(1)
    pilot.shot("found-again")
    rows.locator(f"a:has-text('{number}')").click()
    page.wait_for_url(INVOICE)
    expect(page.locator("dl.facts")).to_contain_text(origin)
    return pilot.shot("invoice-recovered")


# --- the staff -------------------------------------------------------------------------------------


def open_case(pilot: Pilot, acceptance: str) -> None:
    """From the staff's queue of cases."""
    page = pilot.page
    pilot.goto("/cases/")
    pilot.shot("queue")
    page.click(f"table.cases a:has-text('{acceptance}')")
    page.wait_for_url(CASE)


def open_form(pilot: Pilot, action: str) -> Any:
    """Unfold the <details> card that holds a decision's form; returns the form."""
    form = pilot.page.locator(f"form[action$='/act/{action}/']")
    pilot.page.locator("details.card", has=form).locator("summary").click()
    expect(form).to_be_visible()
    return form


def claim_and_approve(pilot: Pilot, reason_template: str) -> None:
    act(pilot, "claim")
    state_is(pilot, "in_review")
    form = open_form(pilot, "approve")
    form.locator("#approve-template").select_option(reason_template)
    pilot.shot("approve")
    with pilot.page.expect_navigation():
        form.locator("button[type=submit]").click()
    state_is(pilot, "approved")


def open_remedy(pilot: Pilot, remedy: str) -> None:
    pilot.page.click(f"a[href$='/resolve/?remedy={remedy}']")
    pilot.page.wait_for_selector("#resolve-form")


def resolve(pilot: Pilot, remedy: str, note: str = "") -> None:
    """On the restore / re-issue page: read what will be written, add a note, resolve.

    There is nothing to type: the remedy writes the ledger's entry or the claim as reviewed."""
    page = pilot.page
    expect(page.locator("#resolve-form input[type=text], #resolve-form select")).to_have_count(0)
    if note:
        page.fill("#f-note", note)
    pilot.shot(f"{remedy}-form")
    page.click("#resolve-form button[type=submit]")
    page.wait_for_url(CASE)
    state_is(pilot, "resolved")
    pilot.shot(f"{remedy}d")


def assert_clean(*pilots: Pilot) -> None:
    problems = [problem for pilot in pilots for problem in pilot.problems]
    assert not problems, "\n".join(problems)


def publish_guide_shots(shots: dict[str, Path]) -> None:
    """Copy the guide's screenshots, as 256-colour PNGs, where the guide pages find them."""
    if not os.environ.get("FAPIAO_GUIDE_SHOTS"):
        return
    from PIL import Image

    GUIDE_DIR.mkdir(parents=True, exist_ok=True)
    for name, shot in shots.items():
        with Image.open(shot) as image:
            small = image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
        small.save(GUIDE_DIR / f"{name}.png", optimize=True)
        small.save(DOCS_DIR / f"recovery-{name}.png", optimize=True)


# --- the journeys -----------------------------------------------------------------------------------


def test_restore_journey(pilot_for: Any, demo_password: str, e2e_server: Any, tmp_path: Path) -> None:
    clerk, support, reviewer = pilot_for("case-clerk"), pilot_for("case-support"), pilot_for("case-reviewer")
    for pilot, username in ((clerk, "clerk"), (support, "support"), (reviewer, "reviewer")):
        pilot.sign_in(username, demo_password)
    guide: dict[str, Path] = {}
    page = clerk.page

    number = issue_invoice(clerk)
    system_receipt, _keys = download_receipt(clerk, tmp_path)
    kept = lose_invoice(server_database(e2e_server), number)

    # 1. 确认: the search finds nothing and offers the application, with what was searched for.
    guide["step1-search"] = search_finds_nothing(clerk, number, kept)
    page.click("main .empty a.button.primary")
    page.wait_for_selector("#f-narrative")
    assert page.input_value("#f-number") == number
    assert page.input_value("#f-issued_on") == kept["issued_on"]
    assert page.input_value("#f-buyer_name") == BUYER
    assert page.input_value("#f-total_with_tax") == kept["yuan"]

    # 2. 申请: the claim, two files, submit; the acceptance number and the receipt PDF.
    fill_claim(
        clerk,
        buyer_tax_id=BUYER_TAX_ID,
        narrative="11月开具后上传中断，我的发票里查不到这张发票。附合同和开票时的系统回执。",
    )
    guide["step2-apply"] = clerk.shot("step2-apply")
    case_url = save_claim(clerk)
    state_is(clerk, "draft")
    clerk.shot("draft")
    contract = tmp_path / "合同.pdf"
    contract.write_bytes(pdf_named(f"contract {number}"))
    upload(clerk, "contract", contract)
    upload(clerk, "system_receipt", system_receipt)
    expect(page.locator("td.check-verified")).to_have_count(1)  # the receipt checks out
    acceptance = submit(clerk)
    guide["step2-submitted"] = clerk.shot("step2-submitted")
    download_submission_receipt(clerk, acceptance, [contract, system_receipt])

    # 3. 补正: support asks for the bank statement and one thing of their own.
    open_case(support, acceptance)
    form = open_form(support, "request-info")
    form.locator("#request-item-2").check()  # the bank statement showing the payment
    form.locator("#request-other-1").fill("盖有银行印章的付款回单")
    expect(form.locator("#request-body")).to_contain_text(acceptance)  # the notice names the case
    support.shot("request-info")
    with support.page.expect_navigation():
        form.locator("button[type=submit]").click()
    state_is(support, "needs_info")
    support.shot("asked")

    clerk.goto("/")
    expect(page.locator(".notifications .badge")).to_be_visible()
    clerk.goto("/cases/notifications/")
    expect(page.locator(".notification-list li.unread").first).to_be_visible()
    clerk.shot("notifications")
    clerk.page.goto(case_url)
    state_is(clerk, "needs_info")
    asked = page.locator(".waiting-you .checklist li")
    expect(asked).to_have_count(2)
    expect(asked.last).to_have_text("盖有银行印章的付款回单")
    guide["step3-needs-info"] = clerk.shot("step3-needs-info")
    statement = tmp_path / "付款回单.png"
    statement.write_bytes(PNG)
    upload(clerk, "bank_statement", statement)
    state_is(clerk, "in_review")  # the file is the answer: back to review
    clerk.shot("answered")

    # 4. 审核: the reviewer sees the ledger's entry, takes the case, approves, restores.
    open_case(reviewer, acceptance)
    expect(reviewer.page.locator("#side-system-heading ~ .table-wrap tbody tr")).to_have_count(1)
    reviewer.shot("case-desk")
    claim_and_approve(reviewer, "receipt_verified")
    open_remedy(reviewer, "restore")
    written = reviewer.page.locator("#invoice-heading ~ dl.facts, #invoice-heading ~ .table-wrap")
    for shown in (BUYER, ITEM, kept["issued_on"]):  # exactly the ledger entry's invoice
        expect(written.filter(has_text=shown).first).to_be_visible()
    resolve(reviewer, "restore", note="系统回执与账本一致。")

    # 5. 核对: 我的发票 has it again, restored; its new receipt verifies offline; the clerk confirms.
    guide["step5-check"] = find_invoice(clerk, number, RESTORED)
    (tmp_path / "restored").mkdir()
    receipt, keys = download_receipt(clerk, tmp_path / "restored")
    verdict = verify_receipt(receipt.read_bytes(), load_public_keys(keys))
    assert verdict.ok, verdict.message_en
    assert verdict.entry is not None and verdict.entry["kind"] == "restore"
    assert verdict.entry["invoice"]["number"] == number
    case_id = CASE.match(case_url)
    assert case_id and verdict.entry["ref"] == case_id.group(1)  # the ledger names the case
    clerk.page.goto(case_url)
    state_is(clerk, "resolved")
    beside = page.locator("table.written-beside-claimed")  # what was written, beside the claim
    expect(beside).to_contain_text(number)
    expect(beside.locator("tr.failed")).to_have_count(0)
    clerk.shot("resolved")
    act(clerk, "confirm")
    state_is(clerk, "confirmed")
    clerk.shot("confirmed")

    publish_guide_shots(guide)
    assert_clean(clerk, support, reviewer)


def test_reject_then_resubmit(pilot_for: Any, demo_password: str, tmp_path: Path) -> None:
    clerk, reviewer = pilot_for("reject-clerk"), pilot_for("reject-reviewer")
    clerk.sign_in("clerk", demo_password)
    reviewer.sign_in("reviewer", demo_password)
    page = clerk.page
    number = f"011001900111-{secrets.randbelow(10**8):08d}"

    clerk.goto("/cases/")
    clerk.shot("my-applications")
    page.click("main .title-row a.button.primary[href='/cases/new/']")
    fill_claim(
        clerk,
        number=number,
        issued_on="2025-03-05",
        buyer_name=BUYER,
        total_with_tax="１,０６０.００ 元",  # as a clerk might type it
        narrative="旧版发票，系统里查不到。",
    )
    case_url = save_claim(clerk)
    contract = tmp_path / "合同.pdf"
    contract.write_bytes(pdf_named(f"contract {number}"))
    upload(clerk, "contract", contract)
    acceptance = submit(clerk)

    open_case(reviewer, acceptance)
    act(reviewer, "claim")
    form = open_form(reviewer, "reject")
    with reviewer.page.expect_navigation():
        form.locator("button[type=submit]").click()  # neither a template nor words: refused
    expect(reviewer.page.locator("#reject-reason-error")).to_be_visible()
    expect(reviewer.page.locator("details.card[open] form[action$='/act/reject/']")).to_be_visible()
    reviewer.shot("reject-needs-reason")
    form = reviewer.page.locator("form[action$='/act/reject/']")
    form.locator("#reject-template").select_option("evidence_insufficient")
    form.locator("#reject-reason").fill("请补充付款银行回单。")
    with reviewer.page.expect_navigation():
        form.locator("button[type=submit]").click()
    state_is(reviewer, "rejected")
    reviewer.shot("rejected")

    page.goto(case_url)
    state_is(clerk, "rejected")
    expect(page.locator("#claim-heading ~ dl.facts")).to_contain_text("请补充付款银行回单。")
    clerk.shot("rejected")
    page.click("main a.button[href$='/edit/']")
    assert page.input_value("#f-number") == number
    clerk.shot("edit")
    edited = "旧版发票，系统里查不到。已补充付款银行回单。"
    page.fill("#f-narrative", edited)
    save_claim(clerk)
    statement = tmp_path / "银行回单.pdf"
    statement.write_bytes(pdf_named(f"statement {number}"))
    upload(clerk, "bank_statement", statement)
    act(clerk, "resubmit")
    state_is(clerk, "submitted")
    expect(page.locator("#claim-heading ~ p.remark")).to_have_text(edited)
    clerk.shot("resubmitted")

    reviewer.page.reload()
    state_is(reviewer, "submitted")
    expect(reviewer.page.locator("form[action$='/act/claim/']")).to_be_visible()  # back in the queue
    expect(reviewer.page.locator("#files-heading ~ .table-wrap")).to_contain_text("银行回单.pdf")
    reviewer.shot("resubmitted")
    assert_clean(clerk, reviewer)


def test_reissue(pilot_for: Any, demo_password: str, tmp_path: Path) -> None:
    clerk, reviewer = pilot_for("reissue-clerk"), pilot_for("reissue-reviewer")
    clerk.sign_in("clerk", demo_password)
    reviewer.sign_in("reviewer", demo_password)
    page = clerk.page
    claimed = f"011001900111-{secrets.randbelow(10**8):08d}"  # the ledger has never seen it

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
        narrative="手工开具的旧版发票，存根联在，系统里没有。",
    )
    page.select_option("#f-kind", "ordinary")  # a re-issue writes the claim: all of it
    case_url = save_claim(clerk)
    stub = tmp_path / "存根联.pdf"
    stub.write_bytes(pdf_named(f"stub {claimed}"))
    upload(clerk, "stub_copy", stub)
    acceptance = submit(clerk)

    open_case(reviewer, acceptance)
    claim_and_approve(reviewer, "evidence_consistent")
    open_remedy(reviewer, "reissue")
    expect(reviewer.page.locator("#invoice-heading ~ .table-wrap")).to_contain_text(
        f"详见补救申请{acceptance}"
    )
    resolve(reviewer, "reissue")
    result = reviewer.page.locator("#result-heading ~ p").first
    expect(result).to_contain_text(claimed)

    page.goto(case_url)
    state_is(clerk, "resolved")
    clerk.shot("reissued")
    page.click("#result-heading ~ p a.button")
    page.wait_for_url(INVOICE)
    match = INVOICE.match(page.url)
    assert match and match.group(1) != claimed
    expect(page.locator("dl.facts")).to_contain_text(REISSUED)
    clerk.shot("reissued-invoice")
    page.goto(case_url)
    act(clerk, "confirm")
    state_is(clerk, "confirmed")
    clerk.shot("confirmed")
    assert_clean(clerk, reviewer)


def test_guide_shows_the_screenshots(pilot_for: Any) -> None:
    """The guide is public, and every screenshot it shows is served."""
    pilot = pilot_for("guide")
    page = pilot.page
    pilot.goto("/cases/guide/")
    images = page.locator("main img")
    sources = [images.nth(i).get_attribute("src") or "" for i in range(images.count())]
    assert len(sources) == 5, sources
    for source in sources:
        response = page.request.get(pilot.base + source)
        assert response.ok and response.body().startswith(b"\x89PNG"), source
    for i in range(len(sources)):  # lazily loaded: bring each into view before the screenshot
        images.nth(i).scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('main img')].every(i => i.naturalWidth > 0)")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the screenshots make the guide {overflow}px wider than the window"
    pilot.shot("recovery-guide")
    page.click("main a[href$='/guide/receipts/']")
    pilot.shot("receipts-guide")
    pilot.assert_clean()
