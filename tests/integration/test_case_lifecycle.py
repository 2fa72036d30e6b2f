"""The recovery case's other paths through the API (docs/spec/recovery.md), beside the restore journey.

Reject (with a reason template, then with free text) → edit → resubmit → approve → restore;
re-issue (补开) and what it leaves behind (a superseded number that is flagged if it surfaces);
the second reviewer; withdraw; reopen inside and outside the window; claim, release, assign;
and the record every transition leaves: a timeline event, an audit record with who and why, a
notification and a mail to the people who must act next.  Automatic evidence checks: an
e-invoice XML file that matches the claim and one that does not, and a validly signed system
receipt the log no longer proves.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core import mail
from django.db import connection
from django.utils import timezone, translation
from django.utils.translation import gettext

from fapiao.accounts.models import NumberSegment, User
from fapiao.audit.models import AuditRecord
from fapiao.core.receipt import verify_receipt
from fapiao.invoices.models import Invoice
from fapiao.ledger.models import IntegrityIncident, LogEntry
from fapiao.ledger.services import append_entry
from fapiao.platform import keys
from fapiao.platform.uow import write
from fapiao.recovery import notify
from fapiao.recovery.models import Case, CaseEvent, Notification, SupersededNumber
from fapiao.recovery.reasons import APPROVE_REASONS, REJECT_REASONS
from tests.integration.case_helpers import (
    act,
    claim_for,
    complete_claim,
    fetch,
    lose_invoice,
    pdf_named,
    post,
    upload,
)

pytestmark = pytest.mark.django_db(transaction=True)

EINVOICES = Path(__file__).parents[1] / "unit" / "fixtures" / "einvoice"
#: The claim that ordinary_utf8.xml proves, field by field.
EINVOICE_CLAIM: dict[str, Any] = {
    "number": "26112000000000012345",
    "issued_on": "2026-03-05",
    "buyer": {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"},
    "total_with_tax": "1399.00",
    "total_amount": "1300.00",
    "total_tax": "99.00",
    "narrative": "数电票文件在手，系统里查不到这张发票。",
}


@pytest.fixture(autouse=True)
def _private_witness(settings: Any, tmp_path: Path) -> None:
    """This test's signed heads go to its own witness file, not the session's shared one."""
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"


# --- steps ------------------------------------------------------------------------------------------


@pytest.fixture
def people(client_for: Any, settings: Any) -> dict[str, Any]:
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1  # the second review has its own test
    return {name: client_for(name) for name in ("clerk", "support", "reviewer", "reviewer2", "clerk2")}


def issue_and_lose(clerk: Any, invoice: dict[str, Any]) -> tuple[str, dict[str, Any], bytes]:
    """An issued invoice whose row is then lost: its number, what was kept, its receipt file."""
    response = post(clerk, "/api/v1/invoices", invoice)
    assert response.status_code == 201, response.content
    issued = response.json()
    kept = lose_invoice(issued["number"])
    return issued["number"], kept, json.dumps(issued["receipt"]).encode()


def open_case(clerk: Any, claim: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    response = post(clerk, "/api/v1/cases", claim)
    assert response.status_code == expect, response.content.decode()
    return response.json()


def submitted_case(clerk: Any, claim: dict[str, Any]) -> dict[str, Any]:
    case = open_case(clerk, claim)
    upload(clerk, case, "contract", "合同.pdf", pdf_named(f"contract {case['case_id']}"))
    return act(clerk, fetch(clerk, case), "submit")


def approved_case(
    people: dict[str, Any], invoice: dict[str, Any]
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    number, kept, _receipt = issue_and_lose(people["clerk"], invoice)
    case = submitted_case(people["clerk"], claim_for(number, kept["issued_on"]))
    case = act(people["reviewer"], case, "claim")
    case = act(people["reviewer"], case, "approve", reason_template="evidence_consistent")
    assert case["state"] == "approved"
    return case, number, kept


def resolved_case(people: dict[str, Any], invoice: dict[str, Any]) -> dict[str, Any]:
    case, _number, _kept = approved_case(people, invoice)
    result = act(people["reviewer"], case, "resolve", remedy="restore")
    assert result["case"]["state"] == "resolved"
    return result["case"]


def patch(client: Any, case: dict[str, Any], body: dict[str, Any], expect: int = 200) -> dict[str, Any]:
    response = client.patch(
        f"/api/v1/cases/{case['case_id']}", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == expect, response.content.decode()
    return response.json()


def in_site_language(msgid: str) -> str:
    """A reason template as stored: in the site's language, the language of the record."""
    from django.conf import settings
    from django.utils import translation

    with translation.override(settings.LANGUAGE_CODE):
        return translation.gettext(msgid)


def code(body: dict[str, Any]) -> str:
    return str(body["type"]).rsplit("/", 1)[-1]


def row(case: dict[str, Any]) -> Case:
    return Case.objects.get(uid=case["case_id"])


def unclaimed_number(offset: int = 0) -> str:
    """A well-formed number of this year that no merchant's segment holds and no ledger saw."""
    return f"{timezone.localdate().year % 100:02d}110{999_999_999_999_000 + offset:015d}"


class Trail:
    """What each step added: audit records, notifications, mails."""

    def __init__(self, case_uid: str) -> None:
        self.case_uid = case_uid
        self.mark()

    def mark(self) -> None:
        self.audit = AuditRecord.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        self.notes = Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        self.mails = len(mail.outbox)

    def step(self, action: str, actor: str, told: set[str], reason: str = "") -> None:
        case = Case.objects.get(uid=self.case_uid)
        records = AuditRecord.objects.filter(
            pk__gt=self.audit, action=f"case.{action}", target_id=str(case.pk)
        )
        assert [(r.actor_username, r.note) for r in records] == [(actor, reason)], (action, list(records))
        notes = Notification.objects.filter(pk__gt=self.notes, case=case)
        assert {(n.user.username, n.message) for n in notes} == {(u, notify.MESSAGES[action]) for u in told}
        mails = mail.outbox[self.mails :]
        assert sorted(address for m in mails for address in m.to) == sorted(f"{u}@example.com" for u in told)
        assert all(case.acceptance_no in m.subject and self.case_uid in m.body for m in mails)
        event = case.events.order_by("-at", "-pk").first()
        assert event is not None and event.actor.username == actor and event.reason == reason
        self.mark()


# --- reject → edit → resubmit → approve → restore -------------------------------------------------------


def test_reject_edit_resubmit_approve_restore(people, valid_invoice):
    clerk, reviewer = people["clerk"], people["reviewer"]
    number, kept, _receipt = issue_and_lose(clerk, valid_invoice)
    case = submitted_case(clerk, claim_for(number, kept["issued_on"], total_with_tax="1000.00"))
    acceptance_no = case["acceptance_no"]

    # 1. Rejected with a template and a note: the stored reason is the template's text, then the note.
    case = act(reviewer, case, "claim")
    case = act(reviewer, case, "reject", reason_template="claim_mismatch", reason="合同金额为1060元。")
    assert case["state"] == "rejected"
    expected = f"{in_site_language(REJECT_REASONS['claim_mismatch'])} 合同金额为1060元。"
    assert case["decision_reason"] == expected
    assert case["timeline"][-1]["action"] == "reject" and case["timeline"][-1]["reason"] == expected
    assert "resubmit" in fetch(clerk, case)["actions"]

    # 2. The clerk corrects the claim (PATCH) and resubmits: same 受理编号, the decision cleared.
    claim = claim_for(
        number, kept["issued_on"], total_with_tax="1060.00", total_amount="1000.00", total_tax="60.00"
    )
    edited = patch(clerk, fetch(clerk, case), {"version": case["version"], **claim})
    assert edited["version"] == case["version"] + 1 and edited["state"] == "rejected"
    assert edited["claim"]["total_with_tax"] == "1060.00" and edited["claim"]["total_tax"] == "60.00"
    assert edited["timeline"][-1]["action"] == "edit"
    case = act(clerk, edited, "resubmit")
    assert case["state"] == "submitted" and case["acceptance_no"] == acceptance_no
    assert case["decision_reason"] is None and case["assignee"] is None

    # 3. Rejected again with free text only, the clerk adds a file while rejected and resubmits.
    case = act(reviewer, act(reviewer, case, "claim"), "reject", reason="请补充银行回单。")
    assert case["decision_reason"] == "请补充银行回单。"
    upload(clerk, case, "bank_statement", "回单.pdf", pdf_named("bank statement"))
    case = act(clerk, fetch(clerk, case), "resubmit")

    # 4. Approved and restored under the original number.
    case = act(reviewer, act(reviewer, case, "claim"), "approve", reason_template="evidence_consistent")
    assert case["state"] == "approved" and case["first_approver"] == "reviewer"
    assert case["decision_reason"] == in_site_language(APPROVE_REASONS["evidence_consistent"])
    result = act(reviewer, case, "resolve", remedy="restore")
    assert result["case"]["state"] == "resolved" and result["case"]["remedy"] == "restore"
    assert result["invoice"]["number"] == number and result["invoice"]["origin"] == "restored"

    steps = [(e["action"], e["from"], e["to"]) for e in fetch(clerk, case)["timeline"]]
    transitions = [s for s in steps if s[0] not in ("evidence", "edit", "open")]
    assert transitions == [
        ("submit", "draft", "submitted"),
        ("claim", "submitted", "in_review"),
        ("reject", "in_review", "rejected"),
        ("resubmit", "rejected", "submitted"),
        ("claim", "submitted", "in_review"),
        ("reject", "in_review", "rejected"),
        ("resubmit", "rejected", "submitted"),
        ("claim", "submitted", "in_review"),
        ("approve", "in_review", "approved"),
        ("resolve", "approved", "resolved"),
    ]
    rejections = AuditRecord.objects.filter(action="case.reject").order_by("seq")
    assert [(r.actor_username, r.note) for r in rejections] == [
        ("reviewer", expected),
        ("reviewer", "请补充银行回单。"),
    ]


# --- re-issue (补开) -------------------------------------------------------------------------------------


def test_reissue_for_a_number_the_ledger_never_saw(people, valid_invoice):
    clerk, reviewer = people["clerk"], people["reviewer"]
    claimed = unclaimed_number()
    case = submitted_case(clerk, complete_claim(claimed, timezone.localdate().isoformat()))
    case = act(reviewer, act(reviewer, case, "claim"), "approve", reason_template="evidence_consistent")
    assert case["system_view"]["ledger_history"] == []

    result = act(reviewer, case, "resolve", remedy="reissue")
    invoice, case = result["invoice"], result["case"]
    assert case["state"] == "resolved" and case["remedy"] == "reissue"
    assert invoice["origin"] == "reissued" and invoice["number"] != claimed
    assert case["resolved_invoice"] == invoice["number"]
    segment = NumberSegment.objects.get(merchant__uscc="91110108MA01ABCD84", year=int(invoice["number"][:2]))
    assert segment.first_serial <= int(invoice["number"][5:]) < segment.next_serial

    # The ledger: a reissue entry for the new number, carrying the case id; nothing for the claimed one.
    entry = LogEntry.objects.get(invoice_number=invoice["number"])
    assert (entry.kind, entry.ref) == ("reissue", case["case_id"])
    assert not LogEntry.objects.filter(invoice_number=claimed).exists()
    verdict = verify_receipt(result["receipt"], keys.registry())
    assert verdict.ok and verdict.entry["kind"] == "reissue" and verdict.entry["ref"] == case["case_id"]

    # The claimed number is superseded by the new invoice, and the merchant finds the new one.
    superseded = SupersededNumber.objects.get(number=claimed)
    assert superseded.replacement.number == invoice["number"] and str(superseded.case.uid) == case["case_id"]
    assert superseded.surfaced_at is None
    found = clerk.get(f"/api/v1/invoices?number={invoice['number']}").json()
    assert found["total"] == 1 and found["items"][0]["origin"] == "reissued"
    assert AuditRecord.objects.filter(action="invoice.reissue", actor_username="reviewer").exists()

    # Restoring the superseded number later would invoice one sale twice.
    again = submitted_case(
        clerk, claim_for(claimed, timezone.localdate().isoformat(), narrative="又找到了原票。")
    )
    again = act(reviewer, act(reviewer, again, "claim"), "approve", reason_template="evidence_consistent")
    refused = act(reviewer, again, "resolve", expect=409, remedy="restore")
    assert code(refused) == "number_superseded" and claimed in refused["detail"]
    assert fetch(reviewer, again)["state"] == "approved"


def test_a_superseded_number_that_surfaces_is_flagged(people, valid_invoice):
    clerk, reviewer = people["clerk"], people["reviewer"]
    claimed = unclaimed_number(1)
    case = submitted_case(clerk, complete_claim(claimed, timezone.localdate().isoformat()))
    case = act(reviewer, act(reviewer, case, "claim"), "approve", reason_template="evidence_consistent")
    reissued = act(reviewer, case, "resolve", remedy="reissue")["invoice"]

    # The original surfaces: its entry reaches the log later (as a record-mode import would write it),
    # and the merchant attaches that entry's receipt to a case.
    merchant = User.objects.get(username="clerk").merchant
    document = json.loads(bytes(LogEntry.objects.get(invoice_number=reissued["number"]).body))["invoice"]
    document["number"] = claimed
    pending = write(lambda unit: append_entry(unit, merchant=merchant, kind="import", invoice=document))
    assert pending.receipt is not None
    other = open_case(clerk, claim_for(claimed, timezone.localdate().isoformat(), narrative="原票找到了。"))
    checked = upload(clerk, other, "system_receipt", "原票回执.json", json.dumps(pending.receipt).encode())

    flagged = SupersededNumber.objects.get(number=claimed)
    assert flagged.surfaced_at is not None and other["case_id"] in flagged.surfaced_how
    assert checked["check"]["status"] == "verified"
    assert claimed in checked["check"]["message"] and reissued["number"] not in checked["check"]["message"]
    # A second file showing the same number still says so (the flag is not a one-time message).
    second = upload(clerk, other, "other", "回执副本.json", json.dumps(pending.receipt, indent=1).encode())
    assert claimed in second["check"]["message"]
    assert second["check"]["message"] == checked["check"]["message"]


def test_reissue_is_refused_when_the_ledger_has_the_number(people, valid_invoice):
    case, number, _kept = approved_case(people, valid_invoice)
    segment = NumberSegment.objects.get(merchant__uscc="91110108MA01ABCD84", year=int(number[:2]))
    counts = (Invoice.objects.count(), LogEntry.objects.count(), SupersededNumber.objects.count())

    refused = act(people["reviewer"], case, "resolve", expect=409, remedy="reissue")
    assert code(refused) == "original_established" and number in refused["detail"]
    after = fetch(people["reviewer"], case)
    assert (after["state"], after["version"]) == ("approved", case["version"])
    assert (Invoice.objects.count(), LogEntry.objects.count(), SupersededNumber.objects.count()) == counts
    segment_after = NumberSegment.objects.get(pk=segment.pk)
    assert segment_after.next_serial == segment.next_serial  # no number was used up


def test_reissue_is_refused_for_a_number_never_handed_out(people, valid_invoice):
    """A number inside the merchant's own segment that was never allocated: the claim is wrong.

    Re-issuing would hand out the next number — possibly that very one — and mark it superseded.
    """
    clerk, reviewer = people["clerk"], people["reviewer"]
    segment = NumberSegment.objects.get(
        merchant__uscc="91110108MA01ABCD84", year=timezone.localdate().year % 100
    )
    unused = f"{segment.year:02d}{segment.province}{segment.channel}{segment.next_serial:015d}"
    case = submitted_case(clerk, claim_for(unused, timezone.localdate().isoformat()))
    case = act(reviewer, act(reviewer, case, "claim"), "approve", reason_template="evidence_consistent")
    refused = act(reviewer, case, "resolve", expect=409, remedy="reissue")
    assert code(refused) == "number_never_allocated"
    assert not SupersededNumber.objects.exists() and not Invoice.objects.filter(number=unused).exists()
    assert fetch(reviewer, case)["state"] == "approved"


# --- the second reviewer ---------------------------------------------------------------------------------


def test_second_reviewer_path(people, valid_invoice, settings):
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = 100_000  # ¥1,000.00; the claim is ¥1,060.00
    clerk, reviewer, reviewer2 = people["clerk"], people["reviewer"], people["reviewer2"]
    number, kept, _receipt = issue_and_lose(clerk, valid_invoice)
    case = submitted_case(clerk, claim_for(number, kept["issued_on"]))
    case = act(reviewer, case, "claim")
    mail.outbox.clear()

    case = act(reviewer, case, "approve", reason_template="receipt_verified")
    assert case["state"] == "awaiting_second"
    assert (case["first_approver"], case["assignee"]) == ("reviewer", None)
    # Every other reviewer may give the second approval, so every other reviewer hears of it.
    told = Notification.objects.filter(case=row(case), message=notify.MESSAGES["awaiting_second"])
    assert {n.user.username for n in told} == {"reviewer2"}
    assert [m.to for m in mail.outbox] == [["reviewer2@example.com"]]

    refused = act(reviewer, case, "approve", expect=403)
    assert code(refused) == "second_reviewer_must_differ"
    assert fetch(reviewer, case)["version"] == case["version"]

    case = act(reviewer2, case, "claim")
    assert (case["state"], case["assignee"]) == ("awaiting_second", "reviewer2")
    case = act(reviewer2, case, "approve", reason="金额与合同、回单一致。")
    assert case["state"] == "approved"
    assert (case["first_approver"], case["second_approver"]) == ("reviewer", "reviewer2")

    held = act(reviewer, case, "resolve", expect=409, remedy="restore")
    assert code(held) == "claim_held"
    result = act(reviewer2, case, "resolve", remedy="restore")
    assert result["case"]["state"] == "resolved" and result["invoice"]["origin"] == "restored"
    approvals = AuditRecord.objects.filter(action="case.approve").order_by("seq")
    assert [(a.actor_username, a.after["state"]) for a in approvals] == [
        ("reviewer", "awaiting_second"),
        ("reviewer2", "approved"),
    ]


# --- withdraw ---------------------------------------------------------------------------------------------


def test_withdraw_from_draft_submitted_and_needs_info(people, valid_invoice):
    clerk, support = people["clerk"], people["support"]
    today = timezone.localdate().isoformat()

    draft = open_case(clerk, claim_for(unclaimed_number(2), today))
    withdrawn = act(clerk, draft, "withdraw")
    assert withdrawn["state"] == "withdrawn" and withdrawn["acceptance_no"] is None
    assert row(withdrawn).closed_at is not None
    assert not Notification.objects.filter(case=row(withdrawn)).exists()  # nobody else knew of the draft

    submitted = submitted_case(clerk, claim_for(unclaimed_number(3), today))
    refused = act(support, submitted, "withdraw", expect=403)
    assert code(refused) == "role_forbidden"
    trail = Trail(submitted["case_id"])
    withdrawn = act(clerk, submitted, "withdraw", reason="发票已在系统中找到。")
    assert withdrawn["state"] == "withdrawn" and withdrawn["timeline"][-1]["reason"] == "发票已在系统中找到。"
    trail.step(
        "withdraw", "clerk", {"reviewer"}, reason="发票已在系统中找到。"
    )  # the lead: nobody had claimed it

    waiting = submitted_case(clerk, claim_for(unclaimed_number(4), today))
    waiting = act(support, waiting, "request-info", body="请补充合同。", items=["合同扫描件"])
    assert waiting["state"] == "needs_info"
    withdrawn = act(clerk, fetch(clerk, waiting), "withdraw")
    assert withdrawn["state"] == "withdrawn"

    closed = act(clerk, withdrawn, "resubmit", expect=409)
    assert code(closed) == "case_closed"
    audit = AuditRecord.objects.filter(action="case.withdraw").order_by("seq")
    assert [(r.actor_username, r.before["state"], r.after["state"]) for r in audit] == [
        ("clerk", "draft", "withdrawn"),
        ("clerk", "submitted", "withdrawn"),
        ("clerk", "needs_info", "withdrawn"),
    ]


def test_an_approved_case_can_no_longer_be_withdrawn(people, valid_invoice):
    case, _number, _kept = approved_case(people, valid_invoice)
    refused = act(people["clerk"], fetch(people["clerk"], case), "withdraw", expect=409)
    assert code(refused) == "case_action_not_allowed"
    assert fetch(people["clerk"], case)["state"] == "approved"


# --- reopen -------------------------------------------------------------------------------------------------


def test_reopen_within_the_window(people, valid_invoice):
    clerk = people["clerk"]
    case = fetch(clerk, resolved_case(people, valid_invoice))
    deadline = row(case).reopen_deadline
    assert deadline is not None
    expected = row(case).resolved_at + timedelta(days=django_settings.FAPIAO_CASE_REOPEN_DAYS)
    assert deadline == expected

    with time_machine.travel(deadline - timedelta(minutes=1)):
        reopened = act(clerk, case, "reopen", reason="恢复的发票买方名称不对。")
    assert reopened["state"] == "in_review"
    assert reopened["timeline"][-1]["reason"] == "恢复的发票买方名称不对。"
    told = Notification.objects.filter(case=row(case), message=notify.MESSAGES["reopen"])
    assert {n.user.username for n in told} == {"reviewer"}  # the reviewer who resolved it
    # The earlier approval does not count for the new decision.
    assert (reopened["first_approver"], reopened["second_approver"]) == (None, None)


def test_a_reopened_case_cannot_restore_its_invoice_a_second_time(people, valid_invoice):
    """The restored invoice stands (the ledger holds it): the reviewer is told why and what to do."""
    clerk, reviewer = people["clerk"], people["reviewer"]
    case = fetch(clerk, resolved_case(people, valid_invoice))
    case = act(clerk, case, "reopen", reason="恢复的发票买方名称不对。")
    case = act(reviewer, case, "approve", reason_template="evidence_consistent")
    entries = LogEntry.objects.count()
    refused = act(reviewer, case, "resolve", expect=409, remedy="restore")
    assert code(refused) == "remedy_already_applied"
    number = case["claim"]["number"]
    assert refused["detail"] == (
        f"本申请已恢复或补开过发票 {number}，不能再做一次补救来替换它。"
        "如该发票有误，请商户将其红冲并开具正确的发票，或说明理由驳回此次重新打开。"
    )
    refused = act(reviewer, case, "resolve", expect=409, remedy="reissue")
    assert code(refused) == "remedy_already_applied"
    assert LogEntry.objects.count() == entries and fetch(clerk, case)["state"] == "approved"


def test_reopen_after_the_window_is_refused(people, valid_invoice):
    clerk = people["clerk"]
    case = fetch(clerk, resolved_case(people, valid_invoice))
    deadline = row(case).reopen_deadline
    events = CaseEvent.objects.count()
    with time_machine.travel(deadline + timedelta(seconds=1)):
        refused = act(clerk, case, "reopen", expect=409, reason="太晚了。")
    assert code(refused) == "reopen_window_closed"
    after = fetch(clerk, case)
    assert (after["state"], after["version"]) == ("resolved", case["version"])
    assert CaseEvent.objects.count() == events
    # Confirming is still possible, and closes the case.
    trail = Trail(case["case_id"])
    assert act(clerk, after, "confirm")["state"] == "confirmed"
    trail.step("confirm", "clerk", {"reviewer"})  # the reviewer who resolved it


# --- claim, release, assign ------------------------------------------------------------------------------


def test_claims_release_and_assignment(people, valid_invoice):
    clerk, reviewer, reviewer2, support = (people[n] for n in ("clerk", "reviewer", "reviewer2", "support"))
    number, kept, _receipt = issue_and_lose(clerk, valid_invoice)
    case = submitted_case(clerk, claim_for(number, kept["issued_on"]))

    refused = post(reviewer2, f"/api/v1/cases/{case['case_id']}/assign", {"assignee": "reviewer"})
    assert refused.status_code == 403 and code(refused.json()) == "not_lead"
    for assignee in ("support", "nobody-by-that-name"):
        bad = post(reviewer, f"/api/v1/cases/{case['case_id']}/assign", {"assignee": assignee})
        assert bad.status_code == 422
        assert [(e["field"], e["code"]) for e in bad.json()["errors"]] == [
            ("assignee", "assignee_not_reviewer")
        ]
    response = post(reviewer, f"/api/v1/cases/{case['case_id']}/assign", {"assignee": "reviewer2"})
    assert response.status_code == 200, response.content
    case = response.json()
    assert case["assignee"] == "reviewer2" and case["state"] == "submitted"
    told = Notification.objects.filter(case=row(case), message=notify.MESSAGES["assign"])
    assert {n.user.username for n in told} == {"reviewer2"}

    # reviewer2 holds the case: the lead may not claim it over them nor decide it.
    held = act(reviewer, case, "claim", expect=409)
    assert code(held) == "claim_held" and "杨审核" in held["detail"]
    case = act(reviewer2, case, "claim")
    assert case["state"] == "in_review"
    for action in ("approve", "reject"):
        held = act(reviewer, case, action, expect=409, reason="越权。")
        assert code(held) == "claim_held"
    assert "approve" not in fetch(reviewer, case)["actions"]
    assert fetch(reviewer, case)["version"] == case["version"]

    # Release: the holder or a lead; anyone else is refused.
    not_holder = post(support, f"/api/v1/cases/{case['case_id']}/release")
    assert not_holder.status_code == 403  # support does not review at all
    response = post(reviewer2, f"/api/v1/cases/{case['case_id']}/release")
    assert response.status_code == 200 and response.json()["assignee"] is None
    case = act(reviewer, response.json(), "claim")
    response = post(reviewer2, f"/api/v1/cases/{case['case_id']}/release")
    assert response.status_code == 409 and code(response.json()) == "not_claim_holder"
    case = act(reviewer, case, "approve", reason_template="evidence_consistent")
    assert case["state"] == "approved" and case["assignee"] == "reviewer"
    actions = list(
        AuditRecord.objects.filter(action__in=["case.assign", "case.release"]).values_list(
            "action", "actor_username"
        )
    )
    assert actions == [("case.assign", "reviewer"), ("case.release", "reviewer2")]


# --- every transition is recorded and told ----------------------------------------------------------------


def test_every_transition_is_audited_and_notified(people, valid_invoice):
    clerk, support, reviewer = people["clerk"], people["support"], people["reviewer"]
    number, kept, _receipt = issue_and_lose(clerk, valid_invoice)
    case = open_case(clerk, claim_for(number, kept["issued_on"]))
    upload(clerk, case, "contract", "合同.pdf", pdf_named("trail"))
    trail = Trail(case["case_id"])

    case = act(clerk, fetch(clerk, case), "submit")
    trail.step("submit", "clerk", {"reviewer"})  # nobody holds it yet: the lead reviewers
    case = act(support, case, "request-info", body="请补充银行回单。", items=["银行回单"])
    trail.step("request_info", "support", {"clerk"}, reason="请补充银行回单。")
    response = post(clerk, f"/api/v1/cases/{case['case_id']}/messages", {"body": "回单见附件，稍后上传。"})
    assert response.status_code == 201
    case = response.json()
    assert case["state"] == "in_review"
    # The timeline and the audit trail keep the note in the site's language: they are a record.
    with translation.override(django_settings.LANGUAGE_CODE):
        answered = gettext("Answered with a message.")
    assert answered != "Answered with a message."
    trail.step("answer", "clerk", {"reviewer", "support"}, reason=answered)
    case = act(reviewer, case, "claim")
    trail.mark()  # taking over an in_review case is not news for the merchant
    case = act(reviewer, case, "reject", reason="请补充银行回单。")
    trail.step("reject", "reviewer", {"clerk"}, reason="请补充银行回单。")
    case = act(clerk, fetch(clerk, case), "resubmit")
    trail.step("resubmit", "clerk", {"reviewer"})
    case = act(reviewer, case, "claim")
    trail.step("claim", "reviewer", {"clerk"})
    approval = in_site_language(APPROVE_REASONS["evidence_consistent"])
    case = act(reviewer, case, "approve", reason_template="evidence_consistent")
    trail.step("approve", "reviewer", {"clerk"}, reason=approval)
    case = act(reviewer, case, "resolve", remedy="restore")["case"]
    trail.step("resolve", "reviewer", {"clerk"})
    case = act(clerk, fetch(clerk, case), "reopen", reason="买方名称不对。")
    trail.step("reopen", "clerk", {"reviewer"}, reason="买方名称不对。")
    case = act(reviewer, case, "reject", reason_template="already_present")
    trail.step("reject", "reviewer", {"clerk"}, reason=in_site_language(REJECT_REASONS["already_present"]))


def test_notifications_render_in_the_readers_language(people, valid_invoice):
    number, kept, _receipt = issue_and_lose(people["clerk"], valid_invoice)
    case = submitted_case(people["clerk"], claim_for(number, kept["issued_on"]))
    note = Notification.objects.get(case=row(case), user__username="reviewer")
    from django.utils import translation

    with translation.override("en"):
        assert notify.render(note) == f"Case {case['acceptance_no']} was submitted."
    with translation.override("zh-hans"):
        assert case["acceptance_no"] in notify.render(note)


# --- automatic evidence checks ---------------------------------------------------------------------------


def test_an_einvoice_file_that_matches_the_claim_is_verified(people):
    clerk = people["clerk"]
    case = open_case(clerk, EINVOICE_CLAIM)
    checked = upload(clerk, case, "e_invoice", "发票.xml", (EINVOICES / "ordinary_utf8.xml").read_bytes())
    assert checked["check"]["status"] == "verified", checked
    assert checked["content_kind"] == "xml"
    stored = row(case).evidence.get()
    assert stored.check_details["differences"] == []


def test_an_einvoice_file_that_contradicts_the_claim_is_a_mismatch(people):
    clerk = people["clerk"]
    case = open_case(
        clerk,
        {**EINVOICE_CLAIM, "total_with_tax": "1060.00", "total_amount": "1000.00", "total_tax": "60.00"},
    )
    checked = upload(clerk, case, "e_invoice", "发票.xml", (EINVOICES / "ordinary_utf8.xml").read_bytes())
    assert checked["check"]["status"] == "mismatch", checked
    differences = row(case).evidence.get().check_details["differences"]
    assert {d["field"] for d in differences} == {"total_with_tax_fen", "total_amount_fen", "total_tax_fen"}
    assert {"claimed": "1060.00", "found": "1399.00"}.items() <= next(
        d for d in differences if d["field"] == "total_with_tax_fen"
    ).items()


def test_an_einvoice_file_another_seller_issued_is_a_mismatch(people):
    """Every claimed field matches, but the file's seller is not the merchant whose case it is."""
    clerk = people["clerk"]
    case = open_case(clerk, EINVOICE_CLAIM)
    xml = (EINVOICES / "ordinary_utf8.xml").read_bytes().replace(b"91110108MA01ABCD84", b"91110105MA01EFGH56")
    checked = upload(clerk, case, "e_invoice", "发票.xml", xml)
    assert checked["check"]["status"] == "mismatch", checked
    assert row(case).evidence.get().check_details["differences"] == [
        {"field": "seller_tax_id", "claimed": "91110108MA01ABCD84", "found": "91110105MA01EFGH56"}
    ]
    assert checked["check"]["message"] == "电子发票文件与申请内容不一致的项目：销售方纳税人识别号。"


def test_a_receipt_the_log_no_longer_proves_fails_and_opens_an_incident(people, valid_invoice):
    clerk = people["clerk"]
    number, kept, receipt = issue_and_lose(clerk, valid_invoice)
    entry = LogEntry.objects.get(invoice_number=number)
    altered = bytes(entry.body).replace(b'"1000.00"', b'"10.00"', 1)
    assert altered != bytes(entry.body)
    with connection.cursor() as cursor:  # what an intruder with database access would do
        cursor.execute("UPDATE ledger_logentry SET body = %s WHERE id = %s", [altered, entry.pk])
    incidents = IntegrityIncident.objects.count()

    case = open_case(clerk, claim_for(number, kept["issued_on"]))
    checked = upload(clerk, case, "system_receipt", "回执.json", receipt)
    assert checked["check"]["status"] == "failed", checked
    assert IntegrityIncident.objects.count() == incidents + 1
    incident = IntegrityIncident.objects.order_by("-pk").first()
    assert incident.merchant.uscc == "91110108MA01ABCD84" and incident.state == "open"
    assert str(incident.pk) in checked["check"]["message"]
    # The same receipt again finds the open incident rather than opening another.
    upload(clerk, case, "other", "回执副本.json", receipt.replace(b"{", b"{ ", 1))
    assert IntegrityIncident.objects.count() == incidents + 1
