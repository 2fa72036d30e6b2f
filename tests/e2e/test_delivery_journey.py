"""Issue 15's done-means in Chromium: issue → download the PDF and the XML → send them to the buyer
(a real SMTP server started here receives both, byte for byte) → open the PDF's QR link as an
anonymous visitor → 查验 confirms the invoice.

The server is ``make run``'s, with its mail going to the test's SMTP server.  With
``FAPIAO_GUIDE_SHOTS=1`` the screenshots docs/guide/delivery.md shows are copied to docs/images/.
"""

from __future__ import annotations

import contextlib
import email
import os
import re
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pypdfium2
import pytest
import zxingcpp
from aiosmtpd.controller import Controller
from playwright.sync_api import expect

from fapiao.core.invoice_qr import read_invoice_qr
from fapiao.formats.einvoice_xml import read_einvoice_xml
from tests.e2e.conftest import Pilot
from tests.e2e.test_clerk_journey import add_catalogue_entries, issue_from_catalogue
from tests.integration.pg_cluster import Server, fapiao_command, free_port, gunicorn_server, server_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCS_IMAGES = ROOT / "docs" / "images"
BUYER_MAIL = "finance@buyer.example.cn"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


@contextlib.contextmanager
def mailing_server(var: Path, password: str, smtp_port: int) -> Iterator[Server]:
    env = server_env(
        var_dir=var,
        database_url=f"sqlite:///{var / 'fapiao.sqlite3'}",
        FAPIAO_DEMO="1",
        FAPIAO_DEMO_PASSWORD=password,
        FAPIAO_SMTP_HOST="127.0.0.1",
        FAPIAO_SMTP_PORT=str(smtp_port),
        FAPIAO_SMTP_TLS="0",
        FAPIAO_MAIL_FROM="invoices@seller.example.cn",
    )
    fapiao_command(env, "migrate", "--noinput")
    fapiao_command(env, "collectstatic", "--noinput", "--verbosity", "0")
    fapiao_command(env, "demo")
    with gunicorn_server(env, var / "gunicorn.log") as server:
        yield server


def download(pilot: Pilot, selector: str, folder: Path) -> bytes:
    with pilot.page.expect_download() as info:
        pilot.page.click(selector)
    path = folder / info.value.suggested_filename
    info.value.save_as(path)
    return path.read_bytes()


def qr_texts(pdf: bytes) -> list[str]:
    image = pypdfium2.PdfDocument(pdf)[0].render(scale=200 / 72).to_pil()
    return [result.text for result in zxingcpp.read_barcodes(image)]


def attachments(message: Message) -> dict[str, bytes]:
    return {
        part.get_filename(): part.get_payload(decode=True) for part in message.walk() if part.get_filename()
    }  # type: ignore[misc]


def publish(shots: dict[str, Path]) -> None:
    if not os.environ.get("FAPIAO_GUIDE_SHOTS"):
        return
    from PIL import Image

    for name, shot in shots.items():
        with Image.open(shot) as image:
            small = image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
        small.save(DOCS_IMAGES / f"{name}.png", optimize=True)


def test_issue_download_send_and_check(
    browser: Any, tmp_path: Path, demo_password: str, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    with mailing_server(tmp_path / "var", demo_password, port) as server:
        context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True,
                                      viewport={"width": 1280, "height": 900})  # fmt: skip
        context.set_default_timeout(15_000)
        clerk = Pilot(context.new_page(), server.base, "delivery")
        clerk.sign_in("clerk", demo_password)
        add_catalogue_entries(clerk)
        number = issue_from_catalogue(clerk)
        page = clerk.page
        shots = {"delivery-files": clerk.shot("invoice-files")}

        pdf = download(clerk, "#documents a:has-text('下载 PDF')", tmp_path)
        xml = download(clerk, "#documents a:has-text('下载 XML')", tmp_path)
        assert pdf.startswith(b"%PDF")
        shots["invoice-pdf"] = tmp_path / "invoice-pdf.png"  # the PDF's first page, as the guide shows it
        pypdfium2.PdfDocument(pdf)[0].render(scale=120 / 72).to_pil().save(shots["invoice-pdf"])
        fields, problems = read_einvoice_xml(xml)
        assert problems == [] and fields is not None and fields.number == number

        page.fill("#f-to", BUYER_MAIL)
        shots["delivery-send"] = clerk.shot("send-form")
        page.click("#documents button:has-text('发送')")
        page.wait_for_url(re.compile(r".*#deliveries$"))
        expect(page.locator(".message-success")).to_contain_text("发票已发送")
        expect(page.locator("#documents table")).to_contain_text("已发送")
        shots["delivery-sent"] = clerk.shot("sent")

        (message,) = handler.messages
        assert message["To"] == BUYER_MAIL
        received = attachments(message)
        assert received[f"{number}.pdf"] == pdf and received[f"{number}.xml"] == xml
        assert f"{number}-receipt.pdf" in received

        official, link = sorted(qr_texts(pdf), key=lambda text: text.startswith("http"))
        assert read_invoice_qr(official).number == number
        assert urlsplit(link).path == "/check/"
        clerk.assert_clean()
        context.close()

        anonymous_context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai",
                                                viewport={"width": 1280, "height": 900})  # fmt: skip
        visitor = Pilot(anonymous_context.new_page(), server.base, "check")
        parts = urlsplit(link)
        visitor.goto(f"{parts.path}?{parts.query}")
        expect(visitor.page.locator(".check-result")).to_contain_text("查有此票")
        expect(visitor.page.locator(".check-result")).to_contain_text(number)
        assert visitor.page.locator("text=北京买方贸易有限公司").count() == 0  # the buyer is never shown
        shots["check-found"] = visitor.shot("found")
        visitor.page.fill("#f-total_with_tax", "1.00")
        visitor.page.click("main button.primary[type=submit]")
        expect(visitor.page.locator(".check-result")).to_contain_text("查无此票")
        shots["check-not-found"] = visitor.shot("not-found")
        visitor.assert_clean()
        anonymous_context.close()
        publish(shots)
