"""The documents on the pages: the invoice page's downloads, 发送给买方 and deliveries, a batch's sending,
the bundle page, the address book's e-mail, and the public /check/ page."""

from __future__ import annotations

import copy
import io
import zipfile
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from fapiao.catalogue import services as catalogue
from fapiao.catalogue.models import Batch, BatchRow, BatchState, Buyer, RowStatus
from fapiao.documents.models import Delivery
from fapiao.invoices.services import issue_invoice
from tests.conftest import VALID_INVOICE
from tests.integration.test_documents_api import Inbox, attachments, smtp  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_limits() -> None:
    cache.clear()


def browser(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    return client


def issued(user: Any, **changes: Any) -> str:
    body = copy.deepcopy(VALID_INVOICE)
    body.update(changes)
    return str(issue_invoice(user=user, payload=body).body["number"])


def test_the_invoice_page_offers_the_files_and_sending(demo: dict[str, Any]) -> None:
    number = issued(demo["clerk"])
    page = browser(demo["clerk"]).get(f"/invoices/{number}/").content.decode()
    for text in ("交付给买方的文件", f"/invoices/{number}/document.pdf", f"/invoices/{number}/document.xml",
                 f"/invoices/{number}/receipt.pdf", "发送给买方", "尚未发送。"):  # fmt: skip
        assert text in page
    pdf = browser(demo["clerk"]).get(f"/invoices/{number}/document.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    auditor_page = browser(demo["auditor"]).get(f"/invoices/{number}/?merchant={demo['clerk'].merchant.uscc}")
    assert "发送给买方" not in auditor_page.content.decode()  # staff read, never send


def test_sending_from_the_page_and_the_delivery_listed(demo: dict[str, Any], smtp: Inbox) -> None:  # noqa: F811
    number = issued(demo["clerk"])
    clerk = browser(demo["clerk"])
    response = clerk.post(f"/invoices/{number}/deliveries/", {"to": "finance@buyer.example.cn"}, follow=True)
    page = response.content.decode()
    assert "发票已发送，发送记录见下方。" in page and "f******@buyer.example.cn" in page
    assert "已发送" in page and len(smtp.messages) == 1
    assert len(attachments(smtp.messages[0])) == 3


def test_a_bad_address_on_the_page_says_so_and_records_nothing(demo: dict[str, Any], smtp: Inbox) -> None:  # noqa: F811
    number = issued(demo["clerk"])
    response = browser(demo["clerk"]).post(f"/invoices/{number}/deliveries/", {"to": "nope"}, follow=True)
    assert "请输入一个电子邮箱地址" in response.content.decode()
    assert not Delivery.objects.exists() and not smtp.messages


def test_the_address_book_e_mail_is_offered_masked_and_used(demo: dict[str, Any], smtp: Inbox) -> None:  # noqa: F811
    clerk = demo["clerk"]
    entry = catalogue.save_buyer(
        user=clerk,
        data=catalogue.BuyerInput(
            name="北京买方贸易有限公司", tax_id="91110000MA01XKQ2TQ", email="ap@buyer.example.cn"
        ),
    )
    stored = Buyer.objects.get(pk=entry.pk)
    assert (
        b"ap@buyer.example.cn" not in bytes(stored.email_enc)
        and stored.masked["email"] == "a***@buyer.example.cn"
    )
    number = issued(clerk)
    page = browser(clerk).get(f"/invoices/{number}/").content.decode()
    assert "a***@buyer.example.cn" in page and "ap@buyer.example.cn" not in page
    browser(clerk).post(f"/invoices/{number}/deliveries/", {"buyer": str(entry.pk), "to": ""})
    assert smtp.messages[0]["To"] == "ap@buyer.example.cn"
    with pytest.raises(catalogue.ValidationFailed):
        catalogue.save_buyer(user=clerk, data=catalogue.BuyerInput(name="另一个", email="not an address"))


def test_a_finished_batch_sends_each_invoice_to_its_buyer(demo: dict[str, Any], smtp: Inbox) -> None:  # noqa: F811
    clerk = demo["clerk"]
    catalogue.save_buyer(
        user=clerk, data=catalogue.BuyerInput(name="北京买方贸易有限公司", email="ap@buyer.example.cn")
    )
    numbers = [issued(clerk), issued(clerk, buyer={"name": "没有邮箱的买方"})]
    batch = Batch.objects.create(
        merchant=clerk.merchant,
        created_by=clerk,
        filename="b.csv",
        file_sha256="0" * 64,
        state=BatchState.DONE,
    )
    for row, number in enumerate(numbers, start=2):
        BatchRow.objects.create(
            merchant=clerk.merchant, batch=batch, row_no=row, status=RowStatus.ISSUED, invoice_number=number
        )
    client = browser(clerk)
    page = client.get(f"/invoices/batch/{batch.public_id}/").content.decode()
    assert "逐张发送给买方" in page
    response = client.post(f"/invoices/batch/{batch.public_id}/deliver/", follow=True)
    assert "已发送：1。未发送（详见各发票）：0。地址簿中无邮箱：1。" in response.content.decode()
    assert [m["To"] for m in smtp.messages] == ["ap@buyer.example.cn"]


def test_the_bundle_page_downloads_a_zip(demo: dict[str, Any]) -> None:
    issued(demo["clerk"])
    client = browser(demo["clerk"])
    assert "批量下载发票" in client.get("/invoices/documents/").content.decode()
    today = timezone.localdate().isoformat()
    response = client.get(f"/invoices/documents/?date_from={today}&date_to={today}")
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:  # type: ignore[arg-type]
        assert "manifest.json" in archive.namelist() and "SHA256SUMS" in archive.namelist()
    wrong = client.get(f"/invoices/documents/?date_from={today}&date_to=2000-01-01")
    assert "结束日期早于开始日期。" in wrong.content.decode()


def test_the_public_check_page(demo: dict[str, Any]) -> None:
    number = issued(demo["clerk"])
    today = timezone.localdate().isoformat()
    anonymous = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    found = anonymous.get(
        f"/check/?number={number}&issued_on={today}&total_with_tax=1060.00"
    ).content.decode()
    assert (
        "查有此票" in found and demo["clerk"].merchant.name in found and "北京买方贸易有限公司" not in found
    )
    missing = anonymous.get(
        f"/check/?number={number}&issued_on={today}&total_with_tax=1060.01"
    ).content.decode()
    assert "查无此票" in missing and demo["clerk"].merchant.name not in missing
    bad = anonymous.get("/check/?number=12&issued_on=x&total_with_tax=y")
    assert bad.status_code == 200 and "查有此票" not in bad.content.decode()
