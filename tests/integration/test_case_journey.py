"""The recovery journey through the API, with three people: merchant clerk, support, reviewer.

An invoice is issued, then lost (its row deleted, as a crash or a broken migration would);
the clerk opens a case with two files, submits, gets the receipt PDF; support asks for more;
the clerk adds a file; the reviewer claims, approves and restores; the clerk finds the invoice
again (origin restored) with a receipt that verifies offline, and confirms.
"""

from __future__ import annotations

import io
import json
import re

import pdfplumber
import pytest
from django.core import mail
from django.test import Client

from fapiao.audit.models import AuditRecord
from fapiao.core.receipt import verify_receipt
from fapiao.invoices.models import Invoice
from fapiao.ledger.models import LogEntry
from fapiao.ledger.verify import verify_ledger
from fapiao.platform import keys
from fapiao.recovery.models import Notification
from tests.integration.case_helpers import PNG, act, claim_for, fetch, lose_invoice, pdf_named, post, upload

pytestmark = pytest.mark.django_db(transaction=True)


def _issue(client, valid_invoice):
    response = post(client, "/api/v1/invoices", valid_invoice)
    assert response.status_code == 201, response.content
    return response.json()


def _pdf_text(data: bytes) -> str:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return "\n".join(page.extract_text() or "" for page in pdf.pages)


def test_restore_journey(client_for, demo, valid_invoice, settings, tmp_path):
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    settings.FAPIAO_WITNESS_FILE = (
        tmp_path / "witness" / "heads.jsonl"
    )  # verify compares with this test's heads
    clerk, support, reviewer = client_for("clerk"), client_for("support"), client_for("reviewer")
    issued = _issue(clerk, valid_invoice)
    number = issued["number"]
    receipt_file = json.dumps(issued["receipt"]).encode()
    kept = lose_invoice(number)

    # 1. 确认: the clerk's search finds nothing.
    assert clerk.get(f"/api/v1/invoices?number={number}").json()["total"] == 0

    # 2. 申请: a draft with two files, then submit.
    response = post(clerk, "/api/v1/cases", claim_for(number, kept["issued_on"]))
    assert response.status_code == 201, response.content
    case = response.json()
    assert case["state"] == "draft" and case["acceptance_no"] is None
    contract = upload(clerk, case, "contract", "合同.pdf", pdf_named("contract"))
    checked = upload(clerk, case, "system_receipt", "receipt.json", receipt_file)
    assert checked["check"]["status"] == "verified", checked
    assert "回执有效" in checked["check"]["message"] and "第 0 条" in checked["check"]["message"]
    case = act(clerk, fetch(clerk, case), "submit")
    assert case["state"] == "submitted"
    assert re.fullmatch(r"BJ-\d{4}-\d{6}", case["acceptance_no"])

    pdf = clerk.get(f"/api/v1/cases/{case['case_id']}/receipt.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = _pdf_text(pdf.content)
    assert case["acceptance_no"] in text
    for file in (contract, checked):
        assert file["sha256"] in text

    # 3. 补正: support asks for more; the clerk's new file is the answer.
    case = act(support, fetch(support, case), "request-info", body="请补充银行回单。", items=["银行回单"])
    assert case["state"] == "needs_info"
    assert fetch(clerk, case)["messages"][-1]["requested_items"] == ["银行回单"]
    upload(clerk, case, "bank_statement", "回单.png", PNG)
    case = fetch(reviewer, case)
    assert case["state"] == "in_review"

    # 4. 审核: the reviewer sees the ledger history, claims, approves, restores.
    assert [e["kind"] for e in case["system_view"]["ledger_history"]] == ["issue"]
    case = act(reviewer, case, "claim")
    case = act(reviewer, case, "approve", reason_template="receipt_verified")
    assert case["state"] == "approved"
    result = act(reviewer, case, "resolve", remedy="restore")
    assert result["case"]["state"] == "resolved"
    assert result["invoice"]["number"] == number and result["invoice"]["origin"] == "restored"

    # 5. 核对: the clerk finds it, its receipt verifies offline, and confirms.
    found = clerk.get(f"/api/v1/invoices?number={number}").json()
    assert found["total"] == 1 and found["items"][0]["origin"] == "restored"
    fresh = clerk.get(f"/api/v1/invoices/{number}/receipt").json()
    verdict = verify_receipt(fresh, keys.registry())
    assert verdict.ok, verdict.code
    assert verdict.entry["kind"] == "restore" and verdict.entry["ref"] == case["case_id"]
    # The invoice page says where its receipt's entry came from.
    browser = Client()
    browser.force_login(demo["clerk"])
    page = browser.get(f"/invoices/{number}/").content.decode()
    assert "经补救申请恢复时" in page and "本发票开具时" not in page
    case = act(clerk, fetch(clerk, case), "confirm")
    assert case["state"] == "confirmed"

    # The ledger holds issue + restore; the restored row agrees with it.
    assert list(LogEntry.objects.filter(invoice_number=number).values_list("kind", flat=True)) == [
        "issue",
        "restore",
    ]
    assert Invoice.objects.get(number=number).total_with_tax == kept["total_with_tax"]
    report = verify_ledger()
    assert report.ok, [(f.code, f.params) for f in report.all_findings()]

    # Every step is in the audit trail, notified in the app and by mail.
    actions = set(AuditRecord.objects.filter(action__startswith="case.").values_list("action", flat=True))
    assert {
        "case.open",
        "case.submit",
        "case.request_info",
        "case.answer",
        "case.claim",
        "case.approve",
        "case.resolve",
        "case.confirm",
        "case.evidence",
    } <= actions
    assert AuditRecord.objects.filter(action="invoice.restore").exists()
    assert Notification.objects.filter(user__username="clerk", message__contains="resolved").exists()
    assert any(case["acceptance_no"] in m.subject for m in mail.outbox)
