"""Issue 13, findings 1 and 2, reproduced as the outside attacker did them (SQLite and PostgreSQL).

1. A remedy ignored the claim: a ¥106.00 claim restored as a ¥100,000,000.00 invoice to another
   buyer with a back date; a ¥10.00 claim re-issued as a ¥4,999,998.80 专票 to a shell buyer.
   Now the reviewer sends the remedy and a note only; what is written is the merchant's ledger
   entry or the claim as reviewed.
2. Another merchant's number could be restored: merchant A restored merchant B's issued number.
   Now an outgoing number is the merchant's whose segment covers it, or the one a legacy number
   is registered to, and the register's unique constraint keeps one number under one merchant.

Also: a claim that lacks what the invoice needs is refused, completed by the merchant (补正)
and approved again; ``ledger verify`` reports a remedy that is not its claim and a number under
two merchants.
"""

from __future__ import annotations

import importlib
import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from fapiao.accounts.models import Merchant
from fapiao.invoices import outgoing
from fapiao.invoices.models import Invoice, OutgoingNumber
from fapiao.ledger.models import LogEntry
from fapiao.ledger.services import append_entry
from fapiao.ledger.verify import verify_ledger
from fapiao.platform.uow import write
from fapiao.recovery.models import Case
from tests.integration.case_helpers import act, claim_for, complete_claim, fetch, pdf_named, post, upload

pytestmark = pytest.mark.django_db(transaction=True)

A = "91110108MA01ABCD84"  # the clerk's merchant
B = "91110105MA01EFGH56"  # clerk2's
SHELL = {"name": "北京空壳贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"}


@pytest.fixture
def people(client_for: Any, settings: Any, tmp_path: Any) -> dict[str, Any]:
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"
    return {name: client_for(name) for name in ("clerk", "clerk2", "reviewer", "reviewer2", "support")}


def approved(people: dict[str, Any], claim: dict[str, Any], clerk: str = "clerk") -> dict[str, Any]:
    """Opened, evidenced, submitted, claimed and approved by one reviewer (below the threshold)."""
    merchant_side, reviewer = people[clerk], people["reviewer"]
    response = post(merchant_side, "/api/v1/cases", claim)
    assert response.status_code == 201, response.content.decode()
    case = response.json()
    upload(merchant_side, case, "contract", "合同.pdf", pdf_named(f"contract {case['case_id']}"))
    case = act(merchant_side, fetch(merchant_side, case), "submit")
    case = act(reviewer, act(reviewer, case, "claim"), "approve", reason_template="evidence_consistent")
    assert case["state"] == "approved" and case["second_approver"] is None
    return case


def code(body: dict[str, Any]) -> str:
    return str(body["type"]).rsplit("/", 1)[-1]


def errors_of(report: Any) -> list[Any]:
    return [f for f in report.all_findings() if f.severity == "error"]


# --- 1. A remedy writes the claim, not what the reviewer sends -------------------------------------------


def test_a_106_yuan_claim_cannot_be_restored_as_100_million(people):
    claim = complete_claim(
        "011001900111-00000106",
        "2025-11-03",
        total_with_tax="106.00",
        total_amount="100.00",
        total_tax="6.00",
    )
    case = approved(people, claim)
    attack = {
        "issued_on": "2020-01-02",  # a back date
        "confirm": True,
        "kind": "ordinary",
        "buyer": {"name": SHELL["name"]},
        "lines": [
            {"name": "*咨询服务*咨询费", "quantity": "1", "unit_price": "94339622.64", "tax_rate": "0.06"}
        ],
    }
    refused = act(people["reviewer"], case, "resolve", expect=422, remedy="restore", invoice=attack)
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [("invoice", "unknown_field")]
    assert not Invoice.objects.filter(number=claim["number"]).exists()
    assert not LogEntry.objects.filter(kind="restore").exists()
    assert fetch(people["reviewer"], case)["state"] == "approved"

    # What a restore writes is the claim: ¥106.00, the claimed buyer, the claimed date.
    result = act(people["reviewer"], case, "resolve", remedy="restore", note="存根联与合同一致。")
    invoice = result["invoice"]
    assert (invoice["number"], invoice["total_with_tax"], invoice["issued_on"]) == (
        claim["number"],
        "106.00",
        "2025-11-03",
    )
    assert invoice["buyer"]["name"] == claim["buyer"]["name"] and invoice["kind"] == "ordinary"
    assert result["case"]["timeline"][-1]["reason"] == "存根联与合同一致。"
    assert OutgoingNumber.objects.get(number=claim["number"]).merchant.uscc == A
    report = verify_ledger()
    assert errors_of(report) == []


def test_a_10_yuan_claim_cannot_be_reissued_as_a_5_million_special_invoice(people):
    claim = complete_claim(
        "011001900111-00000010",
        "2025-11-03",
        total_with_tax="10.00",
        total_amount="9.43",
        total_tax="0.57",
    )
    case = approved(people, claim)
    attack = {
        "kind": "special",
        "buyer": SHELL,
        "lines": [
            {"name": "*咨询服务*咨询费", "quantity": "1", "unit_price": "4424777.70", "tax_rate": "0.13"}
        ],
    }
    refused = act(people["reviewer"], case, "resolve", expect=422, remedy="reissue", invoice=attack)
    assert code(refused) == "validation_failed" and refused["errors"][0]["field"] == "invoice"
    assert not LogEntry.objects.filter(kind="reissue").exists()

    result = act(people["reviewer"], case, "resolve", remedy="reissue")
    invoice = result["invoice"]
    assert (invoice["kind"], invoice["total_with_tax"], invoice["buyer"]["name"]) == (
        "ordinary",
        "10.00",
        claim["buyer"]["name"],
    )
    assert (
        invoice["issued_on"] == timezone.localdate().isoformat()
    )  # a re-issue is dated the day it is written
    assert invoice["number"] != claim["number"] and invoice["origin"] == "reissued"
    assert errors_of(verify_ledger()) == []


def test_a_claim_lacking_what_the_invoice_needs_is_completed_and_approved_again(people):
    """No kind, no amount and tax: refused; the reviewer asks (补正), the merchant completes the
    claim, its approvals lapse, and the completed claim is approved again before anything is written."""
    reviewer, clerk = people["reviewer"], people["clerk"]
    number = "011001900111-00000777"
    case = approved(people, claim_for(number, "2025-11-03"))
    refused = act(reviewer, case, "resolve", expect=409, remedy="restore")
    assert code(refused) == "claim_incomplete"
    assert {e["field"] for e in refused["errors"]} == {"claim.kind", "claim.lines"}
    # The approved claim cannot be amended behind the reviewer's back …
    patched = clerk.patch(
        f"/api/v1/cases/{case['case_id']}",
        data={"version": case["version"], **complete_claim(number, "2025-11-03")},
        content_type="application/json",
    )
    assert patched.status_code == 409 and code(patched.json()) == "case_not_editable"
    # … it is asked for, and the request sets the approvals aside.
    case = act(reviewer, case, "request-info", body="请补充发票种类、金额和税额。", items=["完整的申请内容"])
    assert (case["state"], case["first_approver"]) == ("needs_info", None)
    patched = clerk.patch(
        f"/api/v1/cases/{case['case_id']}",
        data={"version": case["version"], **complete_claim(number, "2025-11-03")},
        content_type="application/json",
    )
    assert patched.status_code == 200, patched.content.decode()
    case = patched.json()
    assert (case["state"], case["first_approver"], case["claim"]["kind"]) == ("in_review", None, "ordinary")
    act(reviewer, case, "resolve", expect=409, remedy="restore")  # not approved: no remedy
    case = act(reviewer, case, "approve", reason_template="evidence_consistent")
    invoice = act(reviewer, case, "resolve", remedy="restore")["invoice"]
    assert invoice["total_with_tax"] == "1060.00"


def test_the_second_review_threshold_is_the_claimed_amount(people, settings):
    """Above the threshold two reviewers approve, and what is written is what they approved."""
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = 100_000  # ¥1,000.00; the claim is ¥1,060.00
    reviewer, reviewer2, clerk = people["reviewer"], people["reviewer2"], people["clerk"]
    response = post(clerk, "/api/v1/cases", complete_claim("011001900111-00000999", "2025-11-03"))
    case = act(clerk, response.json(), "submit")
    case = act(reviewer, act(reviewer, case, "claim"), "approve", reason_template="evidence_consistent")
    assert case["state"] == "awaiting_second"
    act(reviewer, case, "resolve", expect=409, remedy="restore")
    case = act(reviewer2, act(reviewer2, case, "claim"), "approve", reason="一致。")
    invoice = act(reviewer2, case, "resolve", remedy="restore")["invoice"]
    assert invoice["total_with_tax"] == "1060.00"


# --- 2. An outgoing number is one merchant's ----------------------------------------------------------------


def test_merchant_a_cannot_restore_merchant_b_s_issued_number(people, valid_invoice):
    issued = post(people["clerk2"], "/api/v1/invoices", valid_invoice).json()
    number = issued["number"]
    assert number == f"{timezone.localdate().year % 100:02d}110100000001000001"  # B's first number
    case = approved(people, complete_claim(number, issued["issued_on"]))
    refused = act(people["reviewer"], case, "resolve", expect=409, remedy="restore")
    assert code(refused) == "number_of_another_merchant" and number in refused["detail"]
    refused = act(people["reviewer"], case, "resolve", expect=409, remedy="reissue")
    assert code(refused) == "number_of_another_merchant"
    assert list(Invoice.objects.filter(number=number).values_list("merchant__uscc", flat=True)) == [B]
    assert OutgoingNumber.objects.get(number=number).merchant.uscc == B
    assert fetch(people["reviewer"], case)["state"] == "approved"


def test_a_number_outside_the_merchant_s_segments_is_not_restorable(people):
    number = f"{timezone.localdate().year % 100:02d}110{999_999_999_999_123:015d}"  # nobody's segment
    case = approved(people, complete_claim(number, timezone.localdate().isoformat()))
    refused = act(people["reviewer"], case, "resolve", expect=409, remedy="restore")
    assert code(refused) == "number_never_issued"  # no segment ever handed it out


def test_a_legacy_number_is_registered_to_the_first_merchant_that_restores_it(people):
    number = "011001900111-00000001"
    first = approved(people, complete_claim(number, "2025-03-05"))
    act(people["reviewer"], first, "resolve", remedy="restore")
    assert OutgoingNumber.objects.get(number=number).merchant.uscc == A

    second = approved(people, complete_claim(number, "2025-03-05"), clerk="clerk2")
    refused = act(people["reviewer"], second, "resolve", expect=409, remedy="restore")
    assert code(refused) == "number_of_another_merchant"
    assert list(Invoice.objects.filter(number=number).values_list("merchant__uscc", flat=True)) == [A]


def test_the_register_s_constraint_not_the_check_keeps_a_number_to_one_merchant(demo, monkeypatch):
    """Two restores of one legacy number at the same moment: both pass the check, one insert wins."""
    a, b = Merchant.objects.get(uscc=A), Merchant.objects.get(uscc=B)
    number = "011001900111-00000002"
    now = timezone.now()
    write(
        lambda unit: outgoing.register_number(
            unit, merchant=a, number=number, at=now, existing=True, defer=False
        )
    )
    monkeypatch.setattr(outgoing, "registered_holder", lambda _number: None)  # B's check saw nothing yet

    def race(unit: Any) -> str:
        with pytest.raises(outgoing.NumberOfAnotherMerchantError):
            outgoing.register_number(unit, merchant=b, number=number, at=now, existing=True, defer=False)
        return str(OutgoingNumber.objects.get(number=number).merchant_id)  # the transaction still works

    assert write(race) == str(a.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        OutgoingNumber.objects.create(number=number, merchant=b, registered_at=now)


def test_every_outgoing_invoice_registers_its_number(people, valid_invoice):
    blue = post(people["clerk"], "/api/v1/invoices", valid_invoice).json()["number"]
    red = post(people["clerk"], f"/api/v1/invoices/{blue}/red-letter", {"full": True}).json()["number"]
    owners = dict(OutgoingNumber.objects.values_list("number", "merchant__uscc"))
    assert owners == {blue: A, red: A}


# --- ledger verify ------------------------------------------------------------------------------------------


def test_verify_reports_a_number_under_two_merchants(people, valid_invoice):
    """What the old restore left behind: B's number also in A's books (written around the services)."""
    number = post(people["clerk2"], "/api/v1/invoices", valid_invoice).json()["number"]
    row = Invoice.objects.get(number=number)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE invoices_invoice SET merchant_id = %s WHERE id = %s",
            [Merchant.objects.get(uscc=A).pk, row.pk],
        )
    findings = [f for f in verify_ledger().all_findings() if f.code == "number_owner"]
    assert [(f.log, f.number, f.params.get("other")) for f in findings] == [(A, number, B)]
    OutgoingNumber.objects.filter(number=number).delete()
    findings = [f for f in verify_ledger().all_findings() if f.code == "number_owner"]
    assert [(f.log, f.number, f.variant) for f in findings] == [(A, number, "unregistered")]


def test_verify_compares_every_remedy_entry_with_its_case_s_claim(people):
    case = approved(people, complete_claim("011001900111-00000005", "2025-03-05"))
    act(people["reviewer"], case, "resolve", remedy="restore")
    assert [f for f in verify_ledger().all_findings() if f.code == "remedy_mismatch"] == []

    # A restore entry for the same case that is not its claim (as the old remedy wrote them).
    merchant = Merchant.objects.get(uscc=A)
    entry = LogEntry.objects.get(kind="restore")
    document = json.loads(bytes(entry.body))["invoice"]
    forged = {**document, "number": "011001900111-00000006", "total_with_tax": "100000000.00"}
    write(
        lambda unit: append_entry(
            unit, merchant=merchant, kind="restore", invoice=forged, ref=case["case_id"]
        )
    )
    write(
        lambda unit: append_entry(
            unit, merchant=merchant, kind="reissue", invoice=document, ref="no-such-case"
        )
    )
    findings = sorted(
        (f for f in verify_ledger().all_findings() if f.code == "remedy_mismatch"), key=lambda f: f.index or 0
    )
    assert [(f.variant, f.params["case"]) for f in findings] == [
        ("", case["acceptance_no"]),
        ("no_case", "no-such-case"),
    ]
    assert "number" in findings[0].params["fields"] and "total_with_tax_fen" in findings[0].params["fields"]
    assert Case.objects.get(uid=case["case_id"]).state == "resolved"


def test_the_migration_registers_the_invoices_already_stored(people, valid_invoice):
    """Upgrading a database that has invoices (and the old attack's duplicate): every outgoing number
    is registered, and a number under two merchants goes to the merchant whose segment covers it."""
    mine = post(people["clerk"], "/api/v1/invoices", valid_invoice).json()["number"]
    theirs = post(people["clerk2"], "/api/v1/invoices", valid_invoice).json()["number"]
    copied = Invoice.objects.get(number=theirs)
    copied.pk, copied.merchant, copied.uid = None, Merchant.objects.get(uscc=A), uuid.uuid4()
    copied.save()  # what the old restore wrote: B's number in A's books …
    first = Invoice.objects.order_by("pk").values_list("pk", flat=True).first()
    with connection.cursor() as cursor:  # … and, to test the rule, the older of the two rows
        cursor.execute("UPDATE invoices_invoice SET id = %s WHERE id = %s", [first - 1000, copied.pk])
        cursor.execute("DELETE FROM invoices_outgoingnumber")
    migration = importlib.import_module("fapiao.invoices.migrations.0004_outgoing_number")
    migration.register_existing(django_apps, SimpleNamespace(connection=connection))
    owners = dict(OutgoingNumber.objects.values_list("number", "merchant__uscc"))
    assert owners == {mine: A, theirs: B}


def test_red_letter_honours_the_ledger_switch_like_issue(people, valid_invoice, settings):
    """One service creates every invoice row: with the ledger off (benchmarks only) issue and
    red-letter alike append no entry; both still register their numbers."""
    settings.FAPIAO_LEDGER_ENABLED = False
    blue = post(people["clerk"], "/api/v1/invoices", valid_invoice).json()["number"]
    red = post(people["clerk"], f"/api/v1/invoices/{blue}/red-letter", {"full": True}).json()["number"]
    assert not LogEntry.objects.exists()
    assert list(Invoice.objects.filter(number__in=[blue, red]).values_list("ledger_seq", flat=True)) == [
        None,
        None,
    ]
    assert set(OutgoingNumber.objects.values_list("number", flat=True)) == {blue, red}
