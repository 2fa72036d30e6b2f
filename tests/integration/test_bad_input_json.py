"""Issue 13, findings 9/15, 12 and 13 (found by fuzzing the API): hostile JSON bodies and fields of
the wrong type get a 422 problem document and change nothing — never a 500.

9/15. Deeply nested bodies (1,000 levels; 100,000 ``[``) on every JSON body: a ``RecursionError``
in the body reader, and a 400 "Cannot parse request body" from ninja's own parser.
12. A non-string ``kind`` on ``POST /invoices`` and inside ``POST /cases/{id}/resolve``: unhashable.
13. A non-string ``reason`` or ``reason_template`` on approve/reject failed before the state
check; ``withdraw`` stored ``{"note": [1, 2]}`` as its Python repr.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from tests.integration.case_helpers import act, claim_for, fetch, pdf_named, post, upload
from tests.integration.refusals import Unchanged, field_codes, problem, send

pytestmark = pytest.mark.django_db

MERCHANT = "91110108MA01ABCD84"  # the demo merchant of "clerk"


@pytest.fixture
def people(client_for: Any, settings: Any, tmp_path: Any) -> dict[str, Any]:
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"
    return {name: client_for(name) for name in ("clerk", "reviewer", "operator", "madmin")}


def _number(offset: int = 0) -> str:
    return f"{timezone.localdate().year % 100:02d}110{999_999_999_997_000 + offset:015d}"


@pytest.fixture
def draft(people: dict[str, Any]) -> dict[str, Any]:
    response = post(people["clerk"], "/api/v1/cases", claim_for(_number(), timezone.localdate().isoformat()))
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def submitted(people: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
    upload(people["clerk"], draft, "contract", "合同.pdf", pdf_named("json tests"))
    return act(people["clerk"], fetch(people["clerk"], draft), "submit")


@pytest.fixture
def in_review(people: dict[str, Any], submitted: dict[str, Any]) -> dict[str, Any]:
    return act(people["reviewer"], submitted, "claim")


@pytest.fixture
def approved(people: dict[str, Any], in_review: dict[str, Any]) -> dict[str, Any]:
    return act(people["reviewer"], in_review, "approve")


@pytest.fixture
def invoice_number(people: dict[str, Any], valid_invoice: dict[str, Any]) -> str:
    response = post(people["clerk"], "/api/v1/invoices", valid_invoice)
    assert response.status_code == 201, response.content
    return str(response.json()["number"])


@pytest.fixture
def targets(draft: dict[str, Any], submitted: dict[str, Any], invoice_number: str) -> dict[str, str]:
    """What the paths below name: an invoice, a draft case, a submitted case."""
    return {"invoice": invoice_number, "draft": draft["case_id"], "submitted": submitted["case_id"]}


# --- 9/15: nesting ---------------------------------------------------------------------------------------

NESTED = {
    "1,000 levels": ("[" * 1000 + "]" * 1000, "too_deep"),
    "1,000 objects": ('{"a":' * 1000 + "1" + "}" * 1000, "too_deep"),
    "100,000 nested [": ("[" * 100_000, "malformed_json"),
    "100,000 nested [ closed": ("[" * 100_000 + "]" * 100_000, "too_deep"),
    "deep inside a valid invoice": (
        '{"kind": "ordinary", "remark": ' + "[" * 5000 + "]" * 5000 + "}",
        "too_deep",
    ),
}

# Every operation that reads a JSON body, by who may reach its reader.
BODY_OPERATIONS = [
    ("clerk", "POST", "/api/v1/invoices"),
    ("clerk", "POST", "/api/v1/invoices/{invoice}/red-letter"),
    ("clerk", "POST", "/api/v1/cases"),
    ("clerk", "PATCH", "/api/v1/cases/{draft}"),
    *[
        ("clerk", "POST", f"/api/v1/cases/{{draft}}/{action}")
        for action in ("submit", "resubmit", "withdraw", "confirm", "reopen")
    ],
    *[
        ("reviewer", "POST", f"/api/v1/cases/{{submitted}}/{action}")
        for action in ("claim", "request-info", "approve", "reject", "assign", "resolve", "messages")
    ],
    ("madmin", "POST", "/api/v1/accounts/users"),
    ("operator", "POST", "/api/v1/accounts/merchants"),
    ("operator", "POST", f"/api/v1/accounts/merchants/{MERCHANT}/segments"),
    ("clerk", "POST", "/api/v1/accounts/tokens"),
]


@pytest.mark.parametrize("nested", NESTED.values(), ids=NESTED.keys())
@pytest.mark.parametrize(
    "operation", BODY_OPERATIONS, ids=[f"{method} {path}" for _who, method, path in BODY_OPERATIONS]
)
def test_deep_nesting_is_refused_before_parsing(people, targets, operation, nested):
    (who, method, path), (body, code) = operation, nested
    target = path.format(**targets)
    with Unchanged():
        response = send(people[who], method, target, body)
    assert field_codes(problem(response, 422)) == {("body", code)}


def test_malformed_json_on_a_schema_body_is_a_422_like_everywhere_else(people):
    """ninja's own parser answered an English 400 "Cannot parse request body"."""
    with Unchanged():
        response = send(people["operator"], "POST", "/api/v1/accounts/merchants", '{"uscc": ')
    assert field_codes(problem(response, 422)) == {("body", "malformed_json")}


def test_a_schema_body_over_the_upload_limit_is_a_413(people):
    """The size bound comes first for schema bodies too (ninja reads the body before its parser)."""
    body = {"uscc": "91110000MA01XKQ2TQ", "name": "x" * (9 * 1024 * 1024)}
    with Unchanged():
        response = post(people["operator"], "/api/v1/accounts/merchants", body)
    problem(response, 413, "too_large")


def test_a_shallow_body_still_works(people, valid_invoice):
    response = post(people["clerk"], "/api/v1/invoices", valid_invoice)
    assert response.status_code == 201, response.content


# --- 12: a kind that is not a string ----------------------------------------------------------------------

KINDS = [{}, [], ["ordinary"], 1, True, {"ordinary": 1}]


@pytest.mark.parametrize("kind", KINDS, ids=repr)
def test_a_kind_that_is_not_a_string_on_issue(people, valid_invoice, kind):
    with Unchanged():
        response = post(people["clerk"], "/api/v1/invoices", {**valid_invoice, "kind": kind})
    assert field_codes(problem(response, 422)) == {("kind", "invalid_choice")}


@pytest.mark.parametrize("kind", KINDS, ids=repr)
def test_a_kind_that_is_not_a_string_on_resolve(people, approved, valid_invoice, kind):
    invoice = {**valid_invoice, "kind": kind, "issued_on": timezone.localdate().isoformat(), "confirm": True}
    path = f"/api/v1/cases/{approved['case_id']}/resolve"
    with Unchanged():
        response = post(
            people["reviewer"],
            path,
            {"version": approved["version"], "remedy": "restore", "invoice": invoice},
        )
    problem(response, 422)
    assert fetch(people["reviewer"], approved)["state"] == "approved"


@pytest.mark.parametrize("kind", KINDS, ids=repr)
def test_a_kind_that_is_not_a_string_on_a_claim(people, kind):
    claim = claim_for(_number(1), timezone.localdate().isoformat(), kind=kind)
    with Unchanged():
        response = post(people["clerk"], "/api/v1/cases", claim)
    assert field_codes(problem(response, 422)) == {("kind", "invalid_choice")}


# --- 13: free text that is not a string -------------------------------------------------------------------

NOT_TEXT = [{}, [], {"note": [1, 2]}, 1, 1.5, True, ["好"]]


@pytest.mark.parametrize("action", ["approve", "reject"])
@pytest.mark.parametrize("reason", NOT_TEXT, ids=repr)
def test_a_reason_that_is_not_text(people, in_review, action, reason):
    path = f"/api/v1/cases/{in_review['case_id']}/{action}"
    with Unchanged():
        response = post(people["reviewer"], path, {"version": in_review["version"], "reason": reason})
    assert field_codes(problem(response, 422)) == {("reason", "not_a_string")}


@pytest.mark.parametrize("action", ["approve", "reject"])
@pytest.mark.parametrize("template", NOT_TEXT, ids=repr)
def test_a_reason_template_that_is_not_text(people, in_review, action, template):
    path = f"/api/v1/cases/{in_review['case_id']}/{action}"
    body = {"version": in_review["version"], "reason": "见附件。", "reason_template": template}
    with Unchanged():
        response = post(people["reviewer"], path, body)
    assert field_codes(problem(response, 422)) == {("reason_template", "invalid_choice")}


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_a_bad_reason_is_reported_before_the_state_check(people, submitted, action):
    """The case is not claimed (approve and reject would be 409): the caller's mistake comes first."""
    path = f"/api/v1/cases/{submitted['case_id']}/{action}"
    with Unchanged():
        response = post(people["reviewer"], path, {"version": submitted["version"], "reason": {}})
    assert field_codes(problem(response, 422)) == {("reason", "not_a_string")}


@pytest.mark.parametrize("reason", NOT_TEXT, ids=repr)
def test_withdraw_does_not_store_the_repr_of_an_object(people, submitted, reason):
    path = f"/api/v1/cases/{submitted['case_id']}/withdraw"
    with Unchanged():
        response = post(people["clerk"], path, {"version": submitted["version"], "reason": reason})
    assert field_codes(problem(response, 422)) == {("reason", "not_a_string")}
    assert fetch(people["clerk"], submitted)["state"] == "submitted"


@pytest.mark.parametrize(
    "case_of",
    [
        ("clerk", "draft", "reopen", {"reason": {"note": [1, 2]}}, "reason"),
        ("reviewer", "in_review", "request-info", {"body": ["合同"]}, "body"),
        ("reviewer", "submitted", "messages", {"body": {"text": "你好"}}, "body"),
        ("reviewer", "in_review", "assign", {"assignee": {"username": "reviewer2"}}, "assignee"),
    ],
    ids=["reopen", "request-info", "messages", "assign"],
)
def test_other_free_text_that_is_not_text(request, people, case_of):
    who, fixture, action, body, field = case_of
    case = request.getfixturevalue(fixture)
    path = f"/api/v1/cases/{case['case_id']}/{action}"
    with Unchanged():
        response = post(people[who], path, {"version": case["version"], **body})
    assert field_codes(problem(response, 422)) == {(field, "not_a_string")}


def test_withdraw_with_a_text_reason_still_works(people, submitted):
    case = act(people["clerk"], submitted, "withdraw", reason="重复申请。\n已另行处理。")
    assert case["state"] == "withdrawn"
