"""A clerk's day in Chromium: catalogue, address book, issue, find, receipt, print, red-letter,
batch issuing with a bad row, totals, English and back, phone width."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from fapiao.core.receipt import verify_receipt
from fapiao.core.signing import load_public_keys
from tests.e2e.conftest import Pilot

pytestmark = pytest.mark.e2e

BUYER = "北京买方贸易有限公司"
BUYER_TAX_ID = "91110000MA01XKQ2TQ"
PRODUCT = "*信息技术服务*软件开发"
NUMBER = re.compile(r"/invoices/(\d{20})/")


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def add_catalogue_entries(pilot: Pilot) -> None:
    page = pilot.page
    pilot.goto("/products/")
    pilot.shot("products-empty")
    page.click("text=添加项目")
    page.fill("#f-name", PRODUCT)
    page.fill("#f-tax_code", "3040201000000000000")
    page.fill("#f-unit", "项")
    page.fill("#f-unit_price", "1,000.00")
    page.select_option("#f-tax_rate", "0.06")
    pilot.shot("product-form")
    page.click("button.primary[type=submit]")
    page.wait_for_url(re.compile(r".*/products/$"))
    assert page.is_visible(f"td:has-text('{PRODUCT}')")
    pilot.shot("products")

    pilot.goto("/address-book/new/")
    page.fill("#f-name", BUYER)
    page.fill("#f-tax_id", BUYER_TAX_ID)
    page.fill("#f-phone", "13812345678")
    page.fill("#f-bank", "中国工商银行北京分行")
    page.fill("#f-bank_account", "0200001234567890123")
    pilot.shot("buyer-form")
    page.click("button.primary[type=submit]")
    page.wait_for_url(re.compile(r".*/address-book/$"))
    assert page.is_visible("text=138****5678")  # masked in the list
    pilot.shot("address-book")


def issue_from_catalogue(pilot: Pilot) -> str:
    page = pilot.page
    pilot.goto("/invoices/new/")
    pilot.shot("issue-empty")
    page.select_option("#f-buyer_id", label=f"{BUYER} · {BUYER_TAX_ID}")
    expect(page.locator("#f-buyer_name")).to_have_value(BUYER)  # filled from the address book (htmx)
    assert page.input_value("#f-buyer_tax_id") == BUYER_TAX_ID
    expect(page.locator('label[for="f-lines-0-unit_price"]')).to_contain_text("不含税单价")
    page.check("#f-prices-inclusive")  # one 含税/不含税 switch for the whole form
    # ... which renames every line's unit-price field at once, without a round trip.
    for line in (0, 1):
        label = page.locator(f'label[for="f-lines-{line}-unit_price"]')
        expect(label).to_contain_text("含税单价")
        expect(label).not_to_contain_text("不含税")
    page.select_option("#f-lines-0-product", index=1)
    assert page.input_value("#f-lines-0-name") == PRODUCT  # filled from the catalogue
    assert page.input_value("#f-lines-0-unit_price") == "1060.00"  # its 1,000.00 without tax, with tax
    page.fill("#f-lines-0-quantity", full_width("2"))
    page.fill("#f-lines-1-name", "*现代服务*咨询费")
    page.fill("#f-lines-1-quantity", "1")
    page.fill("#f-lines-1-unit_price", "530")
    # 2 × 1,060.00 with 6% included = 2,000.00 + 120.00; 530 = 500.00 + 30.00: 2,650.00 in all.
    expect(page.locator("#totals [data-words]")).to_have_text("贰仟陆佰伍拾圆整")
    pilot.shot("issue-live-totals")

    page.fill("#f-buyer_tax_id", "12345")  # a typo: the error is shown beside the field
    page.click("button.primary[value=review]")
    page.wait_for_selector("#error-summary")
    assert page.is_visible("#f-buyer_tax_id-error")
    pilot.shot("issue-errors")
    page.fill("#f-buyer_tax_id", BUYER_TAX_ID)
    page.click("button.primary[value=review]")
    page.wait_for_selector("button[value=confirm]")
    assert page.is_visible("text=贰仟陆佰伍拾圆整")
    assert page.is_visible("td:has-text('500.00')")  # the tax-inclusive 530 as stored
    pilot.shot("issue-confirm")
    page.dblclick("button[value=confirm]")  # a double click issues one invoice
    page.wait_for_url(NUMBER)
    match = NUMBER.search(page.url)
    assert match
    assert page.is_visible(".message-success")
    pilot.shot("invoice-detail")
    return match.group(1)


def find_it(pilot: Pilot, number: str) -> None:
    page = pilot.page
    pilot.goto("/invoices/")
    page.fill("#f-number", full_width(number))  # full-width digits find it too
    page.click("form.search button.primary")
    page.wait_for_selector(f"a:has-text('{number}')")
    pilot.shot("search-by-number")
    pilot.goto("/invoices/?" + "buyer=" + BUYER)
    assert page.locator(f"a:has-text('{number}')").count() == 1  # issued once despite the double click
    page.click(f"a:has-text('{number}')")
    page.wait_for_url(NUMBER)


def download_and_verify_receipt(pilot: Pilot, number: str, folder: Path) -> None:
    page = pilot.page
    with page.expect_download() as receipt_download:
        page.click(".receipt-box a.primary")
    receipt = folder / receipt_download.value.suggested_filename
    receipt_download.value.save_as(receipt)
    assert receipt.name == f"receipt-{number}.json"
    with page.expect_download() as keys_download:
        page.click(".receipt-box a[download='keys.json']")
    keys = folder / "keys.json"
    keys_download.value.save_as(keys)
    verdict = verify_receipt(receipt.read_bytes(), load_public_keys(keys))
    assert verdict.ok, verdict.message_en
    assert verdict.entry is not None and verdict.entry["invoice"]["number"] == number


def print_view(pilot: Pilot, number: str) -> None:
    page = pilot.page
    page.click("a[href*='/print/']")
    page.wait_for_selector(".fapiao-form")
    assert page.is_visible("text=贰仟陆佰伍拾圆整")
    pilot.shot("print-view")
    page.click("a.button.subtle")
    page.wait_for_url(NUMBER)


def red_letter_second_line(pilot: Pilot, number: str) -> str:
    page = pilot.page
    page.click("a.button.danger")
    page.wait_for_selector("#f-qty-2")
    pilot.shot("red-letter")
    page.fill("#f-qty-2", "1")
    page.select_option("#f-reason", "return")  # 红冲原因: 销货退回
    page.fill("#f-confirmation_no", "1101-2026-000123")
    page.click("button.primary[value=review]")
    page.wait_for_selector("button[value=confirm]")
    assert page.is_visible("text=负伍佰叁拾圆整")
    assert page.is_visible("text=销货退回")
    pilot.shot("red-letter-confirm")
    page.click("button[value=confirm]")
    page.wait_for_url(NUMBER)
    red = NUMBER.search(page.url)
    assert red and red.group(1) != number
    assert page.is_visible(f"a:has-text('{number}')")  # the red invoice links its blue original
    pilot.shot("red-invoice")
    page.click(f"a:has-text('{number}')")
    page.wait_for_url(NUMBER)
    assert page.is_visible(".state-partly_red")
    assert page.is_visible(f"a:has-text('{red.group(1)}')")  # and the blue one lists it
    pilot.shot("blue-after-red-letter")
    return red.group(1)


def batch_file(template: Path) -> Path:
    from openpyxl import load_workbook

    workbook = load_workbook(template)
    sheet = workbook.worksheets[0]
    rows: list[list[Any]] = [
        [
            BUYER,
            BUYER_TAX_ID,
            "普通发票",
            PRODUCT,
            "3040201000000000000",
            "",
            "项",
            "1",
            "1,000.00",
            "否",
            "6%",
            "",
        ],
        ["北京第二客户有限公司", "", "", "*现代服务*咨询费", "", "", "次", "2", "１０６", "是", "6%", "批量"],
        ["北京第三客户有限公司", "", "专用发票", "*现代服务*设计费", "", "", "", "1", "100", "", "7%", ""],
        ["北京第四客户有限公司", "", "", "*现代服务*培训费", "", "", "", "3", "50", "", "免税", ""],
    ]
    for row in rows:
        sheet.append(row)
    out = template.with_name("十一月批量开票.xlsx")
    workbook.save(out)
    return out


def batch_issue(pilot: Pilot, folder: Path) -> list[str]:
    page = pilot.page
    pilot.goto("/invoices/batch/")
    pilot.shot("batch-upload")
    with page.expect_download() as download:
        page.click("a[href$='template.xlsx']")
    template = folder / "template.xlsx"
    download.value.save_as(template)
    # Our own button and "nothing chosen" in Chinese stand in for the browser's ("Choose File").
    assert page.inner_text("#f-file ~ button.file-button") == "选择文件"
    assert page.inner_text("#f-file-names") == "未选择文件"
    box = page.locator("#f-file").bounding_box()
    assert box is not None and box["width"] <= 1, box
    sheet = batch_file(template)
    page.set_input_files("#f-file", str(sheet))
    assert page.inner_text("#f-file-names") == sheet.name
    page.click("button.primary[type=submit]")
    page.wait_for_selector("#bad-heading")
    # Row 4 of the sheet (the third data row): a special invoice without the buyer's number, 7%.
    bad = page.locator(".problems tbody tr")
    assert bad.count() >= 2
    reasons = page.inner_text(".problems")
    assert "第 4 行" in bad.first.inner_text()
    assert "购买方纳税人识别号" in reasons and "税率" in reasons  # the columns at fault, with the reasons
    pilot.shot("batch-preview")
    page.click("button.primary[type=submit]")
    page.wait_for_selector("h2:has-text('已开具的发票')", timeout=60_000)
    pilot.shot("batch-done")
    numbers = [link.inner_text() for link in page.locator("table a[href^='/invoices/']").all()]
    assert len(numbers) == 3
    return numbers


def totals(pilot: Pilot) -> None:
    pilot.goto("/totals/")
    assert pilot.page.is_visible("text=免税")
    pilot.shot("totals")


def english_and_back(pilot: Pilot) -> None:
    page = pilot.page
    pilot.goto("/invoices/")
    page.click("button[value=en]")
    page.wait_for_selector("h1:has-text('My invoices')")
    pilot.shot("english-invoices", chinese=False)
    pilot.goto("/invoices/new/")
    assert page.is_visible("h1:has-text('Issue an invoice')")
    pilot.shot("english-issue", chinese=False)
    page.click("button[value=zh-hans]")
    page.wait_for_selector("h1:has-text('开具发票')")
    pilot.shot("chinese-again")


def test_clerk_journey(pilot_for: Any, demo_password: str, tmp_path: Path) -> None:
    pilot = pilot_for("clerk")
    pilot.sign_in("clerk", demo_password)
    pilot.shot("home-empty")
    add_catalogue_entries(pilot)
    number = issue_from_catalogue(pilot)
    find_it(pilot, number)
    download_and_verify_receipt(pilot, number, tmp_path)
    print_view(pilot, number)
    red_letter_second_line(pilot, number)
    batch_issue(pilot, tmp_path)
    totals(pilot)
    english_and_back(pilot)
    pilot.goto("/")
    pilot.shot("home")
    pilot.goto("/password/")
    pilot.shot("password-change")
    pilot.expected_statuses.add(404)
    pilot.goto("/invoices/00000000000000000000/")
    pilot.shot("not-found")
    pilot.sign_out()
    pilot.assert_clean()


def test_phone_width(pilot_for: Any, demo_password: str) -> None:
    pilot = pilot_for("phone", width=390, height=844)
    pilot.sign_in("clerk", demo_password)
    pilot.shot("home")
    pilot.goto("/invoices/new/")
    pilot.page.fill("#f-lines-0-quantity", "1")
    pilot.page.fill("#f-lines-0-unit_price", "1000")
    expect(pilot.page.locator("#totals [data-words]")).to_have_text("壹仟零陆拾圆整")
    pilot.shot("issue")
    pilot.goto("/invoices/")
    pilot.shot("invoices")
    # Nothing wider than the screen but the tables, which scroll inside their own box.
    overflow = pilot.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than a phone"
    pilot.assert_clean()


def test_invoice_unreadable_without_sign_in(pilot_for: Any) -> None:
    pilot = pilot_for("anonymous")
    pilot.goto("/invoices/")
    assert "/login/" in pilot.page.url
    pilot.shot("login-redirect")
    pilot.assert_clean()
