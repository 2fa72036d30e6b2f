"""Issue 20's import page in Chromium: a merchant administrator uploads a CSV export, reads the
dry-run preview (can be imported / rejected with its reason / duplicate), imports it with the
progress bar, downloads the signed manifest and the rejected records, and finds the invoices under
销项; on a 390 px phone the same walk with received invoices ends under 进项.

The server is ``make run``'s, with a column mapping saved in its mappings directory.  With
``FAPIAO_GUIDE_SHOTS=1`` the screenshots docs/guide/import.md shows are copied to docs/images/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import VISIBLE_TEXT_JS, Pilot, demo_server
from tests.e2e.test_delivery_journey import download, publish
from tests.integration.import_helpers import MERCHANT, OTHER, csv_rows, number, save_mapping, write_csv
from tests.untranslated import english_words

pytestmark = pytest.mark.e2e


def upload(pilot: Pilot, path: Path, *, direction: str) -> None:
    page = pilot.page
    pilot.goto("/invoices/import/")
    page.set_input_files("#f-file", str(path))
    page.select_option("#f-direction", direction)
    page.select_option("#f-mapping", "old-erp")
    page.click("button:has-text('校验文件')")
    expect(page.locator("h2", has_text="检查结果")).to_be_visible()


def import_with_progress(pilot: Pilot, count: int) -> Path:
    """Press 导入; while the first step is held back, the progress bar is on screen (the shot)."""
    page = pilot.page
    held: list[Any] = []
    step = re.compile(r".*/invoices/import/[^/]+/step/$")

    def hold(route: Any) -> None:
        if released:
            route.continue_()
        else:
            held.append(route)

    released = False

    page.route(step, hold)
    page.click(f"button.primary:has-text('导入 {count} 张发票')")
    page.wait_for_url(re.compile(r".*/invoices/import/imp-[^/]+/$"))
    progress = page.locator("#import-progress progress")
    expect(progress).to_be_visible()
    expect(page.locator("#import-progress")).to_contain_text(f"已导入 0 / {count}")
    page.wait_for_timeout(1000)  # the step's delay (300 ms) has passed: the request is held
    assert held, "the page did not continue by itself"
    words = english_words(page.evaluate(VISIBLE_TEXT_JS))
    assert not words, words
    path = progress_shot(pilot)
    released = True
    for route in held:
        route.continue_()
    expect(page.get_by_text("签名的导入清单（JSON）")).to_be_visible(timeout=30_000)
    return path


def progress_shot(pilot: Pilot) -> Path:
    """A shot without waiting for the network to settle (a step request is held open)."""
    from tests.e2e.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{pilot.name}-{len(pilot.shots) + 1:02d}-progress.png"
    pilot.page.screenshot(path=str(path), full_page=True, caret="initial")
    pilot.shots.append(path)
    return path


def fits(pilot: Pilot) -> None:
    overflow = pilot.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{pilot.page.url} is {overflow} px wider than the screen"


def test_an_admin_previews_imports_and_finds_the_invoices(
    browser: Any, pilot_for: Any, tmp_path: Path, demo_password: str
) -> None:
    var = tmp_path / "var"
    save_mapping(var / "mappings")
    issued = csv_rows(4)
    issued[1][2] = OTHER  # another merchant's invoice: rejected with the reason
    sales = write_csv(tmp_path / "sales.csv", issued)
    earlier = write_csv(tmp_path / "earlier.csv", csv_rows(1))  # imported first: then a duplicate
    received = csv_rows(3, start=101, seller=OTHER, buyer_tax_id=MERCHANT)
    for row in received:
        row[3], row[4] = "北京供应商有限公司", "北京示例科技有限公司"
    purchases = write_csv(tmp_path / "purchases.csv", received)
    with demo_server(var, demo_password) as server:
        admin: Pilot = pilot_for("import", server=server)
        admin.sign_in("madmin", demo_password)
        page = admin.page
        upload(admin, earlier, direction="out")
        page.click("button.primary:has-text('导入 1 张发票')")
        expect(page.get_by_text("签名的导入清单（JSON）")).to_be_visible(timeout=30_000)
        admin.goto("/invoices/import/")
        shots = {"import-upload": admin.shot("upload")}
        upload(admin, sales, direction="out")
        expect(page.locator("main")).to_contain_text("读取 4 条，可导入 2，拒绝 1，重复 1")
        rows = page.locator("main table tbody tr")
        expect(rows.nth(0)).to_contain_text("重复")
        expect(rows.nth(1)).to_contain_text("已拒绝")
        expect(rows.nth(1)).to_contain_text("不是本商户的")
        expect(rows.nth(2)).to_contain_text("可导入")
        shots["import-preview"] = admin.shot("preview")

        shots["import-progress"] = import_with_progress(admin, 2)
        expect(page.locator("main")).to_contain_text("读取 4 条，已导入 2，拒绝 1，重复 1")
        signed = json.loads(download(admin, "a:has-text('签名的导入清单')", tmp_path))
        manifest = signed["manifest"]
        assert manifest["format"] == "fapiao-import/1" and signed["signature"]
        assert manifest["counts"]["accepted"] == 2 and manifest["counts"]["rejected"] == 1
        rejected = download(admin, "a:has-text('被拒绝的记录及原因')", tmp_path).decode()
        assert number(2) in rejected and "not_this_merchant" in rejected
        shots["import-done"] = admin.shot("done")

        admin.goto("/invoices/?direction=out")
        listing = page.locator("main")
        for serial in (1, 3, 4):
            expect(listing).to_contain_text(number(serial))
        expect(listing).not_to_contain_text(number(2))
        shots["import-sales"] = admin.shot("sales-tab")
        admin.assert_clean()

        phone: Pilot = pilot_for("import-phone", width=390, height=844, server=server)
        phone.sign_in("madmin", demo_password)
        upload(phone, purchases, direction="in")
        expect(phone.page.locator("main")).to_contain_text("读取 3 条，可导入 3，拒绝 0，重复 0")
        fits(phone)
        shots["import-preview-phone"] = phone.shot("preview")
        shots["import-progress-phone"] = import_with_progress(phone, 3)
        fits(phone)
        shots["import-done-phone"] = phone.shot("done")
        phone.goto("/invoices/?direction=in")
        for serial in (101, 102, 103):
            expect(phone.page.locator("main")).to_contain_text(number(serial))
        expect(phone.page.locator("main")).not_to_contain_text(number(1))
        fits(phone)
        shots["import-received-phone"] = phone.shot("received-tab")
        phone.assert_clean()
    publish(shots)
