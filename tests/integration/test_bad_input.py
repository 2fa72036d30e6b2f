"""Bad input gets a specific problem document listing every field error, and changes nothing.

One test per case; each asserts that no row in any table changed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.apps import apps

pytestmark = pytest.mark.django_db


def table_counts() -> dict[str, int]:
    """Rows per table, the audit trail aside: a refused request changes nothing but leaves a record
    (and, when anonymous, is counted by the rate limiter; every refusal is counted per hour)."""
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.app_label != "audit"
        and model._meta.label not in ("platform.RateCounter", "platform.HourlyCount")
    }


@pytest.fixture
def clerk(client_for: Any) -> Any:
    return client_for("clerk")


def post(client: Any, path: str, body: object, *, raw: bool = False) -> Any:
    data = body if raw else json.dumps(body)
    return client.post(path, data=data, content_type="application/json")


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    assert body["status"] == status
    return body


def codes(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(error["field"], error["code"]) for error in body["errors"]}


def assert_issue_rejected(
    client: Any, body: object, *, raw: bool = False, status: int = 422
) -> dict[str, Any]:
    before = table_counts()
    result = problem(post(client, "/api/v1/invoices", body, raw=raw), status)
    assert table_counts() == before
    for error in result["errors"]:
        assert error["message"], error
    return result


def test_malformed_json(clerk):
    body = assert_issue_rejected(clerk, '{"kind": "ordinary", "buyer": ', raw=True)
    assert codes(body) == {("body", "malformed_json")}


def test_nan_is_not_json(clerk):
    body = assert_issue_rejected(clerk, '{"kind": NaN}', raw=True)
    assert codes(body) == {("body", "malformed_json")}


def test_wrong_types_are_all_reported(clerk, valid_invoice):
    valid_invoice["kind"] = 1
    valid_invoice["buyer"]["name"] = ["x"]
    valid_invoice["lines"][0]["quantity"] = 1.5
    body = assert_issue_rejected(clerk, valid_invoice)
    fields = {field for field, _code in codes(body)}
    assert {"kind", "buyer.name", "lines.0.quantity"} <= fields


def test_body_that_is_not_an_object(clerk):
    assert_issue_rejected(clerk, [1, 2, 3])


def test_unknown_fields(clerk, valid_invoice):
    valid_invoice["colour"] = "blue"
    valid_invoice["lines"][0]["discount"] = "1.00"
    body = assert_issue_rejected(clerk, valid_invoice)
    assert ("colour", "unknown_field") in codes(body)
    assert ("lines.0.discount", "unknown_field") in codes(body)


def test_bad_uscc_checksum(clerk, valid_invoice):
    valid_invoice["buyer"]["tax_id"] = "91110000MA01XKQ2TA"
    body = assert_issue_rejected(clerk, valid_invoice)
    assert [e["field"] for e in body["errors"]] == ["buyer.tax_id"]


def test_nineteen_digit_number_in_search(client_for):
    reader = client_for("clerk", "read")
    before = table_counts()
    response = reader.get("/api/v1/invoices", {"number": "2611010000000000001"})
    assert codes(problem(response, 422)) == {("number", "bad_length")}
    assert table_counts() == before


def test_client_amount_that_disagrees(clerk, valid_invoice):
    valid_invoice["lines"][0]["amount"] = "999.99"
    body = assert_issue_rejected(clerk, valid_invoice)
    assert ("lines.0.amount", "amount_mismatch") in codes(body)


def test_client_tax_that_disagrees(clerk, valid_invoice):
    valid_invoice["lines"][0]["tax"] = "61.00"
    body = assert_issue_rejected(clerk, valid_invoice)
    assert ("lines.0.tax", "tax_mismatch") in codes(body)


def test_unsupported_rate(clerk, valid_invoice):
    valid_invoice["lines"][0]["tax_rate"] = "0.07"
    body = assert_issue_rejected(clerk, valid_invoice)
    assert ("lines.0.tax_rate", "unsupported_rate") in codes(body)


@pytest.mark.parametrize("quantity", ["0", "-1", "0.00000000"])
def test_zero_or_negative_quantity(clerk, valid_invoice, quantity):
    valid_invoice["lines"][0]["quantity"] = quantity
    body = assert_issue_rejected(clerk, valid_invoice)
    assert [e["field"] for e in body["errors"]] == ["lines.0.quantity"]


@pytest.mark.parametrize(
    "value", ["1e3", "1000.000000001", "NaN", "Infinity", "99999999999999999", " 1", "+1"]
)
def test_unit_price_forms_that_are_refused(clerk, valid_invoice, value):
    valid_invoice["lines"][0]["unit_price"] = value
    body = assert_issue_rejected(clerk, valid_invoice)
    assert [e["field"] for e in body["errors"]] == ["lines.0.unit_price"]


def test_ten_thousand_lines(clerk, valid_invoice):
    valid_invoice["lines"] = valid_invoice["lines"] * 10_000
    body = assert_issue_rejected(clerk, valid_invoice)
    assert codes(body) == {("lines", "too_many_lines")}


def test_a_one_megabyte_string(clerk, valid_invoice):
    valid_invoice["remark"] = "备" * (1024 * 1024 // 3 + 1)
    body = assert_issue_rejected(clerk, valid_invoice)
    assert codes(body) == {("remark", "too_long")}


def test_body_beyond_the_upload_limit_is_413(clerk, valid_invoice):
    valid_invoice["remark"] = "x" * (9 * 1024 * 1024)
    assert_issue_rejected(clerk, valid_invoice, status=413)


def test_every_error_at_once(clerk):
    body = assert_issue_rejected(clerk, {"kind": "bogus", "buyer": {}, "lines": []})
    fields = {field for field, _code in codes(body)}
    assert {"kind", "buyer.name", "lines"} <= fields


def test_messages_are_chinese_by_default(clerk, valid_invoice):
    valid_invoice["lines"][0]["tax_rate"] = "0.07"
    body = assert_issue_rejected(clerk, valid_invoice)
    message = body["errors"][0]["message"]
    assert any("\u4e00" <= char <= "\u9fff" for char in message), message


def test_red_letter_beyond_the_remaining_amount(clerk, valid_invoice):
    number = post(clerk, "/api/v1/invoices", valid_invoice).json()["number"]
    before = table_counts()
    response = post(
        clerk, f"/api/v1/invoices/{number}/red-letter", {"lines": [{"line_no": 1, "quantity": "2"}]}
    )
    assert codes(problem(response, 422)) == {("lines.0.quantity", "exceeds_remaining")}
    assert table_counts() == before


def test_red_letter_with_both_full_and_lines(clerk, valid_invoice):
    number = post(clerk, "/api/v1/invoices", valid_invoice).json()["number"]
    before = table_counts()
    response = post(
        clerk,
        f"/api/v1/invoices/{number}/red-letter",
        {"full": True, "lines": [{"line_no": 1, "quantity": "1"}]},
    )
    problem(response, 422)
    assert table_counts() == before


def test_another_merchants_invoice_is_404(clerk, client_for, valid_invoice):
    number = post(clerk, "/api/v1/invoices", valid_invoice).json()["number"]
    other = client_for("clerk2")
    before = table_counts()
    assert problem(other.get(f"/api/v1/invoices/{number}"), 404)["type"].endswith("invoice_not_found")
    problem(other.get(f"/api/v1/invoices/{number}/receipt"), 404)
    problem(post(other, f"/api/v1/invoices/{number}/red-letter", {"full": True}), 404)
    assert table_counts() == before


def test_missing_token_is_401(db, valid_invoice):
    from django.test import Client

    response = Client().post(
        "/api/v1/invoices", data=json.dumps(valid_invoice), content_type="application/json"
    )
    assert problem(response, 401)["type"].endswith("unauthenticated")


def test_unknown_token_is_401(demo, valid_invoice):
    from django.test import Client

    from fapiao.audit.models import AuditRecord

    client = Client(headers={"Authorization": "Bearer fpv_not-a-real-token"})
    before = table_counts()
    response = post(client, "/api/v1/invoices", valid_invoice)
    assert problem(response, 401)["type"].endswith("invalid_token")
    assert table_counts() == before
    refused = AuditRecord.objects.get(action="access.unauthenticated")
    assert refused.after["code"] == "invalid_token" and refused.after["method"] == "POST"
