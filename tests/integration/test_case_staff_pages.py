"""The staff's recovery pages through Django's test client: the reviewer's queue and case desk,
support's inbox and 补正通知, decisions with reason templates, the second reviewer, assigning,
and the restore / re-issue page, which shows what will be written and takes no invoice content."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from fapiao.invoices.models import Invoice
from fapiao.ledger.models import LogEntry
from fapiao.recovery.models import Case, CaseMessage, Evidence, SupersededNumber
from fapiao.recovery.reasons import APPROVE_REASONS
from tests.integration.case_helpers import (
    PNG,
    act,
    claim_for,
    complete_claim,
    fetch,
    lose_invoice,
    pdf_named,
    post,
    upload,
)
from tests.integration.test_web_translations import english_words

pytestmark = pytest.mark.django_db(transaction=True)


def _browser(demo: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(demo[name])
    return client


@pytest.fixture
def open_case(client_for: Any, valid_invoice: dict[str, Any], settings: Any) -> Any:
    """A submitted case for an invoice that was issued, then lost (its ledger entry kept)."""
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    clerk = client_for("clerk")

    def make(*, receipt: bool = False, **claim: Any) -> dict[str, Any]:
        issued = post(clerk, "/api/v1/invoices", valid_invoice).json()
        kept = lose_invoice(issued["number"])
        response = post(clerk, "/api/v1/cases", claim_for(issued["number"], kept["issued_on"], **claim))
        assert response.status_code == 201, response.content
        case = response.json()
        if receipt:
            upload(clerk, case, "system_receipt", "receipt.json", json.dumps(issued["receipt"]).encode())
        return act(clerk, fetch(clerk, case), "submit")

    return make


def _row(case: dict[str, Any]) -> Case:
    return Case.objects.get(uid=case["case_id"])


def _page(client: Client, case: dict[str, Any]) -> str:
    response = client.get(f"/cases/{case['case_id']}/")
    assert response.status_code == 200
    return response.content.decode()


def _approved(client_for: Any, case: dict[str, Any]) -> dict[str, Any]:
    reviewer = client_for("reviewer")
    case = act(reviewer, fetch(reviewer, case), "claim")
    return act(reviewer, case, "approve", reason_template="receipt_verified")


# --- the queue and the inbox ---------------------------------------------------------------------


def test_queue_counts_filters_and_overdue_marks(demo, open_case, client_for):
    first, second = open_case(), open_case()
    Case.objects.filter(uid=first["case_id"]).update(state_changed_at=timezone.now() - timedelta(hours=30))
    reviewer = _browser(demo, "reviewer")
    page = reviewer.get("/cases/").content.decode()
    assert first["acceptance_no"] in page and second["acceptance_no"] in page
    overdue_rows = re.findall(r'<tr class="overdue">.*?</tr>', page, re.S)
    assert len(overdue_rows) == 1 and first["acceptance_no"] in overdue_rows[0]
    assert 'name="assignee"' in page and 'name="unread"' in page  # the staff's list tools
    assert re.search(r'href="\?overdue=1">[^<]*<strong>1</strong>', page)
    assert re.search(r'href="\?assignee=none">[^<]*<strong>2</strong>', page)

    act(client_for("reviewer"), fetch(client_for("reviewer"), second), "claim")
    mine = reviewer.get("/cases/?assignee=me").content.decode()
    assert second["acceptance_no"] in mine and first["acceptance_no"] not in mine
    free = reviewer.get("/cases/?assignee=none").content.decode()
    assert first["acceptance_no"] in free and second["acceptance_no"] not in free

    post(client_for("clerk"), f"/api/v1/cases/{first['case_id']}/messages", {"body": "请尽快处理。"})
    unread = reviewer.get("/cases/?unread=1").content.decode()
    assert first["acceptance_no"] in unread and second["acceptance_no"] not in unread


def test_inbox_lists_unread_merchant_messages_until_the_case_is_opened(demo, open_case, client_for):
    waiting, quiet = open_case(), open_case()
    post(
        client_for("clerk"),
        f"/api/v1/cases/{waiting['case_id']}/messages",
        {"body": "合同已经补上，请查收。"},
    )
    support = _browser(demo, "support")
    inbox = support.get("/cases/inbox/").content.decode()
    assert waiting["acceptance_no"] in inbox and "合同已经补上" in inbox
    assert quiet["acceptance_no"] not in inbox
    support.get(f"/cases/{waiting['case_id']}/")  # reading the case reads its messages
    assert waiting["acceptance_no"] not in support.get("/cases/inbox/").content.decode()
    assert not CaseMessage.objects.filter(read_by_staff_at__isnull=True).exists()
    for name, status in (("clerk", 403), ("auditor", 403), ("reviewer", 200)):
        assert _browser(demo, name).get("/cases/inbox/").status_code == status, name


def test_support_replies_with_files_all_or_nothing(demo, open_case):
    case = open_case()
    support = _browser(demo, "support")
    form = io.BytesIO(pdf_named("instructions"))
    form.name = "补正说明.pdf"
    response = support.post(
        f"/cases/{case['case_id']}/reply/", {"body": "请按附件补充。", "type": "other", "file": [form]}
    )
    assert response.status_code == 302
    message = CaseMessage.objects.get(body="请按附件补充。")
    attached = Evidence.objects.get(message=message)
    assert attached.filename == "补正说明.pdf" and attached.on_behalf
    assert "补正说明.pdf" in _page(_browser(demo, "clerk"), case)

    image = io.BytesIO(PNG)
    image.name = "receipt.json"
    response = support.post(
        f"/cases/{case['case_id']}/reply/", {"body": "第二条", "type": "system_receipt", "file": [image]}
    )
    assert response.status_code == 200 and "PNG" in response.content.decode()
    assert not CaseMessage.objects.filter(body="第二条").exists()  # the message waits for its files


# --- the case desk ------------------------------------------------------------------------------


def test_request_info_lists_exactly_what_is_missing(demo, open_case):
    case = open_case()
    support = _browser(demo, "support")
    page = _page(support, case)
    assert "request-item-1" in page and f"/cases/{case['case_id']}/reply/" in page
    notice = re.search(r'<textarea id="request-body"[^>]*>([^<]+)</textarea>', page)
    assert notice and case["acceptance_no"] in notice.group(1)  # the 补正通知 template names the case
    response = support.post(
        f"/cases/{case['case_id']}/act/request-info/",
        {
            "version": str(_row(case).version),
            "body": notice.group(1),
            "items": ["合同扫描件", "", "银行回单"],
        },
    )
    assert response.status_code == 302
    assert _row(case).state == "needs_info"
    assert CaseMessage.objects.get(requested_items__isnull=False, body=notice.group(1)).requested_items == [
        "合同扫描件",
        "银行回单",
    ]
    merchant_page = _page(_browser(demo, "clerk"), case)
    assert (
        "合同扫描件" in merchant_page and "银行回单" in merchant_page and "desk-heading" not in merchant_page
    )


def test_reviewer_sees_the_claim_beside_the_system_view(demo, open_case, client_for, valid_invoice):
    post(client_for("clerk"), "/api/v1/invoices", valid_invoice)  # a similar invoice: same buyer and amount
    case = open_case(receipt=True)
    page = _page(_browser(demo, "reviewer"), case)
    assert "side-claim-heading" in page and "side-system-heading" in page
    entry = LogEntry.objects.get(invoice_number=case["claimed_number"])
    ledger = page[page.index("side-system-heading") :]
    assert f"<td>{entry.seq}</td>" in ledger
    similar = Invoice.objects.exclude(number=case["claimed_number"]).get()
    assert similar.number in ledger
    assert "check-verified" in ledger and "receipt.json" in ledger


def test_claim_release_and_reject_needs_a_reason(demo, open_case):
    case = open_case()
    reviewer, other = _browser(demo, "reviewer"), _browser(demo, "reviewer2")
    assert f"/cases/{case['case_id']}/act/claim/" in _page(reviewer, case)
    reviewer.post(f"/cases/{case['case_id']}/act/claim/", {"version": str(_row(case).version)})
    assert _row(case).assignee.username == "reviewer"
    page = _page(reviewer, case)
    assert (
        f"/cases/{case['case_id']}/act/release/" in page and f"/cases/{case['case_id']}/act/reject/" in page
    )
    assert f"/cases/{case['case_id']}/act/reject/" not in _page(other, case)  # held by someone else

    response = reviewer.post(
        f"/cases/{case['case_id']}/act/reject/",
        {"version": str(_row(case).version), "reason": "", "reason_template": ""},
    )
    page = response.content.decode()
    assert (
        response.status_code == 200
        and 'id="reject-reason-error"' in page
        and '<details class="card" open>' in page
    )
    assert _row(case).state == "in_review"

    reviewer.post(f"/cases/{case['case_id']}/act/release/", {"version": str(_row(case).version)})
    assert _row(case).assignee_id is None
    other.post(f"/cases/{case['case_id']}/act/claim/", {"version": str(_row(case).version)})
    other.post(
        f"/cases/{case['case_id']}/act/reject/",
        {"version": str(_row(case).version), "reason_template": "claim_mismatch", "reason": "金额不一致。"},
    )
    row = _row(case)
    assert row.state == "rejected" and row.decision_reason.endswith("金额不一致。")


def test_second_reviewer_approval(demo, open_case, settings):
    case = open_case()
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = 100_000  # the claim is 1,060.00
    first, second = _browser(demo, "reviewer"), _browser(demo, "reviewer2")
    first.post(f"/cases/{case['case_id']}/act/claim/", {"version": str(_row(case).version)})
    page = _page(first, case)
    assert "1,000.00" in page  # the approve form says a second reviewer must follow
    first.post(
        f"/cases/{case['case_id']}/act/approve/",
        {"version": str(_row(case).version), "reason_template": "evidence_consistent"},
    )
    assert _row(case).state == "awaiting_second"
    assert f"/cases/{case['case_id']}/act/approve/" not in _page(first, case)
    assert f"/cases/{case['case_id']}/act/approve/" in _page(second, case)
    second.post(f"/cases/{case['case_id']}/act/approve/", {"version": str(_row(case).version)})
    row = _row(case)
    assert row.state == "approved" and row.first_approver.username == "reviewer"
    assert row.second_approver.username == "reviewer2"
    assert row.decision_reason == ""  # the second approval gave no reason: the first one is replaced


def test_lead_assigns_and_others_may_not(demo, open_case):
    case = open_case()
    lead, plain = _browser(demo, "reviewer"), _browser(demo, "reviewer2")
    assert 'id="assign-to"' in _page(lead, case) and 'id="assign-to"' not in _page(plain, case)
    for wrong in ("support", "nobody-by-this-name"):
        response = lead.post(f"/cases/{case['case_id']}/assign/", {"assignee": wrong})
        assert response.status_code == 200 and 'id="assign-to-error"' in response.content.decode()
    assert _row(case).assignee_id is None
    assert lead.post(f"/cases/{case['case_id']}/assign/", {"assignee": "reviewer2"}).status_code == 302
    assert _row(case).assignee.username == "reviewer2"
    assert plain.post(f"/cases/{case['case_id']}/assign/", {"assignee": "reviewer2"}).status_code == 403
    assert (
        _browser(demo, "support").post(f"/cases/{case['case_id']}/assign/", {"assignee": "x"}).status_code
        == 403
    )


# --- restore and re-issue -------------------------------------------------------------------------


def _resolve(reviewer: Client, case: dict[str, Any], remedy: str, **posted: str) -> Any:
    version = str(_row(case).version)
    data = {"version": version, "remedy": remedy, **posted}
    return reviewer.post(f"/cases/{case['case_id']}/resolve/", data)


def test_restore_page_shows_the_ledger_entry_and_writes_exactly_it(
    demo, open_case, client_for, valid_invoice
):
    """Nothing on the page is typed: posting invoice fields changes nothing of what is written."""
    case = _approved(client_for, open_case())
    reviewer = _browser(demo, "reviewer")
    url = f"/cases/{case['case_id']}/resolve/"
    page = reviewer.get(url + "?remedy=restore").content.decode()
    entry = LogEntry.objects.get(invoice_number=case["claimed_number"])
    assert f"{entry.seq}" in page[page.index("source-heading") :][:600]
    assert valid_invoice["buyer"]["name"] in page and valid_invoice["lines"][0]["name"] in page
    assert "1,060.00" in page and 'name="note"' in page
    assert not re.search(r'name="(buyer_|lines-|kind|issued_on|confirm)', page)  # no invoice inputs

    response = _resolve(
        reviewer,
        case,
        "restore",
        note="与系统回执一致。",
        buyer_name="北京空壳公司",
        **{"lines-0-unit_price": "94339622.64", "issued_on": "2020-01-01"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    restored = Invoice.objects.get(number=case["claimed_number"])
    assert (restored.origin, restored.total_with_tax, restored.buyer_name) == (
        "restored",
        106000,
        "北京买方贸易有限公司",
    )
    assert restored.issued_on == _row(case).claimed_issued_on
    assert _row(case).state == "resolved"
    assert _row(case).events.get(action="resolve").reason == "与系统回执一致。"
    assert reviewer.get(url).status_code == 302  # nothing left to resolve


def test_restore_from_the_claim_when_the_ledger_has_nothing(demo, client_for, settings):
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    clerk = client_for("clerk")
    claim = complete_claim("011001900111-12345678", "2025-03-05")
    case = post(clerk, "/api/v1/cases", claim).json()
    case = _approved(client_for, act(clerk, fetch(clerk, case), "submit"))
    reviewer = _browser(demo, "reviewer")
    page = reviewer.get(f"/cases/{case['case_id']}/resolve/").content.decode()
    assert f"详见补救申请{case['acceptance_no']}" in page  # one line of the claimed amount and tax
    assert "1,060.00" in page and "2025-03-05" in page
    response = _resolve(reviewer, case, "restore")
    assert response.status_code == 302, response.content.decode()[:3000]
    restored = Invoice.objects.get(number="011001900111-12345678")
    assert (restored.origin, restored.total_with_tax, restored.issued_on.isoformat()) == (
        "restored",
        106000,
        "2025-03-05",
    )
    assert [(line.tax_rate, line.amount, line.tax) for line in restored.lines.all()] == [
        ("0.06", 100000, 6000)
    ]


def test_an_incomplete_claim_is_refused_with_what_is_missing(demo, client_for, settings):
    """No kind and no amount and tax: the page says so and offers the correction notice."""
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    clerk = client_for("clerk")
    case = post(clerk, "/api/v1/cases", claim_for("011001900111-12345679", "2025-03-05")).json()
    case = _approved(client_for, act(clerk, fetch(clerk, case), "submit"))
    reviewer = _browser(demo, "reviewer")
    page = reviewer.get(f"/cases/{case['case_id']}/resolve/").content.decode()
    assert 'id="resolve-form"' not in page
    assert "补正" in page and f"/cases/{case['case_id']}/#desk-heading" in page
    response = _resolve(reviewer, case, "restore")
    assert response.status_code == 200 and "error-summary" in response.content.decode()
    assert (
        _row(case).state == "approved" and not Invoice.objects.filter(number="011001900111-12345679").exists()
    )


def test_reissue_gives_a_new_number_and_supersedes_the_claimed_one(demo, client_for, settings):
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    clerk = client_for("clerk")
    claim = complete_claim("011001900111-87654321", "2025-03-05")
    case = _approved(
        client_for, act(clerk, fetch(clerk, post(clerk, "/api/v1/cases", claim).json()), "submit")
    )
    reviewer = _browser(demo, "reviewer")
    page = reviewer.get(f"/cases/{case['case_id']}/resolve/?remedy=reissue").content.decode()
    assert 'name="remedy" value="reissue"' in page and timezone.localdate().isoformat() in page
    response = _resolve(reviewer, case, "reissue")
    assert response.status_code == 302, response.content.decode()[:3000]
    row = _row(case)
    assert row.state == "resolved" and row.remedy == "reissue"
    assert (
        row.resolved_invoice.origin == "reissued" and row.resolved_invoice.number != "011001900111-87654321"
    )
    assert row.resolved_invoice.issued_on == timezone.localdate()
    assert SupersededNumber.objects.filter(number="011001900111-87654321").exists()


def test_restore_page_is_for_reviewers_of_approved_cases(demo, open_case, client_for):
    case = open_case()
    url = f"/cases/{case['case_id']}/resolve/"
    assert _browser(demo, "support").get(url).status_code == 403
    assert _browser(demo, "clerk").get(url).status_code == 403
    response = _browser(demo, "reviewer").get(url)
    assert response.status_code == 302 and response["Location"] == f"/cases/{case['case_id']}/"
    reviewer = _browser(demo, "reviewer")
    reviewer.post(f"/cases/{case['case_id']}/act/claim/", {"version": str(_row(case).version)})
    page = _page(reviewer, case)
    assert url not in page  # the remedies are offered once the case is approved
    for key in APPROVE_REASONS:  # the approve form offers every reason template
        assert f'<option value="{key}">' in page


def test_a_verified_einvoice_file_does_not_make_another_number_restorable(demo, client_for, settings):
    """The file proves the claim, but the number is in none of the merchant's segments and is no
    legacy code-number: it is not the merchant's to restore."""
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    clerk = client_for("clerk")
    claim = complete_claim(
        "26112000000000012345",
        "2026-03-05",
        total_with_tax="1399.00",
        total_amount="1300.00",
        total_tax="99.00",
    )
    case = post(clerk, "/api/v1/cases", claim).json()
    xml = (Path(__file__).parents[1] / "unit" / "fixtures" / "einvoice" / "ordinary_utf8.xml").read_bytes()
    assert upload(clerk, case, "e_invoice", "数电票.xml", xml)["check"]["status"] == "verified"
    case = _approved(client_for, act(clerk, fetch(clerk, case), "submit"))
    reviewer = _browser(demo, "reviewer")
    page = reviewer.get(f"/cases/{case['case_id']}/resolve/").content.decode()
    assert 'id="resolve-form"' not in page and "26112000000000012345" in page
    response = _resolve(reviewer, case, "restore")
    assert response.status_code == 200
    assert not Invoice.objects.filter(number="26112000000000012345").exists()


def test_the_remedy_pages_have_no_untranslated_english(demo, open_case, client_for):
    """The resolve page (from the ledger, from the claim, refused) and the merchant's check of the
    result: zh-Hans throughout."""
    reviewer, clerk = _browser(demo, "reviewer"), _browser(demo, "clerk")
    lost = _approved(client_for, open_case())
    api_clerk = client_for("clerk")

    def submitted(claim: dict[str, Any]) -> dict[str, Any]:
        return act(api_clerk, post(api_clerk, "/api/v1/cases", claim).json(), "submit")

    legacy = _approved(client_for, submitted(complete_claim("011001900111-55555555", "2025-03-05")))
    lacking = _approved(client_for, submitted(claim_for("011001900111-55555556", "2025-03-05")))
    pages = {
        name: reviewer.get(f"/cases/{case['case_id']}/resolve/?remedy={remedy}").content.decode()
        for name, case, remedy in (
            ("ledger", lost, "restore"),
            ("claim", legacy, "reissue"),
            ("refused", lacking, "restore"),
        )
    }
    assert _resolve(reviewer, legacy, "restore").status_code == 302
    pages["result"] = _page(clerk, legacy)
    assert "written-beside-claimed" in pages["result"]
    for name, html in pages.items():
        assert english_words(html) == [], name
