"""An invoice's files, deliveries to the buyer, the period bundle and the public 查验, over the API.

Deliveries go to a real SMTP server (aiosmtpd) started by the test on a free local port; what
arrived is parsed and its attachments compared byte for byte with the stored documents.
"""

from __future__ import annotations

import copy
import email
import hashlib
import io
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pdfplumber
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

from fapiao.audit.models import AuditRecord
from fapiao.core.receipt import verify_receipt
from fapiao.core.signing import KeyRegistry
from fapiao.documents import check
from fapiao.documents.deliveries import retry_due
from fapiao.documents.models import Delivery, Document, DocumentKind
from fapiao.documents.store import stored
from fapiao.formats.einvoice_xml import read_einvoice_xml
from fapiao.formats.receipt_pdf import embedded_receipt
from fapiao.invoices.models import Invoice
from fapiao.invoices.services import issue_invoice
from tests.conftest import VALID_INVOICE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_limits() -> None:
    cache.clear()  # rate-limit windows counted by earlier tests


class Inbox:
    """An SMTP server's handler: keeps every message; can refuse recipients or be made to fail."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp(settings: Any) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    settings.FAPIAO_SMTP_TIMEOUT_SECONDS = 5
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_down(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", free_port(), False
    settings.FAPIAO_SMTP_TIMEOUT_SECONDS = 2


def issue(client: Client, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID_INVOICE)
    body.update(changes)
    response = client.post("/api/v1/invoices", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return json.loads(response.content)


def attachments(message: Message) -> dict[str, bytes]:
    return {
        part.get_filename(): part.get_payload(decode=True)
        for part in message.walk()
        if part.get_filename()  # type: ignore[misc]
    }


def stored_bytes(number: str, kind: str) -> bytes:
    return stored(Invoice.objects.get(number=number), kind).data


# --- downloads -----------------------------------------------------------------------------------------


def test_each_document_downloads_with_the_same_bytes_every_time(client_for: Any) -> None:
    clerk = client_for("clerk")
    invoice = issue(clerk)
    number = invoice["number"]
    for path, kind, content_type in [
        ("document.pdf", DocumentKind.INVOICE_PDF, "application/pdf"),
        ("document.xml", DocumentKind.INVOICE_XML, "application/xml"),
        ("receipt.pdf", DocumentKind.RECEIPT_PDF, "application/pdf"),
    ]:
        first = clerk.get(f"/api/v1/invoices/{number}/{path}")
        second = clerk.get(f"/api/v1/invoices/{number}/{path}")
        assert first.status_code == 200 and first["Content-Type"] == content_type
        assert first.content == second.content
        assert first["X-Content-SHA256"] == hashlib.sha256(first.content).hexdigest()
        assert Document.objects.filter(invoice__number=number, kind=kind).count() == 1
    pdf = clerk.get(f"/api/v1/invoices/{number}/document.pdf").content
    with pdfplumber.open(io.BytesIO(pdf)) as opened:
        text = opened.pages[0].extract_text()
    assert number in text and invoice["total_with_tax"] in text and "北京买方贸易有限公司" in text
    fields, problems = read_einvoice_xml(clerk.get(f"/api/v1/invoices/{number}/document.xml").content)
    assert problems == [] and fields is not None
    assert (fields.number, fields.total_with_tax_fen) == (number, 106000)
    attached = embedded_receipt(clerk.get(f"/api/v1/invoices/{number}/receipt.pdf").content)
    assert attached == stored_bytes(number, DocumentKind.RECEIPT_JSON)
    keys = json.loads(clerk.get("/api/v1/ledger/public-keys").content)
    assert verify_receipt(attached, KeyRegistry.from_json(keys)).ok


def test_another_merchants_invoice_is_not_found(client_for: Any) -> None:
    theirs = issue(client_for("clerk2"))["number"]
    clerk = client_for("clerk")
    for path in ("document.pdf", "document.xml", "receipt.pdf", "deliveries"):
        response = clerk.get(f"/api/v1/invoices/{theirs}/{path}")
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/problem+json"
    response = clerk.post(
        f"/api/v1/invoices/{theirs}/deliveries", {"to": "a@b.cn"}, content_type="application/json"
    )
    assert response.status_code == 404
    assert not Delivery.objects.exists()


def test_an_individuals_id_on_the_pdf_is_a_reveal(client_for: Any, demo: dict[str, Any]) -> None:
    clerk = client_for("clerk")
    number = issue(clerk, buyer={"name": "张三", "tax_id": "11010519491231002X"})["number"]
    full = clerk.get(f"/api/v1/invoices/{number}/document.pdf")
    assert full.status_code == 200 and full["Cache-Control"] == "no-store"
    masked = clerk.get(f"/api/v1/invoices/{number}/document.pdf?masked=true")
    text = {
        name: pdfplumber.open(io.BytesIO(r.content)).pages[0].extract_text()
        for name, r in [("full", full), ("masked", masked)]
    }
    assert "11010519491231002X" in text["full"] and "11010519491231002X" not in text["masked"]
    reveals = AuditRecord.objects.filter(action="invoice.document.reveal")
    assert reveals.count() == 1  # the masked copy is not a reveal
    assert (
        Document.objects.get(invoice__number=number, kind="invoice_pdf", variant="buyer").content_enc
        is not None
    )
    auditor = client_for("auditor")  # may read invoices, may not reveal: gets the masked copy
    seen = auditor.get(f"/api/v1/invoices/{number}/document.pdf")
    assert seen.status_code == 200 and seen.content == masked.content
    assert reveals.count() == 1
    xml = clerk.get(f"/api/v1/invoices/{number}/document.xml").content
    assert b"11010519491231002X" not in xml


# --- deliveries ----------------------------------------------------------------------------------------


def test_a_delivery_arrives_with_every_attachment_byte_for_byte(client_for: Any, smtp: Inbox) -> None:
    clerk = client_for("clerk")
    number = issue(clerk)["number"]
    response = clerk.post(
        f"/api/v1/invoices/{number}/deliveries",
        {"to": "finance@buyer.example.cn"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = json.loads(response.content)
    assert body["state"] == "sent" and body["to"] == "f******@buyer.example.cn" and body["attempts"] == 1
    (message,) = smtp.messages
    subject = str(make_header(decode_header(message["Subject"])))
    assert message["To"] == "finance@buyer.example.cn" and number in subject
    files = attachments(message)
    assert files == {
        f"{number}.pdf": stored_bytes(number, DocumentKind.INVOICE_PDF),
        f"{number}.xml": stored_bytes(number, DocumentKind.INVOICE_XML),
        f"{number}-receipt.pdf": stored_bytes(number, DocumentKind.RECEIPT_PDF),
    }
    listed = json.loads(clerk.get(f"/api/v1/invoices/{number}/deliveries").content)["items"]
    assert [item["state"] for item in listed] == ["sent"]
    assert {d["sha256"] for d in listed[0]["documents"]} == {
        hashlib.sha256(v).hexdigest() for v in files.values()
    }
    assert AuditRecord.objects.filter(action="invoice.deliver").count() == 1
    assert b"finance@buyer.example.cn" not in bytes(Delivery.objects.get().recipient_enc)


@pytest.mark.parametrize("to", ["", "not-an-address", "a@b.cn, c@d.cn", "x" * 250 + "@b.cn", 42, None])
def test_a_bad_address_is_refused_and_nothing_is_recorded(client_for: Any, smtp: Inbox, to: Any) -> None:
    clerk = client_for("clerk")
    number = issue(clerk)["number"]
    response = clerk.post(
        f"/api/v1/invoices/{number}/deliveries", {"to": to}, content_type="application/json"
    )
    assert response.status_code == 422
    problem = json.loads(response.content)
    assert problem["errors"][0]["field"] == "to" and problem["errors"][0]["code"] == "bad_email"
    assert not Delivery.objects.exists() and not smtp.messages


def test_a_refused_recipient_is_recorded_undeliverable_and_not_retried(client_for: Any, smtp: Inbox) -> None:
    smtp.refuse.add("nobody@buyer.example.cn")
    clerk = client_for("clerk")
    number = issue(clerk)["number"]
    response = clerk.post(
        f"/api/v1/invoices/{number}/deliveries",
        {"to": "nobody@buyer.example.cn"},
        content_type="application/json",
    )
    assert response.status_code == 502
    problem = json.loads(response.content)
    assert problem["type"].endswith("mail_refused") and "550" in problem["detail"]
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.next_attempt_at, delivery.error_code) == (
        "undeliverable",
        None,
        "smtp_refused",
    )
    assert not smtp.messages  # nothing half-sent
    assert retry_due(now=timezone.now() + timedelta(days=1))["sent"] == 0


def test_a_server_down_is_recorded_and_retried_with_backoff(
    client_for: Any, smtp_down: None, settings: Any
) -> None:
    clerk = client_for("clerk")
    number = issue(clerk)["number"]
    response = clerk.post(
        f"/api/v1/invoices/{number}/deliveries",
        {"to": "finance@buyer.example.cn"},
        content_type="application/json",
    )
    assert response.status_code == 503 and response["Retry-After"]
    assert json.loads(response.content)["type"].endswith("mail_unavailable")
    delivery = Delivery.objects.get()
    assert delivery.state == "failed" and delivery.attempts == 1
    first_wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert first_wait == timedelta(minutes=settings.FAPIAO_DELIVERY_RETRY_MINUTES)
    assert retry_due(now=timezone.now()) == {"sent": 0, "failed": 0, "undeliverable": 0}  # not yet due
    counts = retry_due(now=delivery.next_attempt_at + timedelta(seconds=1))
    assert counts["failed"] == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.next_attempt_at - delivery.last_attempt_at == 2 * first_wait

    # the server comes back: the next retry sends it
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=settings.EMAIL_PORT)
    controller.start()
    try:
        counts = retry_due(now=delivery.next_attempt_at + timedelta(seconds=1))
    finally:
        controller.stop()
    delivery.refresh_from_db()
    assert counts["sent"] == 1 and delivery.state == "sent" and delivery.attempts == 3
    assert len(inbox.messages) == 1 and len(attachments(inbox.messages[0])) == 3


def test_retries_give_up_after_the_last_attempt(client_for: Any, smtp_down: None, settings: Any) -> None:
    settings.FAPIAO_DELIVERY_MAX_ATTEMPTS = 2
    clerk = client_for("clerk")
    number = issue(clerk)["number"]
    clerk.post(
        f"/api/v1/invoices/{number}/deliveries", {"to": "a@buyer.example.cn"}, content_type="application/json"
    )
    assert retry_due(now=timezone.now() + timedelta(hours=1))["undeliverable"] == 1
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("undeliverable", 2, None)


def test_who_may_send(client_for: Any, smtp: Inbox) -> None:
    number = issue(client_for("clerk"))["number"]
    for username in ("auditor", "support"):
        response = client_for(username).post(
            f"/api/v1/invoices/{number}/deliveries", {"to": "a@b.cn"}, content_type="application/json"
        )
        assert response.status_code == 403, username
    read_only = client_for("clerk", scope="read")
    response = read_only.post(
        f"/api/v1/invoices/{number}/deliveries", {"to": "a@b.cn"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert not Delivery.objects.exists() and not smtp.messages


# --- the bundle ----------------------------------------------------------------------------------------


def test_a_period_bundle_holds_every_file_and_a_manifest(client_for: Any) -> None:
    clerk = client_for("clerk")
    numbers = [issue(clerk)["number"] for _ in range(3)]
    issue(client_for("clerk2"))  # another merchant's: not in our bundle
    today = timezone.localdate().isoformat()
    response = clerk.get(f"/api/v1/invoice-bundle?date_from={today}&date_to={today}")
    assert response.status_code == 200 and response.streaming
    data = b"".join(response.streaming_content)  # type: ignore[arg-type]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        sums = archive.read("SHA256SUMS").decode()
        contents = {name: archive.read(name) for name in names}
    assert manifest["invoices"] == 3 and len(manifest["files"]) == 12
    for item in manifest["files"]:
        assert hashlib.sha256(contents[item["name"]]).hexdigest() == item["sha256"]
        assert f"{item['sha256']}  {item['name']}\n" in sums
    assert {item["invoice"] for item in manifest["files"]} == set(numbers)
    assert contents[f"{numbers[0]}/{numbers[0]}.pdf"] == stored_bytes(numbers[0], DocumentKind.INVOICE_PDF)
    assert AuditRecord.objects.filter(action="invoice.documents.bundle").count() == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [("", "date_from"), ("date_from=2026-13-01&date_to=2026-01-01", "date_from"),
     ("date_from=2026-02-01&date_to=2026-01-01", "date_to"),
     ("date_from=2024-01-01&date_to=2026-01-01", "date_to")],
)  # fmt: skip
def test_a_bad_period_is_refused(client_for: Any, query: str, field: str) -> None:
    response = client_for("clerk").get(f"/api/v1/invoice-bundle?{query}")
    assert response.status_code == 422
    assert field in [error["field"] for error in json.loads(response.content)["errors"]]


# --- the public check -----------------------------------------------------------------------------------


def test_the_check_finds_an_invoice_and_says_nothing_more(client_for: Any) -> None:
    invoice = issue(client_for("clerk"), buyer={"name": "张三", "tax_id": "11010519491231002X"})
    anonymous = Client()
    query = f"number={invoice['number']}&issued_on={invoice['issued_on']}&total_with_tax=1060.00"
    response = anonymous.get(f"/api/v1/check?{query}")
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body == {
        "found": True,
        "number": invoice["number"],
        "issued_on": invoice["issued_on"],
        "total_with_tax": "1060.00",
        "seller": invoice["seller"],
        "kind": "ordinary",
        "colour": "blue",
        "state": "normal",
    }
    assert "张三" not in response.content.decode() and "11010519491231002X" not in response.content.decode()


def test_a_wrong_amount_a_wrong_date_and_a_missing_number_answer_the_same(client_for: Any) -> None:
    invoice = issue(client_for("clerk"))
    number, day = invoice["number"], invoice["issued_on"]
    other_day = (timezone.localdate() - timedelta(days=1)).isoformat()
    missing = f"{number[:-1]}{(int(number[-1]) + 1) % 10}"
    anonymous = Client()
    before = check.CHECK_MISSES._value.get()
    answers = []
    for n, d, total in [(number, day, "1060.01"), (number, other_day, "1060.00"), (missing, day, "1060.00")]:
        response = anonymous.get(f"/api/v1/check?number={n}&issued_on={d}&total_with_tax={total}")
        assert response.status_code == 200
        body = json.loads(response.content)
        answers.append(
            {
                key: value
                for key, value in body.items()
                if key not in ("number", "issued_on", "total_with_tax")
            }
        )
        assert set(body) == {"found", "number", "issued_on", "total_with_tax"}
    assert answers == [{"found": False}] * 3
    assert check.CHECK_MISSES._value.get() == before + 3


def test_the_check_is_rate_limited_per_address_and_per_number(client_for: Any, settings: Any) -> None:
    settings.FAPIAO_CHECK_LIMIT_PER_NUMBER = 3
    settings.FAPIAO_CHECK_LIMIT_PER_ADDRESS = 6
    invoice = issue(client_for("clerk"))
    query = f"number={invoice['number']}&issued_on={invoice['issued_on']}&total_with_tax=1.00"
    guesser = Client(REMOTE_ADDR="203.0.113.7")
    statuses = [guesser.get(f"/api/v1/check?{query}").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = guesser.get(f"/api/v1/check?{query}")
    assert refused["Retry-After"] and json.loads(refused.content)["type"].endswith("rate_limited")
    other_number = f"number=26110000000000000099&issued_on={invoice['issued_on']}&total_with_tax=1.00"
    statuses = [guesser.get(f"/api/v1/check?{other_number}").status_code for _ in range(2)]
    assert statuses == [200, 429]  # the address has had its 6 (refused ones count too)
    page = Client(REMOTE_ADDR="203.0.113.8").get(f"/check/?{query}")
    assert page.status_code == 429  # the number's limit holds for every address


def test_bad_check_input_is_422(client_for: Any) -> None:
    anonymous = Client()
    response = anonymous.get("/api/v1/check?number=123&issued_on=yesterday&total_with_tax=abc")
    assert response.status_code == 422
    assert {e["field"] for e in json.loads(response.content)["errors"]} == {
        "number",
        "issued_on",
        "total_with_tax",
    }
    assert anonymous.get("/api/v1/check?code=https://example.com").status_code == 422


def test_the_check_page_reads_the_qr_link_of_the_pdf(client_for: Any) -> None:
    invoice = issue(client_for("clerk"))
    query = urlencode({name: invoice[name] for name in ("number", "issued_on", "total_with_tax")})
    page = Client().get(f"/check/?{query}")
    assert page.status_code == 200
    assert invoice["seller"]["name"] in page.content.decode()
    red = client_for("clerk").post(
        f"/api/v1/invoices/{invoice['number']}/red-letter", {"full": True}, content_type="application/json"
    )
    assert red.status_code == 201
    body = json.loads(Client().get(f"/api/v1/check?{query}").content)
    assert body["state"] == "fully_red"
    red_body = json.loads(red.content)
    red_query = urlencode({name: red_body[name] for name in ("number", "issued_on", "total_with_tax")})
    assert json.loads(Client().get(f"/api/v1/check?{red_query}").content)["colour"] == "red"
    assert Invoice.objects.count() == 2


def test_the_openapi_document_describes_every_documents_route() -> None:
    spec = json.loads(Client().get("/api/v1/openapi.json").content)
    paths = spec["paths"]
    files = {
        "/api/v1/invoices/{number}/document.pdf": "application/pdf",
        "/api/v1/invoices/{number}/document.xml": "application/xml",
        "/api/v1/invoices/{number}/receipt.pdf": "application/pdf",
        "/api/v1/invoice-bundle": "application/zip",
    }
    for path, content_type in files.items():
        answers = paths[path]["get"]["responses"]
        assert content_type in answers["200"]["content"], path
        expected = {"401", "403", "422", "429", "503"} | ({"404"} if "{number}" in path else set())
        assert expected <= set(answers), path
        assert "application/problem+json" in answers["422"]["content"], path
    post = paths["/api/v1/invoices/{number}/deliveries"]["post"]
    assert {"201", "422", "502", "503", "404"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["example"] == {"to": "finance@buyer.example.cn"}
    assert "200" in paths["/api/v1/invoices/{number}/deliveries"]["get"]["responses"]
    check_answers = paths["/api/v1/check"]["get"]["responses"]
    assert {"200", "422", "429"} <= set(check_answers)
    assert not paths["/api/v1/check"]["get"].get("security")  # public


def test_an_altered_stored_document_is_refused_not_handed_out(client_for: Any, settings: Any) -> None:
    clerk = client_for("clerk")
    number = issue(clerk)["number"]
    first = clerk.get(f"/api/v1/invoices/{number}/document.xml")
    digest = first["X-Content-SHA256"]
    blob = Path(settings.FAPIAO_EVIDENCE_DIR) / "sha256" / digest[:2] / digest[2:4] / digest
    blob.write_bytes(first.content.replace(number.encode(), b"26110100000000009999"))
    altered = clerk.get(f"/api/v1/invoices/{number}/document.xml")
    assert altered.status_code == 500
    assert json.loads(altered.content)["type"].endswith("document_damaged")
    blob.write_bytes(first.content)  # put back: the same bytes again
    assert clerk.get(f"/api/v1/invoices/{number}/document.xml").content == first.content


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_first_downloads_at_once_store_one_document(demo: dict[str, Any]) -> None:
    number = str(issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE)).body["number"])
    barrier = threading.Barrier(2)
    results: list[bytes] = []

    def fetch() -> None:
        try:
            invoice = Invoice.objects.get(number=number)
            barrier.wait()
            results.append(stored(invoice, DocumentKind.INVOICE_PDF).data)
        finally:
            connection.close()

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] == results[1]
    assert Document.objects.filter(invoice__number=number, kind="invoice_pdf").count() == 1
