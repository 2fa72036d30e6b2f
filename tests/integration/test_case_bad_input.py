"""Bad input to the case API: a clear message, the right status, and nothing changed — one test each.

"Nothing changed" means: no row added, removed or altered in any table outside the audit trail;
in the audit trail at most the record of a refusal (``access.forbidden`` for a 403); the case's
state and version as they were; and no evidence file stored for a refused upload.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.utils import timezone

from fapiao.accounts.choices import Role
from fapiao.accounts.models import User
from fapiao.audit.models import AuditRecord
from fapiao.recovery.models import Case
from tests.integration.case_helpers import (
    PDF,
    PNG,
    act,
    claim_for,
    fetch,
    lose_invoice,
    pdf_named,
    post,
    upload,
)

pytestmark = pytest.mark.django_db

MB = 2**20


# --- what "nothing changed" means -------------------------------------------------------------------------


def evidence_files() -> set[str]:
    root = Path(django_settings.FAPIAO_EVIDENCE_DIR)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def world_state() -> dict[str, Any]:
    rows = {
        m._meta.label: m.objects.count()
        for m in apps.get_models()
        if m._meta.app_label != "audit" and m._meta.label != "platform.HourlyCount"  # refusals per hour
    }
    cases = {str(c.uid): (c.state, c.version, c.claimed_total_with_tax) for c in Case.objects.all()}
    audit = list(AuditRecord.objects.exclude(action__startswith="access.").values_list("pk", flat=True))
    return {"rows": rows, "cases": cases, "audit": audit, "files": evidence_files()}


class Unchanged:
    """``with Unchanged(): …`` fails if the block changed anything but the refusal records."""

    def __enter__(self) -> Unchanged:
        self.before = world_state()
        self.refusals_before = AuditRecord.objects.filter(action__startswith="access.").count()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            assert world_state() == self.before
        self.refusals = (
            AuditRecord.objects.filter(action__startswith="access.").count() - self.refusals_before
        )


def refused(response: Any, status: int, code: str, *fields: tuple[str, str]) -> dict[str, Any]:
    """A problem document with this status and code; for 422 the listed field errors, exactly."""
    assert response.status_code == status, response.content.decode()
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    assert body["type"].rsplit("/", 1)[-1] == code, body
    assert body["status"] == status
    for text in [body["detail"], *(e["message"] for e in body["errors"])]:
        assert text.strip() and "Traceback" not in text and 'File "' not in text, text
    if fields:
        assert sorted((e["field"], e["code"]) for e in body["errors"]) == sorted(fields), body["errors"]
    return body


def send(client: Any, method: str, path: str, body: object = None, *, raw: str | None = None) -> Any:
    data = raw if raw is not None else json.dumps(body if body is not None else {})
    return client.generic(method, path, data=data, content_type="application/json")


def put_file(client: Any, case: dict[str, Any], kind: str, name: str, data: bytes) -> Any:
    handle = io.BytesIO(data)
    handle.name = name
    return client.post(f"/api/v1/cases/{case['case_id']}/evidence", data={"type": kind, "file": handle})


def blob(size: int, tag: str) -> bytes:
    """A PDF of exactly ``size`` bytes (padding inside a comment), distinct per ``tag``."""
    head = PDF.replace(b"%%EOF", f"% {tag}\n".encode())
    return head + b"%" + b"x" * (size - len(head) - len(b"\n%%EOF\n") - 1) + b"\n%%EOF\n"


@pytest.fixture(autouse=True)
def _private_witness(settings: Any, tmp_path: Path) -> None:
    """This test's signed heads go to its own witness file, not the session's shared one."""
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture
def people(client_for: Any, settings: Any) -> dict[str, Any]:
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    names = ("clerk", "clerk2", "support", "reviewer", "reviewer2", "auditor", "operator")
    return {name: client_for(name) for name in names}


def today() -> str:
    return timezone.localdate().isoformat()


def number(offset: int = 0) -> str:
    return f"{timezone.localdate().year % 100:02d}110{999_999_999_998_000 + offset:015d}"


@pytest.fixture
def draft(people: dict[str, Any]) -> dict[str, Any]:
    response = post(people["clerk"], "/api/v1/cases", claim_for(number(), today()))
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def submitted(people: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
    upload(people["clerk"], draft, "contract", "合同.pdf", pdf_named("submitted"))
    return act(people["clerk"], fetch(people["clerk"], draft), "submit")


@pytest.fixture
def in_review(people: dict[str, Any], submitted: dict[str, Any]) -> dict[str, Any]:
    return act(people["reviewer"], submitted, "claim")


@pytest.fixture
def confirmed(people: dict[str, Any], valid_invoice: dict[str, Any]) -> Iterator[dict[str, Any]]:
    clerk, reviewer = people["clerk"], people["reviewer"]
    issued = post(clerk, "/api/v1/invoices", valid_invoice).json()
    kept = lose_invoice(issued["number"])
    case = post(clerk, "/api/v1/cases", claim_for(issued["number"], kept["issued_on"])).json()
    upload(clerk, case, "contract", "合同.pdf", pdf_named("confirmed"))
    case = act(clerk, fetch(clerk, case), "submit")
    case = act(reviewer, act(reviewer, case, "claim"), "approve")
    case = act(reviewer, case, "resolve", remedy="restore")["case"]
    yield act(clerk, fetch(clerk, case), "confirm")


# --- the claim ---------------------------------------------------------------------------------------------


def test_missing_claim_fields(people):
    with Unchanged():
        response = post(people["clerk"], "/api/v1/cases", {"buyer": {}})
    refused(
        response,
        422,
        "validation_failed",
        ("number", "required"),
        ("issued_on", "required"),
        ("buyer.name", "required"),
        ("total_with_tax", "required"),
        ("narrative", "required"),
    )


def test_malformed_json(people):
    with Unchanged():
        response = send(people["clerk"], "POST", "/api/v1/cases", raw='{"number": "2611')
    refused(response, 422, "validation_failed", ("body", "malformed_json"))


def test_unknown_fields(people):
    claim = claim_for(number(), today(), colour="blue")
    claim["buyer"]["phone"] = "13800138000"
    with Unchanged():
        response = post(people["clerk"], "/api/v1/cases", claim)
    refused(response, 422, "validation_failed", ("colour", "unknown_field"), ("buyer.phone", "unknown_field"))


def test_a_retried_draft_with_the_same_idempotency_key_opens_one_case(people):
    clerk, claim = people["clerk"], claim_for(number(), today())
    headers = {"HTTP_IDEMPOTENCY_KEY": "draft-1"}
    first = clerk.post("/api/v1/cases", json.dumps(claim), content_type="application/json", **headers)
    assert first.status_code == 201, first.content
    with Unchanged():
        again = clerk.post("/api/v1/cases", json.dumps(claim), content_type="application/json", **headers)
    assert again.status_code == 201 and again.json()["case_id"] == first.json()["case_id"]
    assert Case.objects.count() == 1


def test_the_same_idempotency_key_with_another_claim(people):
    clerk, headers = people["clerk"], {"HTTP_IDEMPOTENCY_KEY": "draft-2"}
    first = clerk.post(
        "/api/v1/cases", json.dumps(claim_for(number(), today())), content_type="application/json", **headers
    )
    assert first.status_code == 201, first.content
    with Unchanged():
        response = clerk.post(
            "/api/v1/cases",
            json.dumps(claim_for(number(1), today())),
            content_type="application/json",
            **headers,
        )
    refused(response, 422, "idempotency_key_reused")


def test_a_date_in_the_future(people):
    tomorrow = (timezone.localdate() + timezone.timedelta(days=1)).isoformat()
    with Unchanged():
        response = post(people["clerk"], "/api/v1/cases", claim_for(number(), tomorrow))
    refused(response, 422, "validation_failed", ("issued_on", "future_date"))


def test_a_number_with_a_province_code_that_does_not_exist(people):
    impossible = number()[:2] + "99" + number()[4:]
    with Unchanged():
        response = post(people["clerk"], "/api/v1/cases", claim_for(impossible, today()))
    body = refused(response, 422, "validation_failed", ("number", "bad_province"))
    assert "99" in body["errors"][0]["message"]


def test_a_number_from_a_future_year(people):
    future = f"{timezone.localdate().year % 100 + 1:02d}" + number()[2:]
    with Unchanged():
        response = post(people["clerk"], "/api/v1/cases", claim_for(future, today()))
    refused(response, 422, "validation_failed", ("number", "bad_year"))


def test_amounts_that_do_not_add_up(people):
    claim = claim_for(number(), today(), total_amount="1000.00", total_tax="61.00")
    with Unchanged():
        response = post(people["clerk"], "/api/v1/cases", claim)
    refused(response, 422, "validation_failed", ("total_with_tax", "totals_disagree"))


def test_a_bad_edit_changes_nothing(people, draft):
    claim = claim_for(number(), today(), total_with_tax="0.00")
    with Unchanged():
        response = send(
            people["clerk"],
            "PATCH",
            f"/api/v1/cases/{draft['case_id']}",
            {"version": draft["version"], **claim},
        )
    refused(response, 422, "validation_failed", ("total_with_tax", "zero_amount"))


def test_editing_a_submitted_case(people, submitted):
    claim = claim_for(number(), today(), total_with_tax="999.00")
    with Unchanged():
        response = send(
            people["clerk"],
            "PATCH",
            f"/api/v1/cases/{submitted['case_id']}",
            {"version": submitted["version"], **claim},
        )
    refused(response, 409, "case_not_editable")


# --- files ---------------------------------------------------------------------------------------------


def test_an_empty_file(people, draft):
    with Unchanged():
        response = put_file(people["clerk"], draft, "contract", "空.pdf", b"")
    refused(response, 422, "validation_failed", ("file", "evidence_empty"))


def test_a_file_over_the_size_limit(people, draft, settings):
    settings.FAPIAO_EVIDENCE_MAX_FILE_MB = 1
    with Unchanged():
        response = put_file(people["clerk"], draft, "contract", "大合同.pdf", blob(MB + 1, "big"))
    body = refused(response, 413, "evidence_too_large", ("file", "evidence_too_large"))
    assert "1" in body["errors"][0]["message"]
    # Exactly at the limit is fine.
    assert put_file(people["clerk"], draft, "contract", "合同.pdf", blob(MB, "edge")).status_code == 201


def test_files_over_the_case_limit(people, draft, settings):
    settings.FAPIAO_EVIDENCE_MAX_CASE_MB = 1
    assert put_file(people["clerk"], draft, "contract", "一.pdf", blob(600_000, "one")).status_code == 201
    with Unchanged():
        response = put_file(people["clerk"], draft, "contract", "二.pdf", blob(600_000, "two"))
    refused(response, 422, "validation_failed", ("file", "case_evidence_full"))


def test_a_file_whose_content_contradicts_its_type(people, draft):
    with Unchanged():
        response = put_file(people["clerk"], draft, "system_receipt", "receipt.json", PNG)
    body = refused(response, 422, "validation_failed", ("file", "evidence_type_mismatch"))
    assert "PNG" in body["errors"][0]["message"]


def test_an_unknown_evidence_type_and_no_file(people, draft):
    with Unchanged():
        unknown = put_file(people["clerk"], draft, "selfie", "a.pdf", pdf_named("selfie"))
        missing = people["clerk"].post(
            f"/api/v1/cases/{draft['case_id']}/evidence", data={"type": "contract"}
        )
    refused(unknown, 422, "validation_failed", ("type", "invalid_choice"))
    refused(missing, 422, "validation_failed", ("file", "required"))


def test_the_same_file_twice(people, draft):
    data = pdf_named("twice")
    upload(people["clerk"], draft, "contract", "合同.pdf", data)
    with Unchanged():
        response = put_file(people["clerk"], draft, "stub_copy", "存根.pdf", data)
    body = refused(response, 409, "evidence_duplicate")
    assert "合同.pdf" in body["detail"]


# --- closed cases, own cases, other merchants, roles ------------------------------------------------------


def test_acting_on_a_confirmed_case(people, confirmed):
    clerk, reviewer, support = people["clerk"], people["reviewer"], people["support"]
    path = f"/api/v1/cases/{confirmed['case_id']}"
    with Unchanged():
        for client, action, extra in (
            (clerk, "reopen", {"reason": "再看看。"}),
            (clerk, "withdraw", {}),
            (clerk, "confirm", {}),
            (reviewer, "claim", {}),
        ):
            response = post(client, f"{path}/{action}", {"version": confirmed["version"], **extra})
            body = refused(response, 409, "case_closed")
            assert "confirmed" in body["detail"] or "已确认" in body["detail"], body["detail"]
        refused(
            put_file(clerk, confirmed, "contract", "迟到.pdf", pdf_named("late")),
            409,
            "case_not_open_for_evidence",
        )
        refused(post(support, f"{path}/messages", {"body": "还在吗？"}), 409, "case_not_open_for_messages")


def test_a_clerk_may_not_decide_their_own_case(people, in_review):
    with Unchanged() as watch:
        response = post(
            people["clerk"],
            f"/api/v1/cases/{in_review['case_id']}/approve",
            {"version": in_review["version"]},
        )
    refused(response, 403, "role_forbidden")  # a clerk may never review, whatever the case's state
    assert watch.refusals == 1  # the refusal itself is recorded


def become_reviewer(username: str) -> None:
    user = User.objects.get(username=username)
    user.role = Role.REVIEWER
    user.save(update_fields=["role"])


def test_a_reviewer_who_spoke_for_the_merchant_may_not_decide(people, submitted):
    """Four eyes (docs/spec/recovery.md): whoever messaged on the merchant's behalf may not decide the case.

    Only support can write on the merchant's behalf, so this is a support agent who later became a
    reviewer (a role change the operator makes).
    """
    path = f"/api/v1/cases/{submitted['case_id']}"
    response = post(
        people["support"], f"{path}/messages", {"body": "商户来电：合同原件已寄出。", "on_behalf": True}
    )
    assert response.status_code == 201 and response.json()["messages"][-1]["on_behalf"] is True
    become_reviewer("support")
    former_support = people["support"]
    case = act(former_support, fetch(former_support, submitted), "claim")  # claiming is not deciding
    for action in ("approve", "reject"):
        with Unchanged() as watch:
            response = post(
                former_support, f"{path}/{action}", {"version": case["version"], "reason": "同意。"}
            )
        body = refused(response, 403, "four_eyes")
        assert watch.refusals == 1 and body["detail"]
    assert fetch(former_support, case)["state"] == "in_review"


def test_mail_in_evidence_registered_for_the_merchant_also_counts(people, submitted):
    path = f"/api/v1/cases/{submitted['case_id']}"
    registered = upload(people["support"], submitted, "stub_copy", "邮寄存根.pdf", pdf_named("mailed in"))
    assert registered["on_behalf"] is True
    become_reviewer("support")
    case = act(people["support"], fetch(people["support"], submitted), "claim")
    with Unchanged():
        response = post(people["support"], f"{path}/approve", {"version": case["version"]})
    refused(response, 403, "four_eyes")


def test_a_reviewer_who_wrote_to_the_merchant_may_still_decide(people, in_review):
    """Writing *to* the merchant is not speaking *for* them (spec/recovery.md); ``on_behalf`` is support's."""
    reviewer = people["reviewer"]
    path = f"/api/v1/cases/{in_review['case_id']}"
    response = post(reviewer, f"{path}/messages", {"body": "请确认开票日期。", "on_behalf": True})
    assert response.status_code == 201 and response.json()["messages"][-1]["on_behalf"] is False
    assert act(reviewer, fetch(reviewer, in_review), "approve")["state"] == "approved"


def test_another_merchants_case_answers_404(people, submitted):
    clerk2 = people["clerk2"]
    case_id = submitted["case_id"]
    evidence_id = submitted["evidence"][0]["id"]
    with Unchanged():
        for response in (
            clerk2.get(f"/api/v1/cases/{case_id}"),
            clerk2.get(f"/api/v1/cases/{case_id}/evidence/{evidence_id}"),
            clerk2.get(f"/api/v1/cases/{case_id}/receipt.pdf"),
            send(
                clerk2,
                "PATCH",
                f"/api/v1/cases/{case_id}",
                {"version": submitted["version"], **claim_for(number(), today())},
            ),
            post(clerk2, f"/api/v1/cases/{case_id}/withdraw", {"version": submitted["version"]}),
            post(clerk2, f"/api/v1/cases/{case_id}/messages", {"body": "你好"}),
            put_file(clerk2, submitted, "contract", "x.pdf", pdf_named("intruder")),
        ):
            body = refused(response, 404, "case_not_found")
            assert case_id not in body["detail"]
    listed = clerk2.get("/api/v1/cases").json()
    assert listed["total"] == 0 and case_id not in json.dumps(listed)


def test_an_unknown_case_or_file_answers_404(people, submitted):
    clerk = people["clerk"]
    refused(clerk.get("/api/v1/cases/not-a-uuid"), 404, "case_not_found")
    refused(clerk.get("/api/v1/cases/00000000-0000-4000-8000-000000000000"), 404, "case_not_found")
    refused(
        clerk.get(f"/api/v1/cases/{submitted['case_id']}/evidence/00000000-0000-4000-8000-000000000000"),
        404,
        "evidence_not_found",
    )


def test_the_auditor_reads_but_does_not_act(people, submitted):
    auditor = people["auditor"]
    case_id = submitted["case_id"]
    assert auditor.get(f"/api/v1/cases/{case_id}").status_code == 200
    assert (
        auditor.get(f"/api/v1/cases/{case_id}/evidence/{submitted['evidence'][0]['id']}").status_code == 200
    )
    assert auditor.get(f"/api/v1/cases/{case_id}/receipt.pdf").status_code == 200
    assert fetch(auditor, submitted)["actions"] == []
    with Unchanged() as watch:
        for action, extra, expected in (
            ("claim", {}, "role_forbidden"),
            ("approve", {}, "role_forbidden"),
            ("request-info", {"body": "?"}, "role_forbidden"),
            ("withdraw", {}, "role_forbidden"),
        ):
            response = post(
                auditor, f"/api/v1/cases/{case_id}/{action}", {"version": submitted["version"], **extra}
            )
            refused(response, 403, expected)
        refused(post(auditor, f"/api/v1/cases/{case_id}/messages", {"body": "审计"}), 403, "role_forbidden")
        refused(put_file(auditor, submitted, "contract", "a.pdf", pdf_named("audit")), 403, "role_forbidden")
    assert watch.refusals == 6


def test_the_operator_sees_no_cases(people, submitted):
    operator = people["operator"]
    case_id = submitted["case_id"]
    with Unchanged():
        assert operator.get("/api/v1/cases").json()["total"] == 0
        refused(operator.get(f"/api/v1/cases/{case_id}"), 404, "case_not_found")
        refused(
            post(operator, f"/api/v1/cases/{case_id}/claim", {"version": submitted["version"]}),
            404,
            "case_not_found",
        )
        refused(post(operator, "/api/v1/cases", claim_for(number(1), today())), 403, "role_forbidden")


# --- versions ---------------------------------------------------------------------------------------------


def test_a_stale_version(people, in_review):
    reviewer, clerk = people["reviewer"], people["clerk"]
    path = f"/api/v1/cases/{in_review['case_id']}"
    stale = in_review["version"] - 1
    with Unchanged():
        body = refused(post(reviewer, f"{path}/approve", {"version": stale}), 409, "stale_version")
        refused(post(clerk, f"{path}/withdraw", {"version": stale}), 409, "stale_version")
        edit = {"version": stale, **claim_for(number(), today())}
        refused(send(clerk, "PATCH", path, edit), 409, "stale_version")
    assert str(in_review["version"]) in body["detail"]  # says which version is current
    assert act(reviewer, in_review, "approve")["state"] == "approved"


def test_a_missing_version(people, in_review):
    with Unchanged():
        response = post(people["reviewer"], f"/api/v1/cases/{in_review['case_id']}/approve", {"reason": "好"})
    refused(response, 422, "validation_failed", ("version", "required"))


def test_a_rejection_needs_a_reason(people, in_review):
    path = f"/api/v1/cases/{in_review['case_id']}/reject"
    with Unchanged():
        bare = post(people["reviewer"], path, {"version": in_review["version"]})
        template = post(
            people["reviewer"], path, {"version": in_review["version"], "reason_template": "nope"}
        )
    refused(bare, 422, "validation_failed", ("reason", "required"))
    refused(template, 422, "validation_failed", ("reason_template", "invalid_choice"))


def test_reopening_needs_a_reason(people, confirmed):
    # Even on a closed case the missing reason is reported first: it is the caller's to fix.
    with Unchanged():
        response = post(
            people["clerk"], f"/api/v1/cases/{confirmed['case_id']}/reopen", {"version": confirmed["version"]}
        )
    refused(response, 422, "validation_failed", ("reason", "required"))


def test_a_decision_reason_that_is_not_text(people, in_review):
    path = f"/api/v1/cases/{in_review['case_id']}/reject"
    with Unchanged():
        number = post(people["reviewer"], path, {"version": in_review["version"], "reason": 123})
        listed = post(
            people["reviewer"], path, {"version": in_review["version"], "reason_template": ["nope"]}
        )
    refused(number, 422, "validation_failed", ("reason", "not_a_string"))
    refused(listed, 422, "validation_failed", ("reason_template", "invalid_choice"))
