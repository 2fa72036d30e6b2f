"""Issue 13, findings 10 and 16: text that hides or breaks things is refused, on both backends.

10. Invisible or direction-reversing names: a buyer name of zero-width spaces was issued, one with a
right-to-left override too.  Every name (buyer, line, claim buyer, address book, catalogue, merchant,
a person's display name) must show at least one visible character and hold no format characters.
16. On PostgreSQL a NUL byte in any text input (``/invoices?buyer=%00``, path parameters, filters,
reasons, messages) answered 503 ``database_unavailable`` with ``Retry-After`` — a client mistake
reported as an outage; SQLite stored it.  Now NUL and the other control characters are a 422 on
both backends (tab, LF and CR stay allowed in multi-line fields such as messages).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from fapiao.recovery.models import CaseMessage
from tests.integration.case_helpers import act, claim_for, fetch, pdf_named, post, upload
from tests.integration.refusals import Unchanged, field_codes, problem, send

pytestmark = pytest.mark.django_db

MERCHANT = "91110108MA01ABCD84"
CONTROLS = {"NUL": "\x00", "SOH": "\x01", "ESC": "\x1b", "DEL": "\x7f", "CSI": "\x9b"}


@pytest.fixture
def people(client_for: Any, settings: Any, tmp_path: Any) -> dict[str, Any]:
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"
    names = ("clerk", "madmin", "reviewer", "auditor", "operator")
    return {name: client_for(name) for name in names}


def _number(offset: int = 0) -> str:
    return f"{timezone.localdate().year % 100:02d}110{999_999_999_996_000 + offset:015d}"


@pytest.fixture
def submitted(people: dict[str, Any]) -> dict[str, Any]:
    clerk = people["clerk"]
    case = post(clerk, "/api/v1/cases", claim_for(_number(), timezone.localdate().isoformat())).json()
    upload(clerk, case, "contract", "合同.pdf", pdf_named("text tests"))
    return act(clerk, fetch(clerk, case), "submit")


@pytest.fixture
def in_review(people: dict[str, Any], submitted: dict[str, Any]) -> dict[str, Any]:
    return act(people["reviewer"], submitted, "claim")


# --- 16: control characters in query and path parameters ---------------------------------------------------

QUERIES = [
    ("clerk", "/api/v1/invoices", "buyer"),
    ("clerk", "/api/v1/invoices", "number"),
    ("clerk", "/api/v1/invoices", "merchant"),
    ("clerk", "/api/v1/invoices", "state"),
    ("reviewer", "/api/v1/cases", "q"),
    ("reviewer", "/api/v1/cases", "merchant"),
    ("reviewer", "/api/v1/cases", "assignee"),
    ("reviewer", "/api/v1/cases", "state"),
    ("auditor", "/api/v1/audit", "actor"),
    ("auditor", "/api/v1/audit", "action"),
    ("auditor", "/api/v1/audit", "target"),
    ("auditor", "/api/v1/audit", "target_type"),
    ("auditor", "/api/v1/audit", "merchant"),
    ("operator", "/api/v1/accounts/users", "merchant"),
    ("operator", "/api/v1/accounts/users", "role"),
    ("clerk", f"/api/v1/invoices/26110100000000000001?merchant={MERCHANT}", "merchant"),
]


@pytest.mark.parametrize("char", CONTROLS.values(), ids=CONTROLS.keys())
@pytest.mark.parametrize("who,path,name", QUERIES, ids=[f"{p}?{n}" for _w, p, n in QUERIES])
def test_control_characters_in_query_parameters(people, who, path, name, char):
    with Unchanged():
        response = people[who].get(path.split("?")[0], {name: f"a{char}b"})
    assert field_codes(problem(response, 422)) == {(name, "bad_character")}


PATHS = [
    ("clerk", "GET", "/api/v1/invoices/%00"),
    ("clerk", "GET", "/api/v1/invoices/2611%0001/receipt"),
    ("clerk", "POST", "/api/v1/invoices/%00/red-letter"),
    ("clerk", "GET", "/api/v1/cases/%00"),
    ("clerk", "POST", "/api/v1/cases/%00/withdraw"),
    ("clerk", "GET", "/api/v1/cases/00000000-0000-4000-8000-000000000000/evidence/%00"),
    ("operator", "GET", "/api/v1/accounts/merchants/%00"),
    ("operator", "POST", "/api/v1/accounts/merchants/%00/segments"),
    ("operator", "GET", "/api/v1/accounts/users/%00"),
    ("clerk", "DELETE", "/api/v1/accounts/tokens/%00"),
    ("clerk", "GET", "/api/v1/ledger/%00/head"),
    ("clerk", "GET", "/api/v1/ledger/%00/entries?start=0&end=1"),
    ("auditor", "GET", "/api/v1/audit/logs/%00/proof?index=0"),
    ("clerk", "GET", "/api/v1/invoices/%01"),
]


@pytest.mark.parametrize("who,method,path", PATHS, ids=[f"{m} {p}" for _w, m, p in PATHS])
def test_control_characters_in_path_parameters(people, who, method, path):
    with Unchanged():
        response = send(people[who], method, path, {"full": True})
    assert field_codes(problem(response, 422)) == {("path", "bad_character")}


# --- 16: control characters in JSON bodies -----------------------------------------------------------------


@pytest.mark.parametrize("char", CONTROLS.values(), ids=CONTROLS.keys())
@pytest.mark.parametrize(
    "case_of",
    [
        ("reviewer", "in_review", "approve", {"reason": "同意{c}"}, "reason"),
        ("reviewer", "in_review", "reject", {"reason": "不同意{c}"}, "reason"),
        ("reviewer", "in_review", "request-info", {"body": "请补充{c}"}, "body"),
        ("reviewer", "in_review", "request-info", {"body": "请补充", "items": ["合同{c}"]}, "items.0"),
        ("clerk", "submitted", "withdraw", {"reason": "撤回{c}"}, "reason"),
        ("clerk", "submitted", "reopen", {"reason": "重开{c}"}, "reason"),
        ("clerk", "submitted", "messages", {"body": "你好{c}"}, "body"),
        ("reviewer", "in_review", "assign", {"assignee": "reviewer2{c}"}, "assignee"),
    ],
    ids=["approve", "reject", "request-info", "request-items", "withdraw", "reopen", "message", "assign"],
)
def test_control_characters_in_case_texts(request, people, case_of, char):
    who, fixture, action, body, field = case_of
    case = request.getfixturevalue(fixture)
    filled = {
        key: [item.format(c=char) for item in value] if isinstance(value, list) else value.format(c=char)
        for key, value in body.items()
    }
    with Unchanged():
        response = post(
            people[who], f"/api/v1/cases/{case['case_id']}/{action}", {"version": case["version"], **filled}
        )
    assert field_codes(problem(response, 422)) == {(field, "bad_character")}


@pytest.mark.parametrize(
    "sent",
    [
        ("clerk", "/api/v1/invoices", "invoice", "buyer.name"),
        ("clerk", "/api/v1/invoices", "remark", "remark"),
        ("clerk", "/api/v1/cases", "claim", "narrative"),
        (
            "operator",
            "/api/v1/accounts/merchants",
            {"uscc": "91110000MA01XKQ2TQ", "name": "新商户\x00"},
            "name",
        ),
        (
            "madmin",
            "/api/v1/accounts/users",
            {"username": "newclerk", "role": "clerk", "last_name": "王\x00"},
            "last_name",
        ),
        (
            "madmin",
            "/api/v1/accounts/users",
            {"username": "newclerk", "role": "clerk", "email": "a\x00@b.cn"},
            "email",
        ),
        ("clerk", "/api/v1/accounts/tokens", {"name": "脚本\x00"}, "name"),
        ("clerk", "/api/v1/invoices", {"kind\x00": "ordinary"}, "body"),
    ],
    ids=["buyer-name", "remark", "narrative", "merchant-name", "last-name", "email", "token-name", "key"],
)
def test_nul_in_json_bodies(people, valid_invoice, sent):
    who, path, body, field = sent
    if body == "invoice":
        body = {**valid_invoice, "buyer": {"name": "北京买方\x00贸易有限公司"}}
    elif body == "remark":
        body = {**valid_invoice, "remark": "备注\x00"}
    elif body == "claim":
        body = claim_for(_number(1), timezone.localdate().isoformat(), narrative="上传中断\x00")
    with Unchanged():
        response = post(people[who], path, body)
    assert field_codes(problem(response, 422)) == {(field, "bad_character")}


def test_tab_newline_and_carriage_return_stay_allowed_in_messages(people, submitted):
    text = "第一行\r\n第二行\t（附件已补）"
    response = post(people["clerk"], f"/api/v1/cases/{submitted['case_id']}/messages", {"body": text})
    assert response.status_code == 201, response.content
    assert CaseMessage.objects.filter(body=text).exists()
    reason = "合同已核对。\n金额一致。"
    case = act(
        people["reviewer"],
        act(people["reviewer"], fetch(people["reviewer"], submitted), "claim"),
        "approve",
        reason=reason,
    )
    assert case["state"] == "approved"


# --- 16: pages ------------------------------------------------------------------------------------------


def _page(demo: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(demo[name])
    return client


@pytest.mark.parametrize(
    "path,params",
    [
        ("/invoices/", {"buyer": "\x00"}),
        ("/invoices/", {"number": "2611\x01"}),
        ("/invoices/%00/", {}),
        ("/invoices/%00/print/", {}),
        ("/address-book/", {"q": "\x00"}),
        ("/products/", {"q": "\x00"}),
        ("/cases/", {"q": "\x00"}),
        ("/totals/", {"merchant": "\x00"}),
    ],
)
def test_control_characters_in_page_addresses(demo, path, params):
    client = _page(demo, "clerk")
    with Unchanged():
        response = client.get(path, params)
    assert response.status_code == 422
    assert "Traceback" not in response.content.decode()


def test_nul_in_a_page_form_is_refused(demo):
    """A browser's form (urlencoded) with a NUL: refused before the view, with a page saying so."""
    client = _page(demo, "clerk")
    body = urlencode({"name": "北京买方\x00贸易有限公司"})
    with Unchanged():
        response = client.post("/address-book/new/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 422
    assert "NUL" in response.content.decode()


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\t"])
def test_control_characters_in_a_page_form_are_shown_beside_the_field(demo, char):
    """What reaches the view (any control character in a multipart form; all but NUL otherwise) is
    the field's validator's to report, beside the field."""
    client = _page(demo, "clerk")
    with Unchanged():
        response = client.post("/address-book/new/", {"name": f"北京买方{char}贸易有限公司"})
    assert response.status_code == 200
    assert 'id="f-name" name="name"' in (html := response.content.decode()) and 'aria-invalid="true"' in html


@pytest.mark.parametrize("char", ["\x00", "\x01"])
def test_control_characters_in_a_multipart_form_field(demo, submitted, char):
    """The mail-in page is a multipart form (files): its note is checked by its validator."""
    client = _page(demo, "support")
    upload = SimpleUploadedFile("存根.pdf", pdf_named("mail-in"), content_type="application/pdf")
    data = {
        "type": "stub_copy",
        "received_on": timezone.localdate().isoformat(),
        "note": f"挂号信{char}",
        "file": upload,
    }
    with Unchanged():
        response = client.post(f"/cases/{submitted['case_id']}/mail-in/", data)
    assert response.status_code == 200
    assert 'name="note"' in (html := response.content.decode()) and 'aria-invalid="true"' in html


def test_a_session_cookie_with_a_nul_is_no_session(db):
    client = Client()
    client.cookies["sessionid"] = "\x00" + "a" * 31
    response = client.get("/invoices/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- 10: names that hide or reverse ------------------------------------------------------------------------

HIDDEN = {
    "zero-width spaces only": ("\u200b\u200b\u200b", "hidden_character"),
    "right-to-left override": ("\u202e司公限有易贸方买", "hidden_character"),
    "left-to-right embedding": ("\u202a北京买方", "hidden_character"),
    "pop directional": ("北京买方\u202c", "hidden_character"),
    "isolate": ("\u2066北京买方\u2069", "hidden_character"),
    "first strong isolate": ("\u2068北京买方\u2069", "hidden_character"),
    "right-to-left mark": ("北京\u200f买方", "hidden_character"),
    "Arabic letter mark": ("\u061c北京买方", "hidden_character"),
    "zero-width space inside": ("北京\u200b买方", "hidden_character"),
    "word joiner": ("\u2060", "hidden_character"),
    "byte order mark": ("\ufeff北京买方", "hidden_character"),
    "Hangul filler only": ("\u3164\u3164", "no_visible_character"),
    "braille blank only": ("\u2800", "no_visible_character"),
    "combining marks only": ("\u0301\u0301", "no_visible_character"),
}


@pytest.mark.parametrize("name,code", HIDDEN.values(), ids=HIDDEN.keys())
def test_hidden_buyer_and_line_names_on_issue(people, valid_invoice, name, code):
    body = {**valid_invoice, "buyer": {**valid_invoice["buyer"], "name": name}}
    body["lines"] = [{**valid_invoice["lines"][0], "name": name}]
    with Unchanged():
        response = post(people["clerk"], "/api/v1/invoices", body)
    assert field_codes(problem(response, 422)) == {("buyer.name", code), ("lines.0.name", code)}


@pytest.mark.parametrize("name,code", HIDDEN.values(), ids=HIDDEN.keys())
def test_hidden_buyer_name_on_a_claim(people, name, code):
    claim = claim_for(_number(2), timezone.localdate().isoformat())
    claim["buyer"]["name"] = name
    with Unchanged():
        response = post(people["clerk"], "/api/v1/cases", claim)
    assert field_codes(problem(response, 422)) == {("buyer.name", code)}


@pytest.mark.parametrize("name,code", HIDDEN.values(), ids=HIDDEN.keys())
def test_hidden_merchant_and_person_names(people, name, code):
    with Unchanged():
        merchant = post(
            people["operator"], "/api/v1/accounts/merchants", {"uscc": "91110000MA01XKQ2TQ", "name": name}
        )
        person = post(
            people["madmin"],
            "/api/v1/accounts/users",
            {
                "username": "newclerk",
                "role": "clerk",
                "email": "newclerk@example.com",
                "last_name": name,
                "first_name": name,
            },
        )
    assert field_codes(problem(merchant, 422)) == {("name", code)}
    assert field_codes(problem(person, 422)) == {("last_name", code), ("first_name", code)}


@pytest.mark.parametrize(
    "name,code",
    [HIDDEN["zero-width spaces only"], HIDDEN["right-to-left override"], HIDDEN["Hangul filler only"]],
)
@pytest.mark.parametrize("page", ["/address-book/new/", "/products/new/"])
def test_hidden_names_in_the_address_book_and_catalogue(demo, page, name, code):
    client = _page(demo, "clerk")
    with Unchanged():
        response = client.post(page, {"name": name, "tax_rate": "0.06"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="f-name" name="name"' in html and 'aria-invalid="true"' in html


@pytest.mark.parametrize(
    "name", ["Café ☕ 有限公司", "شركة المثال", "北京（示例）科技有限公司", "A&B 👨\u200d👩\u200d👧 Ltd"]
)
def test_visible_names_in_any_script_are_accepted(people, valid_invoice, name):
    body = {**valid_invoice, "buyer": {**valid_invoice["buyer"], "name": name}}
    response = post(people["clerk"], "/api/v1/invoices", body)
    assert response.status_code == 201, response.content
