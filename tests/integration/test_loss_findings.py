"""Loss reaches the merchant (issue 14): what ``ledger verify`` finds wrong with a merchant's invoices —
a row deleted, a row altered behind the server's back — is flagged on their pages, warned about in
月度汇总, notified and mailed, and one click opens a case prefilled from the ledger whose remedy
(restore for a missing row, repair for an altered one) clears the flag and leaves verify clean."""

from __future__ import annotations

import io
import re
from typing import Any

import pdfplumber
import pytest
from django.core import mail
from django.db import connection
from django.test import Client

from fapiao.audit.models import AuditRecord
from fapiao.invoices.models import Invoice, InvoiceFinding
from fapiao.ledger.checks import check_and_report
from fapiao.ledger.verify import verify_ledger
from fapiao.ledger.verify_runs import record_run
from fapiao.recovery.models import Case, Evidence, Notification
from tests.integration.case_helpers import act, fetch, lose_invoice, post
from tests.integration.test_ledger_verify import run_command

pytestmark = pytest.mark.django_db(transaction=True)

WRONG_BUYER = "改动后的买方有限公司"


def _issue(client: Client, body: dict[str, Any]) -> str:
    response = post(client, "/api/v1/invoices", body)
    assert response.status_code == 201, response.content
    return str(response.json()["number"])


def alter_invoice(number: str) -> None:
    """A bad migration: the buyer's name, the total and a line's amount changed in the rows, not in
    the ledger (¥1,060.00 → the line says ¥1,500.00 + ¥60.00)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE invoices_invoice SET buyer_name = %s, total_with_tax = total_with_tax + 100000 "
            "WHERE number = %s",
            [WRONG_BUYER, number],
        )
        cursor.execute(
            "UPDATE invoices_invoiceline SET amount = amount + 50000 "
            "WHERE invoice_id = (SELECT id FROM invoices_invoice WHERE number = %s)",
            [number],
        )


def pdf_text(data: bytes) -> str:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return "\n".join(page.extract_text() or "" for page in pdf.pages)


def verify_and_record() -> Any:
    report = verify_ledger()
    record_run(report, merchant=None, source="cli")
    return report


def browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def damaged(client_for: Any, valid_invoice: dict[str, Any], settings: Any, tmp_path: Any) -> dict[str, Any]:
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"
    settings.FAPIAO_PUBLIC_URL = "https://fapiao.example.cn"
    clerk = client_for("clerk")
    lost = _issue(clerk, valid_invoice)
    altered = _issue(clerk, valid_invoice)
    kept = _issue(clerk, valid_invoice)
    lose_invoice(lost)
    alter_invoice(altered)
    mail.outbox.clear()
    report = verify_and_record()
    assert not report.ok
    return {"lost": lost, "altered": altered, "kept": kept}


def test_verify_records_findings_and_tells_the_merchant(
    damaged: dict[str, Any], demo: dict[str, Any]
) -> None:
    findings = {f.number: f for f in InvoiceFinding.objects.filter(cleared_at=None)}
    assert set(findings) == {damaged["lost"], damaged["altered"]}
    assert findings[damaged["lost"]].kind == "missing"
    assert findings[damaged["lost"]].code == "entry_without_invoice"
    altered = findings[damaged["altered"]]
    assert altered.kind == "altered" and altered.ledger["buyer_name"] != WRONG_BUYER
    assert altered.row["buyer_name"] == WRONG_BUYER
    assert altered.incident is not None and altered.incident.merchant_id == demo["clerk"].merchant_id

    # Every user of the merchant is told, in the app and by mail, with a link to the invoice.
    told = Notification.objects.filter(params__number=damaged["lost"])
    assert {n.user.username for n in told} >= {"clerk"}
    assert all(n.user.merchant_id == demo["clerk"].merchant_id for n in told)
    messages = [m for m in mail.outbox if damaged["lost"] in m.subject]
    assert messages, [m.subject for m in mail.outbox]
    assert f"https://fapiao.example.cn/invoices/{damaged['lost']}/" in messages[0].body
    assert "缺失" in messages[0].subject and "账本" in messages[0].body

    # Running verify again over the same damage finds the same findings: nobody is told twice.
    before = Notification.objects.count()
    verify_and_record()
    assert InvoiceFinding.objects.filter(cleared_at=None).count() == 2
    assert Notification.objects.count() == before


def test_the_merchant_sees_the_flags_the_ledger_values_and_the_totals_warning(
    damaged: dict[str, Any], demo: dict[str, Any], client_for: Any
) -> None:
    clerk = browser(demo["clerk"])
    client_for_clerk = client_for("clerk")
    listing = clerk.get("/invoices/").content.decode()
    assert "缺失" in listing and "与账本不一致" in listing
    assert damaged["lost"] in listing  # the missing invoice is listed from its ledger entry
    altered_row = re.search(r'<tr class="[^"]*flag-altered[^"]*">(.*?)</tr>', listing, re.S)
    assert altered_row and damaged["altered"] in altered_row.group(1)
    assert "state-normal" not in altered_row.group(1)  # never shown as 正常

    page = clerk.get(f"/invoices/{damaged['altered']}/").content.decode()
    assert "与账本不一致" in page and WRONG_BUYER in page and "北京" in page  # row and ledger side by side
    assert "申请修复" in page
    missing = clerk.get(f"/invoices/{damaged['lost']}/")
    assert missing.status_code == 200
    assert "缺失" in missing.content.decode() and "申请恢复" in missing.content.decode()

    printed = clerk.get(f"/invoices/{damaged['altered']}/print/").content.decode()
    assert 'class="ledger-mark"' in printed and "与账本不一致" in printed
    assert 'class="ledger-mark"' not in clerk.get(f"/invoices/{damaged['kept']}/print/").content.decode()
    pdf = clerk.get(f"/invoices/{damaged['altered']}/document.pdf")
    assert pdf.status_code == 200 and "【与账本不一致】请勿交付" in pdf_text(pdf.content)
    assert "与账本不一致" not in pdf_text(clerk.get(f"/invoices/{damaged['kept']}/document.pdf").content)
    sent = post(
        client_for_clerk, f"/api/v1/invoices/{damaged['altered']}/deliveries", {"to": "buyer@example.cn"}
    )
    assert sent.status_code == 409 and sent.json()["type"].endswith("invoice_flagged")

    totals = clerk.get("/totals/").content.decode()
    assert "totals-warning" in totals and damaged["lost"] in totals and damaged["altered"] in totals
    warning = totals[
        totals.index("totals-warning") : totals.index("</section>", totals.index("totals-warning"))
    ]
    assert "未计入" in warning and "¥1,560.00" in warning  # what the figures count of the altered one

    export = clerk.get("/invoices/?format=csv").content.decode("utf-8-sig")
    header, *rows = export.splitlines()
    assert "账本核对" in header
    flagged = {row.split(",")[0]: row for row in rows}
    assert flagged[damaged["altered"]].endswith("与账本不一致")
    assert flagged[damaged["lost"]].endswith("缺失")
    assert not flagged[damaged["kept"]].endswith(("缺失", "与账本不一致"))


def test_another_merchant_never_sees_these_findings(damaged: dict[str, Any], demo: dict[str, Any]) -> None:
    other = next(
        u for u in demo.values() if u.is_merchant_user and u.merchant_id != demo["clerk"].merchant_id
    )
    client = browser(other)
    assert damaged["lost"] not in client.get("/invoices/").content.decode()
    assert client.get(f"/invoices/{damaged['lost']}/").status_code == 404
    assert client.post(f"/cases/from-finding/{damaged['lost']}/").status_code == 404
    assert not Notification.objects.filter(user=other).exists()
    assert "totals-warning" not in client.get("/totals/").content.decode()


def _resolve(client_for: Any, case: Case, remedy: str) -> dict[str, Any]:
    clerk, reviewer = client_for("clerk"), client_for("reviewer")
    body = act(clerk, fetch(clerk, {"case_id": str(case.uid)}), "submit")
    body = act(reviewer, fetch(reviewer, body), "claim")
    body = act(reviewer, body, "approve", reason_template="receipt_verified")
    return act(reviewer, body, "resolve", remedy=remedy)


def test_one_click_opens_a_prefilled_case_and_the_remedies_clear_the_flags(
    damaged: dict[str, Any], demo: dict[str, Any], client_for: Any, settings: Any
) -> None:
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    clerk = browser(demo["clerk"])
    cases = {}
    for number in (damaged["lost"], damaged["altered"]):
        response = clerk.post(f"/cases/from-finding/{number}/")
        assert response.status_code == 302, response.content
        case = Case.objects.get(claimed_number=number)
        assert response["Location"].endswith(f"/cases/{case.uid}/")
        ledger = InvoiceFinding.objects.get(number=number, cleared_at=None).ledger
        assert case.state == "draft" and case.claimed_total_with_tax == ledger["total_with_tax"]
        assert case.claimed_buyer_name == ledger["buyer_name"]
        files = {e.evidence_type: e for e in Evidence.objects.filter(case=case)}
        assert files["system_receipt"].check_status == "verified"
        assert "ledger-finding" in files["other"].filename
        # A second click finds the same case.
        again = clerk.post(f"/cases/from-finding/{number}/")
        assert again["Location"] == response["Location"]
        cases[number] = case
    assert Case.objects.count() == 2
    # The altered invoice's case speaks of a repair, the deleted one's of a loss.
    altered_page = clerk.get(f"/cases/{cases[damaged['altered']].uid}/").content.decode()
    assert "与账本不一致的发票" in altered_page and "缺失的发票" not in altered_page
    lost_page = clerk.get(f"/cases/{cases[damaged['lost']].uid}/").content.decode()
    assert "缺失的发票" in lost_page and "与账本不一致的发票" not in lost_page

    restored = _resolve(client_for, cases[damaged["lost"]], "restore")
    assert restored["case"]["state"] == "resolved"
    repaired = _resolve(client_for, cases[damaged["altered"]], "repair")
    assert repaired["case"]["state"] == "resolved"
    invoice = Invoice.objects.get(number=damaged["altered"])
    assert invoice.buyer_name != WRONG_BUYER
    # Resolved and cleared, the repair case still says what it was about, and asks the right check.
    altered_page = clerk.get(f"/cases/{cases[damaged['altered']].uid}/").content.decode()
    assert "与账本不一致的发票" in altered_page and "您开具的一致" in altered_page

    audit = AuditRecord.objects.get(action="invoice.repair")
    assert (
        cases[damaged["altered"]].acceptance_no in audit.note
        or Case.objects.get(pk=cases[damaged["altered"]].pk).acceptance_no in audit.note
    )
    assert not InvoiceFinding.objects.filter(cleared_at=None).exists()
    assert set(InvoiceFinding.objects.values_list("cleared_how", flat=True)) == {"restore", "repair"}
    report = verify_and_record()
    assert report.ok, [(f.code, f.params) for f in report.all_findings()]
    page = clerk.get(f"/invoices/{damaged['altered']}/").content.decode()
    assert "与账本不一致" not in page
    assert "与账本不一致" not in pdf_text(clerk.get(f"/invoices/{damaged['altered']}/document.pdf").content)
    assert "totals-warning" not in clerk.get("/totals/").content.decode()


def test_repair_is_refused_where_there_is_nothing_to_repair(
    damaged: dict[str, Any], demo: dict[str, Any], client_for: Any, settings: Any
) -> None:
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    clerk = browser(demo["clerk"])
    clerk.post(f"/cases/from-finding/{damaged['lost']}/")
    case = Case.objects.get(claimed_number=damaged["lost"])
    api, reviewer = client_for("clerk"), client_for("reviewer")
    body = act(api, fetch(api, {"case_id": str(case.uid)}), "submit")
    body = act(reviewer, fetch(reviewer, body), "claim")
    body = act(reviewer, body, "approve", reason_template="receipt_verified")
    refused = act(reviewer, body, "resolve", expect=409, remedy="repair")
    assert str(refused["type"]).rsplit("/", 1)[-1] == "nothing_to_repair"
    assert InvoiceFinding.objects.filter(number=damaged["lost"], cleared_at=None).exists()


def test_the_incidents_page_speaks_chinese_and_operators_act_on_it(
    damaged: dict[str, Any], demo: dict[str, Any]
) -> None:
    operator = browser(demo["operator"])
    home = operator.get("/").content.decode()
    assert 'href="/incidents/"' in home  # the banner links to the incidents page
    listing = operator.get("/incidents/").content.decode()
    incident = InvoiceFinding.objects.get(number=damaged["lost"]).incident
    assert incident is not None
    assert "账本核验未通过" in listing and "账本有记录但发票缺失" in listing and "发票与账本不一致" in listing
    assert demo["clerk"].merchant.name in listing
    page = operator.get(f"/incidents/{incident.pk}/").content.decode()
    assert damaged["lost"] in page and damaged["altered"] in page and "entry_without_invoice" in page

    def act_on(action: str, **extra: Any) -> Any:
        incident.refresh_from_db()
        body = {"action": action, "version": incident.version, **extra}
        return operator.post(f"/incidents/{incident.pk}/act/", body)

    # Notify the merchant: every user of the merchant is told again.
    before = Notification.objects.filter(params__number=damaged["altered"]).count()
    assert act_on("notify").status_code == 302
    assert Notification.objects.filter(params__number=damaged["altered"]).count() > before

    # Open a case on the merchant's behalf: a draft prefilled from the ledger; the merchant is told.
    assert act_on("open_case", number=damaged["altered"]).status_code == 302
    case = Case.objects.get(claimed_number=damaged["altered"])
    assert case.state == "draft" and case.merchant_id == demo["clerk"].merchant_id
    assert Notification.objects.filter(case=case, user=demo["clerk"]).exists()
    assert AuditRecord.objects.filter(action="finding.open_case").exists()
    assert AuditRecord.objects.filter(action="incident.notify_merchant").exists()

    # Resolve needs an acknowledgement first, then a note.
    refused = act_on("resolve", note="已处理")
    assert refused.status_code == 200 and "请先受理完整性事件" in refused.content.decode()
    assert act_on("acknowledge").status_code == 302
    empty = act_on("resolve", note="  ")
    assert empty.status_code == 200
    incident.refresh_from_db()
    assert incident.state == "acknowledged"
    assert act_on("resolve", note="迁移脚本误删两张发票，已由商户申请恢复。").status_code == 302
    incident.refresh_from_db()
    assert incident.state == "resolved" and incident.resolved_by == demo["operator"]
    assert "已解决</span>" in operator.get(f"/incidents/{incident.pk}/").content.decode()


@pytest.mark.parametrize("username", ["clerk", "madmin", "support", "reviewer", "auditor"])
def test_only_operators_act_on_incidents(
    damaged: dict[str, Any], demo: dict[str, Any], username: str
) -> None:
    incident = InvoiceFinding.objects.get(number=damaged["lost"]).incident
    assert incident is not None
    client = browser(demo[username])
    assert client.get("/incidents/").status_code == 403
    assert client.get(f"/incidents/{incident.pk}/").status_code == 403
    for action in ("acknowledge", "notify", "open_case"):
        body = {"action": action, "version": incident.version, "number": damaged["lost"]}
        assert client.post(f"/incidents/{incident.pk}/act/", body).status_code == 403
    incident.refresh_from_db()
    assert incident.state == "open" and not Case.objects.exists()


def test_staff_open_no_case_through_the_merchants_button(
    damaged: dict[str, Any], demo: dict[str, Any]
) -> None:
    for username in ("support", "reviewer", "operator"):
        response = browser(demo[username]).post(f"/cases/from-finding/{damaged['lost']}/")
        assert response.status_code == 403
    assert not Case.objects.exists()


def test_findings_are_named_in_chinese_by_the_cli_and_the_verification_page(
    damaged: dict[str, Any], demo: dict[str, Any]
) -> None:
    status, out, _err = run_command()
    assert status == 1
    assert "账本有记录但发票缺失 [entry_without_invoice]" in out
    assert "发票与账本不一致 [invoice_mismatch]" in out
    _status, english, _err = run_command("--lang", "en")
    assert "In the ledger but the invoice is missing [entry_without_invoice]" in english
    page = browser(demo["operator"]).post("/ledger/verify/", {}).content.decode()
    assert "<strong>账本有记录但发票缺失</strong>" in page and "<strong>发票与账本不一致</strong>" in page


def test_a_receipt_check_finds_a_missing_or_altered_row_too(
    client_for: Any, valid_invoice: dict[str, Any], demo: dict[str, Any], settings: Any, tmp_path: Any
) -> None:
    """No verify run: the merchant's receipts, checked (command line, or attached to a case), find it."""
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"
    clerk = client_for("clerk")
    receipts = {}
    for _ in range(3):
        response = post(clerk, "/api/v1/invoices", valid_invoice)
        receipts[response.json()["number"]] = response.json()["receipt"]
    lost, altered, kept = list(receipts)
    lose_invoice(lost)
    alter_invoice(altered)
    for number in (lost, altered, kept):
        assert check_and_report(receipts[number]).status == "proven"  # the log itself is intact
    found = {f.number: f.kind for f in InvoiceFinding.objects.filter(cleared_at=None)}
    assert found == {lost: "missing", altered: "altered"}
    assert Notification.objects.filter(user=demo["clerk"], params__number=lost).count() == 1
    check_and_report(receipts[lost])  # checked again: the same finding, nobody told twice
    assert Notification.objects.filter(user=demo["clerk"], params__number=lost).count() == 1


def test_a_missing_red_invoice_is_one_click_from_being_restored(
    client_for: Any, valid_invoice: dict[str, Any], demo: dict[str, Any], settings: Any, tmp_path: Any
) -> None:
    """A red invoice's amounts are negative: its prefilled claim says so, and restore brings it back
    against its blue invoice (re-issue is refused: a red invoice is never issued afresh)."""
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    api = client_for("clerk")
    blue = _issue(api, valid_invoice)
    response = post(api, f"/api/v1/invoices/{blue}/red-letter", {"full": True})
    assert response.status_code == 201, response.content
    red = str(response.json()["number"])
    lose_invoice(red)
    assert not verify_and_record().ok

    clerk = browser(demo["clerk"])
    opened = clerk.post(f"/cases/from-finding/{red}/")
    assert opened.status_code == 302, re.sub(r"<[^>]+>|\s+", " ", opened.content.decode())[-1500:]
    case = Case.objects.get(claimed_number=red)
    assert case.claimed_total_with_tax == -106000
    restored = _resolve(client_for, case, "restore")
    assert restored["case"]["state"] == "resolved"
    invoice = Invoice.objects.get(number=red)
    assert invoice.total_with_tax == -106000 and invoice.original is not None
    assert invoice.original.number == blue
    assert Invoice.objects.get(number=blue).state == "fully_red"
    report = verify_and_record()
    assert report.ok, [(f.code, f.params) for f in report.all_findings()]
    assert not InvoiceFinding.objects.filter(cleared_at=None).exists()
