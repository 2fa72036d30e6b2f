"""The merchant's recovery pages through Django's test client: the five steps, uploads, messages,
actions and refusals.  The browser tests walk the same journey in Chromium (tests/e2e)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.test import Client

from fapiao.recovery.models import Case, Evidence, Notification
from tests.integration.case_helpers import PNG, lose_invoice, pdf_named, post

pytestmark = pytest.mark.django_db(transaction=True)


def _login(demo: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(demo[name])
    return client


@pytest.fixture
def lost(client_for, valid_invoice) -> dict[str, Any]:
    issued = post(client_for("clerk"), "/api/v1/invoices", valid_invoice).json()
    return {"number": issued["number"], "receipt": issued["receipt"], **lose_invoice(issued["number"])}


def _claim(lost: dict[str, Any], **extra: str) -> dict[str, str]:
    return {
        "number": lost["number"],
        "issued_on": lost["issued_on"],
        "buyer_name": "北京买方贸易有限公司",
        "buyer_tax_id": "91110000MA01XKQ2TQ",
        "total_with_tax": "１,０６０.００ 元",
        "total_amount": "",
        "total_tax": "",
        "kind": "",
        "narrative": "上传中断，我的发票里查不到。",
        **extra,
    }


def test_empty_search_offers_the_prefilled_application(demo, lost):
    clerk = _login(demo, "clerk")
    page = clerk.get(f"/invoices/?number={lost['number']}").content.decode()
    assert f"/cases/new/?number={lost['number']}" in page
    form = clerk.get(f"/cases/new/?number={lost['number']}").content.decode()
    assert f'value="{lost["number"]}"' in form
    assert "step-current" in form


def test_merchant_applies_uploads_submits_and_downloads_the_receipt(demo, lost):
    clerk = _login(demo, "clerk")
    response = clerk.post("/cases/new/", _claim(lost))
    assert response.status_code == 302, response.content.decode()[:2000]
    case = Case.objects.get()
    assert case.claimed_total_with_tax == 106000 and case.state == "draft"
    page = clerk.get(response["Location"]).content.decode()
    assert "Add evidence" in page or "添加证据" in page

    contract = io.BytesIO(pdf_named("contract"))
    contract.name = "合同.pdf"
    statement = io.BytesIO(PNG)
    statement.name = "回单.png"
    response = clerk.post(f"/cases/{case.uid}/evidence/", {"type": "contract", "file": [contract]})
    assert response.status_code == 302
    response = clerk.post(
        f"/cases/{case.uid}/evidence/",
        {"type": "bank_statement", "file": [statement]},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201 and response.json()["added"] == ["回单.png"]
    assert Evidence.objects.filter(case=case).count() == 2

    response = clerk.post(f"/cases/{case.uid}/act/submit/", {"version": str(Case.objects.get().version)})
    assert response.status_code == 302 and "submitted=1" in response["Location"]
    case.refresh_from_db()
    page = clerk.get(response["Location"]).content.decode()
    assert case.acceptance_no in page and f"/cases/{case.uid}/receipt.pdf" in page
    pdf = clerk.get(f"/cases/{case.uid}/receipt.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert case.acceptance_no in clerk.get("/cases/").content.decode()


def test_bad_claim_is_shown_beside_its_fields_and_nothing_is_saved(demo, lost):
    clerk = _login(demo, "clerk")
    response = clerk.post("/cases/new/", _claim(lost, number="12345", total_with_tax="abc", narrative=""))
    page = response.content.decode()
    assert response.status_code == 200
    assert (
        'id="f-number-error"' in page
        and 'id="f-total_with_tax-error"' in page
        and 'id="f-narrative-error"' in page
    )
    assert not Case.objects.exists()


def test_a_png_declared_as_a_receipt_is_refused_on_the_page(demo, lost):
    clerk = _login(demo, "clerk")
    clerk.post("/cases/new/", _claim(lost))
    case = Case.objects.get()
    image = io.BytesIO(PNG)
    image.name = "receipt.json"
    response = clerk.post(f"/cases/{case.uid}/evidence/", {"type": "system_receipt", "file": [image]})
    assert response.status_code == 200
    assert "PNG" in response.content.decode()
    assert not Evidence.objects.exists()


def test_stale_version_is_a_message_not_an_error_page(demo, lost):
    clerk = _login(demo, "clerk")
    clerk.post("/cases/new/", _claim(lost))
    case = Case.objects.get()
    response = clerk.post(f"/cases/{case.uid}/act/submit/", {"version": "999"})
    assert response.status_code == 200
    assert "error-summary" in response.content.decode()
    assert Case.objects.get().state == "draft"


def test_other_merchant_gets_404_everywhere(demo, lost):
    _login(demo, "clerk").post("/cases/new/", _claim(lost))
    case = Case.objects.get()
    other = _login(demo, "clerk2")
    for path in (f"/cases/{case.uid}/", f"/cases/{case.uid}/edit/", f"/cases/{case.uid}/receipt.pdf"):
        assert other.get(path).status_code == 404, path
    assert other.post(f"/cases/{case.uid}/act/withdraw/", {"version": "1"}).status_code == 404
    assert case.uid.hex not in other.get("/cases/").content.decode()


def test_needs_info_answer_and_notifications(demo, lost, client_for):
    clerk = _login(demo, "clerk")
    clerk.post("/cases/new/", _claim(lost))
    case = Case.objects.get()
    clerk.post(f"/cases/{case.uid}/act/submit/", {"version": str(case.version)})
    support = client_for("support")
    case.refresh_from_db()
    response = support.post(
        f"/api/v1/cases/{case.uid}/request-info",
        data=json.dumps({"version": case.version, "body": "请补充合同。", "items": ["合同扫描件"]}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    page = clerk.get(f"/cases/{case.uid}/").content.decode()
    assert "合同扫描件" in page and "waiting-you" in page
    assert Notification.objects.filter(user=demo["clerk"], read_at__isnull=True).exists()
    assert 'class="badge"' in page
    clerk.get("/cases/notifications/")
    assert not Notification.objects.filter(user=demo["clerk"], read_at__isnull=True).exists()
    clerk.post(f"/cases/{case.uid}/messages/", {"body": "合同已邮寄。"})
    assert Case.objects.get().state == "in_review"
