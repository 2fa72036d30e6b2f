"""No dead ends in a case, and support registering a case for a merchant (issue 14), on SQLite and PostgreSQL.

- A claimed number no segment ever handed out is found before approval and shown to the reviewer
  with the ways that make sense (reject with a prefilled reason, or re-issue under a new number);
  restore is not offered and is refused.
- An approved case whose remedy is impossible goes back to review (approvals cleared) or is
  rejected with a reason; a rejected case may be withdrawn.
- The page: 撤回 offered exactly when the machine allows it, no step marked done that wasn't,
  "your turn" only for who can act, the second reviewer named after a first approval.
- 代商户登记: support (and only support) registers and submits a case for a named merchant, the
  channel recorded, the merchant's users notified; other merchants never see it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from fapiao.accounts.models import NumberSegment
from fapiao.recovery.models import Case, CaseEvent, Notification
from fapiao.recovery.views.progress import steps, waiting_for
from tests.integration.case_helpers import act, claim_for, complete_claim, fetch, pdf_named, post, upload

pytestmark = pytest.mark.django_db(transaction=True)

A = "91110108MA01ABCD84"  # clerk's and madmin's merchant
B = "91110105MA01EFGH56"  # clerk2's


@pytest.fixture(autouse=True)
def _private_witness(settings: Any, tmp_path: Any) -> None:
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1


@pytest.fixture
def api(client_for: Any) -> dict[str, Any]:
    names = ("clerk", "madmin", "clerk2", "support", "reviewer", "reviewer2", "auditor", "operator")
    return {name: client_for(name) for name in names}


def browser(demo: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(demo[name])
    return client


def code(body: dict[str, Any]) -> str:
    return str(body["type"]).rsplit("/", 1)[-1]


def unused_number(offset: int = 5) -> str:
    """A number of clerk's segment beyond the next one it will hand out."""
    segment = NumberSegment.objects.get(merchant__uscc=A, year=timezone.localdate().year % 100)
    return f"{segment.year:02d}{segment.province}{segment.channel}{segment.next_serial + offset:015d}"


def submitted(clerk: Client, claim: dict[str, Any]) -> dict[str, Any]:
    response = post(clerk, "/api/v1/cases", claim)
    assert response.status_code == 201, response.content.decode()
    case = response.json()
    upload(clerk, case, "contract", "合同.pdf", pdf_named(f"contract {case['case_id']}"))
    return act(clerk, fetch(clerk, case), "submit")


def page(client: Client, case: dict[str, Any]) -> str:
    response = client.get(f"/cases/{case['case_id']}/")
    assert response.status_code == 200
    return response.content.decode()


# --- the never-issued number ---------------------------------------------------------------------


def test_a_never_issued_number_is_found_before_approval_and_shown_with_its_choices(api, demo):
    number = unused_number()
    case = submitted(api["clerk"], complete_claim(number, timezone.localdate().isoformat()))
    # Before anyone approves: the API's system view and the reviewer's page say so.
    assert fetch(api["reviewer"], case)["system_view"]["number_never_issued"] is True
    case = act(api["reviewer"], case, "claim")
    html = page(browser(demo, "reviewer"), case)
    assert 'data-check="number-never-issued"' in html and "自动核查：该号码从未开具" in html
    # The rejection is prefilled with the never-issued template.
    assert re.search(r'<option value="never_issued" selected>', html)
    # After approval only the re-issue is offered, never restore.
    case = act(api["reviewer"], case, "approve", reason_template="evidence_consistent")
    html = page(browser(demo, "reviewer"), case)
    assert "?remedy=reissue" in html and "?remedy=restore" not in html
    assert "以新号码补开" in html
    # The merchant never sees the staff's check.
    assert "number-never-issued" not in page(browser(demo, "clerk"), case)


def test_numbers_that_were_issued_or_are_another_merchant_s_are_not_never_issued(api, valid_invoice):
    issued = post(api["clerk"], "/api/v1/invoices", valid_invoice).json()["number"]
    others = post(api["clerk2"], "/api/v1/invoices", valid_invoice).json()["number"]
    b_unused = others[:5] + f"{int(others[5:]) + 10:015d}"  # in B's segment, never handed out by B
    nobody = f"{timezone.localdate().year % 100:02d}110{999_999_999_999_321:015d}"  # in no segment
    found = {}
    for number in (issued, b_unused, nobody, "011001900111-00000042"):
        response = post(api["clerk"], "/api/v1/cases", claim_for(number, timezone.localdate().isoformat()))
        case = act(api["clerk"], response.json(), "submit")
        found[number] = fetch(api["reviewer"], case)["system_view"]["number_never_issued"]
    assert found == {issued: False, b_unused: False, nobody: True, "011001900111-00000042": False}


def test_rejecting_a_never_issued_number_sends_the_full_reason(api):
    number = unused_number(7)
    case = submitted(api["clerk"], complete_claim(number, timezone.localdate().isoformat()))
    case = act(api["reviewer"], case, "claim")
    mail.outbox.clear()
    note = "号码末位可能抄错，请核对存根联。" * 3
    case = act(api["reviewer"], case, "reject", reason_template="never_issued", reason=note)
    assert case["state"] == "rejected"
    reason = case["decision_reason"]
    assert reason.startswith("您申请的发票号码从未由任何号段发出") and reason.endswith(note)
    told = Notification.objects.get(
        case__uid=case["case_id"], user__username="clerk", message__contains="rejected"
    )
    assert told.params["reason"] == reason
    [sent] = [m for m in mail.outbox if "clerk@example.com" in m.to]
    assert reason in sent.body and case["acceptance_no"] in sent.subject
    assert len(sent.subject) < 90  # the whole reason is in the body, not the subject line
    # The merchant's page shows the reason in full.
    assert reason in fetch(api["clerk"], case)["decision_reason"]


# --- an approved case whose remedy is impossible -----------------------------------------------------


def approved(api: dict[str, Any]) -> dict[str, Any]:
    # A legacy number no ledger saw, with an incomplete claim: the remedy cannot be written.
    case = submitted(api["clerk"], claim_for("011001900111-77777777", "2025-03-05"))
    case = act(
        api["reviewer"], act(api["reviewer"], case, "claim"), "approve", reason_template="evidence_consistent"
    )
    assert case["state"] == "approved" and case["first_approver"] == "reviewer"
    refused = act(api["reviewer"], case, "resolve", expect=409, remedy="reissue")
    assert refused["status"] in (409, 422) or code(refused)
    return fetch(api["reviewer"], case)


def test_an_impossible_remedy_goes_back_to_review_with_approvals_cleared(api, settings):
    case = approved(api)
    # The reason is required; nothing changes without it.
    refused = act(api["reviewer"], case, "return-to-review", expect=422, reason="  ")
    assert refused["errors"][0]["field"] == "reason"
    assert fetch(api["reviewer"], case)["state"] == "approved"
    # Not support's, not the merchant's.
    for name in ("support", "clerk", "auditor"):
        response = post(
            api[name],
            f"/api/v1/cases/{case['case_id']}/return-to-review",
            {"version": case["version"], "reason": "x"},
        )
        assert response.status_code == 403, name
    mail.outbox.clear()
    back = act(api["reviewer"], case, "return-to-review", reason="税率未填，无法补开；请商户补正后重新审核。")
    assert back["state"] == "in_review"
    assert (back["first_approver"], back["second_approver"], back["decision_reason"]) == (None, None, None)
    event = CaseEvent.objects.filter(case__uid=case["case_id"]).latest("at", "pk")
    assert (event.action, event.from_state, event.to_state) == ("return_to_review", "approved", "in_review")
    told = Notification.objects.get(
        case__uid=case["case_id"], user__username="clerk", message__contains="went back"
    )
    assert "税率未填" in told.params["reason"]
    assert any("税率未填" in m.body for m in mail.outbox)
    # A fresh review: approval is needed again before any remedy.
    refused = act(api["reviewer"], back, "resolve", expect=409, remedy="reissue")
    assert code(refused) == "case_action_not_allowed"


def test_an_impossible_remedy_may_be_rejected_and_the_merchant_may_withdraw(api):
    case = approved(api)
    rejected = act(
        api["reviewer"], case, "reject", reason_template="remedy_impossible", reason="缺少发票种类。"
    )
    assert rejected["state"] == "rejected" and "缺少发票种类。" in rejected["decision_reason"]
    assert "withdraw" in fetch(api["clerk"], rejected)["actions"]
    withdrawn = act(api["clerk"], fetch(api["clerk"], rejected), "withdraw", reason="不再需要。")
    assert withdrawn["state"] == "withdrawn"


def test_four_eyes_holds_for_the_new_decisions(api, demo):
    """Support who registered a case can't decide it; a reviewer who spoke for the merchant can't either."""
    case = register(
        api["support"], A, "phone", complete_claim(unused_number(9), timezone.localdate().isoformat())
    )
    case = act(api["reviewer"], case, "claim")
    case = act(api["reviewer"], case, "approve", reason_template="evidence_consistent")
    response = post(
        api["support"], f"/api/v1/cases/{case['case_id']}/reject", {"version": case["version"], "reason": "x"}
    )
    assert response.status_code == 403


# --- the case page ---------------------------------------------------------------------------------


def test_withdraw_is_offered_exactly_when_the_machine_allows_it(api, demo):
    clerk = browser(demo, "clerk")
    case = submitted(api["clerk"], complete_claim(unused_number(11), timezone.localdate().isoformat()))
    assert "recovery:act" not in page(clerk, case)
    assert f"/cases/{case['case_id']}/act/withdraw/" in page(clerk, case)  # submitted: allowed
    case = act(
        api["reviewer"], act(api["reviewer"], case, "claim"), "approve", reason_template="evidence_consistent"
    )
    assert f"/cases/{case['case_id']}/act/withdraw/" not in page(clerk, case)  # approved: not allowed
    assert "withdraw" not in fetch(api["clerk"], case)["actions"]


def test_the_stepper_marks_no_step_done_that_was_not(api, demo):
    case = submitted(api["clerk"], complete_claim(unused_number(13), timezone.localdate().isoformat()))
    row = Case.objects.get(uid=case["case_id"])
    assert [s.status for s in steps(row)] == ["done", "done", "skipped", "current", "todo"]
    html = page(browser(demo, "clerk"), case)
    assert "step-skipped" in html and "（无需）" in html
    act(api["support"], case, "request-info", body="请补充银行回单。", items=["银行回单"])
    row.refresh_from_db()
    assert [s.status for s in steps(row)][2] == "problem"
    upload(api["clerk"], fetch(api["clerk"], case), "bank_statement", "回单.pdf", pdf_named("bank"))
    row.refresh_from_db()
    assert [s.status for s in steps(row)] == ["done", "done", "done", "current", "todo"]
    # Withdrawn while in review: the review step is not done.
    act(api["clerk"], fetch(api["clerk"], case), "withdraw")
    row.refresh_from_db()
    assert "done" not in [s.status for s in steps(row)][3:]


def test_your_turn_only_for_who_can_act(api, demo):
    case = submitted(api["clerk"], complete_claim(unused_number(15), timezone.localdate().isoformat()))
    row = Case.objects.get(uid=case["case_id"])
    turn = {
        name: waiting_for(row, merchant_view=False, user=demo[name]).on_you
        for name in ("support", "reviewer", "auditor")
    }
    assert turn == {"support": True, "reviewer": True, "auditor": False}
    assert waiting_for(row, merchant_view=True, user=demo["clerk"]).on_you is False
    act(api["reviewer"], case, "claim")
    row.refresh_from_db()
    turn = {
        name: waiting_for(row, merchant_view=False, user=demo[name]).on_you
        for name in ("support", "reviewer", "reviewer2")
    }
    assert turn == {"support": False, "reviewer": True, "reviewer2": False}
    assert "待您处理" not in page(browser(demo, "reviewer2"), case)
    assert "待您处理" in page(browser(demo, "reviewer"), case)


def test_after_a_first_approval_the_page_says_a_second_reviewer_is_needed(api, demo, settings):
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = 100_000  # ¥1,000.00; the claim is ¥1,060.00
    case = submitted(api["clerk"], complete_claim(unused_number(17), timezone.localdate().isoformat()))
    case = act(api["reviewer"], case, "claim")
    reviewer = browser(demo, "reviewer")
    response = reviewer.post(
        f"/cases/{case['case_id']}/act/approve/",
        {"version": case["version"], "reason_template": "evidence_consistent"},
        follow=True,
    )
    html = response.content.decode()
    assert "已完成第一次批准。还需要另一位审核员批准。" in html
    assert "还需要另一位审核员（不能是第一位）批准" in html
    assert "待您处理" not in html  # the first approver can't give the second
    assert "待您处理" in page(browser(demo, "reviewer2"), case)


# --- 代商户登记 ---------------------------------------------------------------------------------------


def register(
    client: Client, merchant: str, channel: str, claim: dict[str, Any], expect: int = 201
) -> dict[str, Any]:
    response = post(
        client, "/api/v1/cases/register", {"merchant": merchant, "channel": channel, "claim": claim}
    )
    assert response.status_code == expect, response.content.decode()
    return response.json()


def test_support_registers_a_case_for_a_merchant_who_phoned_in(api):
    mail.outbox.clear()
    claim = complete_claim(unused_number(19), timezone.localdate().isoformat())
    case = register(api["support"], A, "phone", claim)
    assert case["state"] == "submitted" and case["channel"] == "phone"
    assert case["acceptance_no"] and case["merchant"]["uscc"] == A
    row = Case.objects.get(uid=case["case_id"])
    assert (row.opened_by.username, row.submitted_by.username) == ("support", "support")
    assert [e.action for e in row.events.order_by("at", "pk")] == ["open", "register"]
    assert row.events.get(action="register").details == {"channel": "phone", "merchant": A}
    # Every user of the merchant hears of it, in Chinese, by mail too; no one of merchant B.
    told = Notification.objects.filter(case=row, message__startswith="Support registered")
    assert {n.user.username for n in told} == {"clerk", "madmin"}
    assert told.first().params["channel"] == "电话（由客服登记）"
    bodies = [m.body for m in mail.outbox if "clerk@example.com" in m.to]
    assert bodies and "客服已为您登记补救申请" in bodies[0]
    # The merchant sees it and can add evidence; the other merchant can't see it at all.
    assert any(
        item["case_id"] == case["case_id"] for item in api["clerk"].get("/api/v1/cases").json()["items"]
    )
    upload(api["clerk"], case, "contract", "合同.pdf", pdf_named("registered"))
    assert api["clerk2"].get(f"/api/v1/cases/{case['case_id']}").status_code == 404
    # Reviewers decide it as any other.
    case = act(api["reviewer"], fetch(api["reviewer"], case), "claim")
    assert act(api["reviewer"], case, "approve", reason_template="evidence_consistent")["state"] == "approved"


@pytest.mark.parametrize("name", ["clerk", "madmin", "clerk2", "reviewer", "auditor", "operator"])
def test_only_support_registers(api, name):
    before = Case.objects.count()
    body = register(
        api[name], A, "phone", claim_for(unused_number(21), timezone.localdate().isoformat()), expect=403
    )
    assert code(body) == "role_forbidden"
    assert Case.objects.count() == before


def test_a_bad_registration_says_what_is_wrong_and_writes_nothing(api):
    before = (Case.objects.count(), Notification.objects.count())
    bad_claim = {
        "number": "123",
        "issued_on": "",
        "buyer": {"name": ""},
        "total_with_tax": "x",
        "narrative": "",
    }
    body = register(api["support"], "91110000000000000X", "fax", bad_claim, expect=422)
    fields = {error["field"] for error in body["errors"]}
    assert {"merchant", "channel", "claim.number", "claim.issued_on"} <= fields
    body = register(api["support"], "", "phone", claim_for(unused_number(23), "2025-01-02"), expect=422)
    assert [e["field"] for e in body["errors"]] == ["merchant"]
    assert (Case.objects.count(), Notification.objects.count()) == before


def test_support_registers_through_the_page(demo):
    support, clerk = browser(demo, "support"), browser(demo, "clerk")
    assert clerk.get("/cases/register/").status_code == 403
    form = support.get("/cases/register/")
    assert form.status_code == 200 and "代商户登记补救申请" in form.content.decode()
    assert "/cases/register/" in support.get("/cases/").content.decode()
    empty = support.post("/cases/register/", {})
    assert empty.status_code == 200 and "aria-invalid" in empty.content.decode()
    assert not Case.objects.exists()
    data = {
        "merchant": A,
        "channel": "mail_in",
        "number": unused_number(25),
        "issued_on": timezone.localdate().isoformat(),
        "buyer_name": "北京买方贸易有限公司",
        "buyer_tax_id": "",
        "total_with_tax": "1,060.00",
        "total_amount": "1000.00",
        "total_tax": "60.00",
        "tax_rate": "",
        "kind": "ordinary",
        "narrative": "商户来信：发票上传中断。",
    }
    done = support.post("/cases/register/", data, follow=True)
    html = done.content.decode()
    row = Case.objects.get()
    assert (row.state, row.channel, row.merchant.uscc) == ("submitted", "mail_in", A)
    assert row.acceptance_no in html and "并已通知该商户" in html


def test_support_contact_is_shown_where_pages_say_contact_support(demo, settings, client_for):
    settings.FAPIAO_SUPPORT_PHONE = "400-800-1234"
    settings.FAPIAO_SUPPORT_EMAIL = "help@fapiao.example.cn"
    settings.FAPIAO_SUPPORT_HOURS = "工作日 9:00–18:00"
    clerk = browser(demo, "clerk")
    case = submitted(client_for("clerk"), complete_claim(unused_number(27), timezone.localdate().isoformat()))
    html = clerk.get(f"/cases/{case['case_id']}/?submitted=1").content.decode()
    assert "400-800-1234" in html and "help@fapiao.example.cn" in html and "工作日 9:00–18:00" in html
    html = clerk.get("/no-such-page/").content.decode()
    assert "data-support-contact" in html and "400-800-1234" in html
    settings.FAPIAO_SUPPORT_PHONE = settings.FAPIAO_SUPPORT_EMAIL = ""
    assert "data-support-contact" not in clerk.get("/no-such-page/").content.decode()
