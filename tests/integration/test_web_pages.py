"""The clerk's pages through Django's test client: issue, find, open, red-letter, batch, catalogue.

The browser tests (tests/e2e) walk the same flows in Chromium; these run in every pass and
check the details a screenshot cannot: stored values, idempotency, scoping, error mapping.
"""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from fapiao.catalogue.models import Batch, BatchRow, Buyer, Product
from fapiao.core.receipt import verify_receipt
from fapiao.invoices.models import Invoice
from fapiao.platform import keys

pytestmark = pytest.mark.django_db

BUYER = {"buyer_name": "北京买方贸易有限公司", "buyer_tax_id": "91110000MA01XKQ2TQ"}


@pytest.fixture
def clerk(demo: dict[str, Any]) -> Client:
    client = Client()
    client.force_login(demo["clerk"])
    return client


def form(**values: str) -> dict[str, str]:
    data = {"kind": "ordinary", "line_count": "2", **BUYER}
    data.update(
        {
            "lines-0-name": "*信息技术服务*软件开发",
            "lines-0-tax_code": "3040201000000000000",
            "lines-0-unit": "项",
            "lines-0-quantity": "1",
            "lines-0-unit_price": "1,000.00",
            "lines-0-tax_rate": "0.06",
            "lines-1-tax_rate": "0.06",
        }
    )
    data.update(values)
    return data


def full_width(text: str) -> str:
    """１２３ for 123: what a clerk's Chinese input method may type."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def token_of(html: str) -> str:
    match = re.search(r'name="form_token" value="([0-9a-f]{32})"', html)
    assert match, "the confirmation page carries a form token"
    return match.group(1)


def confirm(client: Client, data: dict[str, str]) -> Any:
    review = client.post("/invoices/new/", {**data, "action": "review"})
    assert review.status_code == 200
    html = review.content.decode()
    assert "form_token" in html, html[:3000]
    return client.post("/invoices/new/", {**data, "action": "confirm", "form_token": token_of(html)})


def test_pages_need_a_sign_in(db: None) -> None:
    response = Client().get("/invoices/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_issue_review_confirm_and_detail(clerk: Client) -> None:
    review = clerk.post("/invoices/new/", {**form(), "action": "review"})
    html = review.content.decode()
    assert "1000.00" in html and "壹仟零陆拾圆整" in html  # what will be stored, and in words
    token = token_of(html)
    first = clerk.post("/invoices/new/", {**form(), "action": "confirm", "form_token": token})
    second = clerk.post(
        "/invoices/new/", {**form(), "action": "confirm", "form_token": token}
    )  # double click
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Invoice.objects.count() == 1
    invoice = Invoice.objects.get()
    assert invoice.total_with_tax == 106000
    detail = clerk.get(first["Location"])
    page = detail.content.decode()
    assert invoice.number in page and "壹仟零陆拾圆整" in page
    assert "已开具" in page or invoice.number in page


def test_money_as_typed(clerk: Client) -> None:
    response = confirm(clerk, form(**{"lines-0-unit_price": "１，０００．５０", "lines-0-quantity": "２"}))
    assert response.status_code == 302
    line = Invoice.objects.get().lines.get()
    assert (line.quantity, line.unit_price, line.amount) == ("2", "1000.50", 200100)


def test_tax_inclusive_price_is_converted_as_documented(clerk: Client) -> None:
    data = form(prices="inclusive", **{"lines-0-unit_price": "1060"})
    response = confirm(clerk, data)
    assert response.status_code == 302
    line = Invoice.objects.get().lines.get()
    assert line.unit_price == "1000.00"
    assert (line.amount, line.tax) == (100000, 6000)


@pytest.mark.parametrize("prices", ["exclusive", "", "both", "on"])
def test_prices_without_tax_unless_the_switch_says_with_tax(clerk: Client, prices: str) -> None:
    assert confirm(clerk, form(prices=prices, **{"lines-0-unit_price": "1060"})).status_code == 302
    line = Invoice.objects.get().lines.get()
    assert (line.unit_price, line.amount, line.tax) == ("1060", 106000, 6360)


def test_one_switch_converts_every_line(clerk: Client) -> None:
    data = form(
        prices="inclusive",
        **{"lines-0-unit_price": "1060", "lines-1-name": "*现代服务*咨询费", "lines-1-quantity": "2",
           "lines-1-unit_price": "113",
           "lines-1-tax_rate": "0.13"},
    )  # fmt: skip
    assert confirm(clerk, data).status_code == 302
    lines = Invoice.objects.get().lines.order_by("no")
    assert [(line.unit_price, line.amount, line.tax) for line in lines] == [
        ("1000.00", 100000, 6000),
        ("100.00", 20000, 2600),
    ]


@pytest.mark.parametrize(
    ("includes_tax", "prices", "shown"),
    [(True, "inclusive", "1060"), (True, "exclusive", "1000.00"), (False, "inclusive", "1060.00"),
     (False, "exclusive", "1000")],
)  # fmt: skip
def test_a_catalogue_price_is_offered_on_the_forms_basis(
    clerk: Client, demo: dict[str, Any], includes_tax: bool, prices: str, shown: str
) -> None:
    product = Product.objects.create(
        merchant=demo["clerk"].merchant, name="*信息技术服务*软件开发", tax_code="3040201000000000000",
        unit="项", unit_price="1060" if includes_tax else "1000", price_includes_tax=includes_tax,
        tax_rate="0.06",
    )  # fmt: skip
    page = clerk.get("/invoices/new/").content.decode()  # both prices, for the page's script
    assert 'data-price-exclusive="1000' in page and 'data-price-inclusive="1060' in page
    # Without script the server fills the line from the entry, on the form's basis.
    data = {"kind": "ordinary", "line_count": "1", "prices": prices, "lines-0-product": str(product.pk),
            "lines-0-quantity": "1", **BUYER}  # fmt: skip
    html = clerk.post("/invoices/new/", {**data, "action": "edit"}).content.decode()
    assert f'name="lines-0-unit_price" value="{shown}"' in html or re.search(
        rf'name="lines-0-unit_price"[^>]*value="{re.escape(shown)}"', html
    ), html[:3000]
    assert confirm(clerk, {**data, "lines-0-unit_price": shown, "lines-0-name": product.name,
                           "lines-0-tax_rate": "0.06"}).status_code == 302  # fmt: skip
    line = Invoice.objects.get().lines.get()
    assert (Decimal(line.unit_price), line.amount, line.tax) == (1000, 100000, 6000)


def test_every_error_beside_its_field_at_once(clerk: Client) -> None:
    data = form(
        buyer_name="",
        buyer_tax_id="12345",
        **{"lines-0-quantity": "1,00", "lines-1-name": "第二行", "lines-1-unit_price": "abc"},
    )
    response = clerk.post("/invoices/new/", {**data, "action": "review"})
    html = response.content.decode()
    assert Invoice.objects.count() == 0
    for name in ("buyer_name", "buyer_tax_id", "lines-0-quantity", "lines-1-quantity", "lines-1-unit_price"):
        assert f'id="f-{name}-error"' in html, name
        assert f'href="#f-{name}"' in html, name  # listed in the summary, linked to the input
    assert 'role="alert"' in html


def test_live_totals_come_from_the_server(clerk: Client) -> None:
    response = clerk.post("/invoices/new/totals/", form(**{"lines-0-quantity": "3"}))
    html = response.content.decode()
    assert response.status_code == 200
    assert "¥3,180.00" in html and "叁仟壹佰捌拾圆整" in html


def test_add_and_remove_lines(clerk: Client) -> None:
    added = clerk.post("/invoices/new/", {**form(), "action": "add_line"}).content.decode()
    assert 'name="lines-2-name"' in added
    removed = clerk.post("/invoices/new/", {**form(), "remove_line": "0"}).content.decode()
    assert 'name="lines-1-name"' not in removed
    assert "*信息技术服务*软件开发" not in removed


def test_search_full_width_export_and_empty(clerk: Client) -> None:
    confirm(clerk, form())
    invoice = Invoice.objects.get()
    wide = full_width(invoice.number)
    found = clerk.get("/invoices/", {"number": wide}).content.decode()
    assert invoice.number in found and "1 张" in found
    assert (
        invoice.number
        in clerk.get("/invoices/", {"buyer": full_width("91110000MA01XKQ2TQ")}).content.decode()
    )
    assert (
        invoice.number in clerk.get("/invoices/", {"amount_min": "1,000", "sort": "-total"}).content.decode()
    )
    none = clerk.get("/invoices/", {"amount_min": "999999"}).content.decode()
    assert "没有符合" in none
    bad = clerk.get("/invoices/", {"date_from": "yesterday"}).content.decode()
    assert 'id="f-date_from-error"' in bad
    csv = clerk.get("/invoices/", {"number": invoice.number, "format": "csv"})
    assert csv["Content-Disposition"].startswith("attachment")
    assert invoice.number in csv.content.decode("utf-8-sig")
    xlsx = clerk.get("/invoices/", {"format": "xlsx"})
    assert xlsx.content[:2] == b"PK"


def test_receipt_download_verifies(clerk: Client) -> None:
    confirm(clerk, form())
    invoice = Invoice.objects.get()
    response = clerk.get(f"/invoices/{invoice.number}/receipt/")
    assert response["Content-Disposition"] == f'attachment; filename="receipt-{invoice.number}.json"'
    verdict = verify_receipt(response.content, keys.registry())
    assert verdict.ok, verdict.message_en
    print_view = clerk.get(f"/invoices/{invoice.number}/print/").content.decode()
    assert "价税合计" in print_view and "壹仟零陆拾圆整" in print_view


def test_red_letter_one_line(clerk: Client) -> None:
    data = form(**{"lines-1-name": "*现代服务*咨询", "lines-1-quantity": "2", "lines-1-unit_price": "50"})
    confirm(clerk, data)
    blue = Invoice.objects.get()
    page = clerk.get(f"/invoices/{blue.number}/red-letter/").content.decode()
    assert 'name="qty-2"' in page
    too_much = clerk.post(f"/invoices/{blue.number}/red-letter/", {"mode": "lines", "qty-2": "3"})
    assert 'id="f-qty-2-error"' in too_much.content.decode()
    no_reason = clerk.post(f"/invoices/{blue.number}/red-letter/", {"mode": "lines", "qty-2": "1"})
    asked = no_reason.content.decode()
    assert 'id="f-reason-error"' in asked and "此项不能为空。" in asked
    assert 'value="return"' in asked and "销货退回" in asked
    review = clerk.post(
        f"/invoices/{blue.number}/red-letter/",
        {"mode": "lines", "qty-2": "1", "confirmation_no": "ABC-1", "reason": "return"},
    )
    assert "销货退回" in review.content.decode()
    html = review.content.decode()
    token = token_of(html)
    body = {
        "mode": "lines",
        "qty-2": "1",
        "confirmation_no": "ABC-1",
        "reason": "return",
        "action": "confirm",
        "form_token": token,
    }
    first = clerk.post(f"/invoices/{blue.number}/red-letter/", body)
    again = clerk.post(f"/invoices/{blue.number}/red-letter/", body)
    assert first.status_code == again.status_code == 302 and first["Location"] == again["Location"]
    red = Invoice.objects.get(colour="red")
    assert red.original_id == blue.pk and red.confirmation_no == "ABC-1"
    assert red.remark.startswith("红冲原因：销货退回")
    assert red.total_with_tax == -5300
    blue.refresh_from_db()
    assert blue.state == "partly_red"
    detail = clerk.get(f"/invoices/{blue.number}/").content.decode()
    assert red.number in detail


def test_another_merchants_invoice_is_not_found(clerk: Client, demo: dict[str, Any]) -> None:
    confirm(clerk, form())
    number = Invoice.objects.get().number
    other = Client()
    other.force_login(demo["clerk2"])
    response = other.get(f"/invoices/{number}/")
    assert response.status_code == 404
    assert "找不到" in response.content.decode()
    assert other.get(f"/invoices/{number}/receipt/").status_code == 404


def test_staff_cannot_issue(demo: dict[str, Any]) -> None:
    client = Client()
    client.force_login(demo["auditor"])
    response = client.get("/invoices/new/")
    assert response.status_code == 403
    assert "不允许" in response.content.decode() or "无权" in response.content.decode()


def test_a_refused_page_is_in_the_audit_trail(demo: dict[str, Any]) -> None:
    from fapiao.audit.models import AuditRecord

    client = Client()
    client.force_login(demo["auditor"])
    assert client.post("/invoices/new/", {"kind": "ordinary"}).status_code == 403
    (refused,) = AuditRecord.objects.filter(action="access.forbidden")
    assert refused.actor_username == "auditor"
    expected = {"status": 403, "code": "page_forbidden", "method": "POST", "path": "/invoices/new/"}
    assert refused.after == expected


def test_address_book_and_catalogue(clerk: Client) -> None:
    bad = clerk.post("/address-book/new/", {"name": "", "tax_id": "123"}).content.decode()
    assert 'id="f-name-error"' in bad and 'id="f-tax_id-error"' in bad
    saved = clerk.post(
        "/address-book/new/", {"name": "北京客户", "tax_id": "91110000MA01XKQ2TQ", "phone": "13812345678"}
    )
    assert saved.status_code == 302
    listing = clerk.get("/address-book/").content.decode()
    assert "北京客户" in listing and "138****5678" in listing and "13812345678" not in listing
    duplicate = clerk.post("/address-book/new/", {"name": "北京客户"}).content.decode()
    assert 'id="f-name-error"' in duplicate
    buyer = Buyer.objects.get()
    with connection.cursor() as cursor:  # stored encrypted: no plaintext phone in the row
        cursor.execute("SELECT * FROM catalogue_buyer")
        assert "13812345678" not in repr(cursor.fetchall())
    found = clerk.get("/address-book/", {"q": full_width("91110000MA01XKQ2TQ")}).content.decode()
    assert "北京客户" in found  # exact search by taxpayer number, through the blind index
    filled = clerk.get("/invoices/new/buyer/", {"buyer_id": str(buyer.pk)}).content.decode()
    assert 'value="北京客户"' in filled and 'value="13812345678"' in filled  # an audited reveal
    edit = clerk.get(f"/address-book/{buyer.pk}/").content.decode()
    assert 'value="13812345678"' in edit  # shown in full to change it (an audited reveal)
    changed = clerk.post(f"/address-book/{buyer.pk}/", {"name": "北京客户", "phone": "13900001111"})
    assert changed.status_code == 302
    assert "139****1111" in clerk.get("/address-book/").content.decode()
    assert 'value="13900001111"' in clerk.get(f"/address-book/{buyer.pk}/").content.decode()
    assert clerk.post(f"/address-book/{buyer.pk}/delete/").status_code == 302
    assert not Buyer.objects.exists()

    product = clerk.post(
        "/products/new/",
        {"name": "*信息技术服务*软件开发", "tax_code": full_width("3040201000000000000"), "unit": "项",
         "unit_price": "1,060", "price_includes_tax": "on", "tax_rate": "6%"},
    )  # fmt: skip
    assert product.status_code == 302, product.content.decode()[:2000]
    stored = Product.objects.get()
    assert (stored.tax_code, stored.unit_price, stored.tax_rate) == ("3040201000000000000", "1060", "0.06")
    issue_page = clerk.get("/invoices/new/").content.decode()
    assert 'data-tax-code="3040201000000000000"' in issue_page


def test_save_buyer_on_the_fly(clerk: Client) -> None:
    confirm(clerk, form(save_buyer="on", buyer_phone="13812345678"))
    assert Buyer.objects.get().name == BUYER["buyer_name"]


def batch_csv(rows: list[list[str]]) -> bytes:
    from fapiao.formats.batch import HEADER

    out = io.StringIO()
    import csv

    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def test_batch_preview_then_issue(clerk: Client) -> None:
    good = [
        "北京买方贸易有限公司",
        "91110000MA01XKQ2TQ",
        "",
        "*信息技术服务*软件开发",
        "",
        "",
        "项",
        "1",
        "100",
        "",
        "6%",
        "",
    ]
    bad = ["北京买方贸易有限公司", "", "专用发票", "咨询", "", "", "", "0", "100", "", "7%", ""]
    data = batch_csv([good, bad, good])
    upload = io.BytesIO(data)
    upload.name = "batch.csv"
    response = clerk.post("/invoices/batch/", {"file": upload})
    assert response.status_code == 302
    batch = Batch.objects.get()
    preview = clerk.get(response["Location"]).content.decode()
    assert "第 3 行" in preview  # the bad row, with its reasons
    assert Invoice.objects.count() == 0
    step = f"/invoices/batch/{batch.public_id}/step/"
    clerk.post(step, headers={"HX-Request": "true"})
    clerk.post(step)  # a second, concurrent-looking step: nothing issued twice
    assert Invoice.objects.count() == 2
    assert set(BatchRow.objects.values_list("status", flat=True)) == {"issued", "bad"}
    assert all(row.payload == {} for row in BatchRow.objects.filter(status="issued"))
    done = clerk.get(f"/invoices/batch/{batch.public_id}/").content.decode()
    for number in Invoice.objects.values_list("number", flat=True):
        assert number in done


def test_batch_template_downloads(clerk: Client) -> None:
    xlsx = clerk.get("/invoices/batch/template.xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    csv = clerk.get("/invoices/batch/template.csv").content.decode("utf-8-sig")
    assert csv.startswith("购买方名称 buyer_name")


def test_batch_rejects_a_useless_file(clerk: Client) -> None:
    upload = io.BytesIO(b"not,a,template\n1,2,3\n")
    upload.name = "x.csv"
    html = clerk.post("/invoices/batch/", {"file": upload}).content.decode()
    assert 'id="f-file-error"' in html
    assert not Batch.objects.exists()


def test_totals_per_month_and_rate(clerk: Client) -> None:
    confirm(
        clerk,
        form(
            **{
                "lines-1-name": "咨询",
                "lines-1-quantity": "1",
                "lines-1-unit_price": "100",
                "lines-1-tax_rate": "0.13",
            }
        ),
    )
    page = clerk.get("/totals/").content.decode()
    assert "¥1,000.00" in page and "¥100.00" in page and "13%" in page
    export = clerk.get("/totals/", {"format": "csv"}).content.decode("utf-8-sig")
    assert "1000.00" in export and "0.13" in export


def test_english_switch(clerk: Client) -> None:
    response = clerk.post("/i18n/setlang/", {"language": "en", "next": "/invoices/"})
    assert response.status_code == 302
    assert "My invoices" in clerk.get("/invoices/").content.decode()
    clerk.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "我的发票" in clerk.get("/invoices/").content.decode()


def test_receipt_json_is_the_api_document(clerk: Client) -> None:
    confirm(clerk, form())
    number = Invoice.objects.get().number
    receipt = json.loads(clerk.get(f"/invoices/{number}/receipt/").content)
    assert receipt["format"] == "fapiao-receipt/1"
