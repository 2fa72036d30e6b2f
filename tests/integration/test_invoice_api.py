"""The invoice API end to end through Django's test client, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fapiao.core.receipt import verify_receipt
from fapiao.invoices.models import Invoice
from fapiao.platform import keys

pytestmark = pytest.mark.django_db


def post(client: Any, path: str, body: object, **headers: str) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def test_issue_returns_the_invoice_with_a_verifiable_receipt(client_for, valid_invoice):
    response = post(client_for("clerk"), "/api/v1/invoices", valid_invoice)
    assert response.status_code == 201, response.content
    body = response.json()
    assert len(body["number"]) == 20 and body["number"][2:4] == "11"
    assert body["colour"] == "blue" and body["state"] == "normal" and body["origin"] == "issued"
    assert body["total_amount"] == "1000.00"
    assert body["total_tax"] == "60.00"
    assert body["total_with_tax"] == "1060.00"
    assert body["total_with_tax_in_words"] == "壹仟零陆拾圆整"
    assert body["seller"] == {"name": "北京示例科技有限公司", "tax_id": "91110108MA01ABCD84"}
    verdict = verify_receipt(body["receipt"], keys.registry())
    assert verdict.ok, verdict
    assert verdict.entry is not None and verdict.entry["invoice"]["number"] == body["number"]


def test_numbers_are_consecutive_within_the_segment(client_for, valid_invoice):
    client = client_for("clerk")
    numbers = [post(client, "/api/v1/invoices", valid_invoice).json()["number"] for _ in range(3)]
    serials = [int(number[5:]) for number in numbers]
    assert serials == list(range(serials[0], serials[0] + 3))


def test_search_and_fetch_are_scoped_to_the_merchant(client_for, valid_invoice):
    number = post(client_for("clerk"), "/api/v1/invoices", valid_invoice).json()["number"]
    mine = client_for("clerk", "read").get("/api/v1/invoices", {"number": number})
    assert mine.status_code == 200 and mine.json()["total"] == 1
    theirs = client_for("clerk2", "read")
    assert theirs.get("/api/v1/invoices", {"number": number}).json()["total"] == 0
    other = theirs.get(f"/api/v1/invoices/{number}")
    assert other.status_code == 404
    assert other["Content-Type"] == "application/problem+json"


def test_full_width_search_finds_the_same_invoice(client_for, valid_invoice):
    number = post(client_for("clerk"), "/api/v1/invoices", valid_invoice).json()["number"]
    full_width = number.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    found = client_for("clerk", "read").get("/api/v1/invoices", {"number": full_width}).json()
    assert [item["number"] for item in found["items"]] == [number]


def test_staff_cannot_issue(client_for, valid_invoice):
    response = post(client_for("reviewer"), "/api/v1/invoices", valid_invoice)
    assert response.status_code == 403
    assert Invoice.objects.count() == 0


def test_read_token_cannot_write(client_for, valid_invoice):
    response = post(client_for("clerk", "read"), "/api/v1/invoices", valid_invoice)
    assert response.status_code == 403
    assert response.json()["type"].endswith("token_read_only")
    assert Invoice.objects.count() == 0


def test_red_letter_by_line_then_full(client_for, valid_invoice):
    client = client_for("clerk")
    valid_invoice["lines"].append(dict(valid_invoice["lines"][0], quantity="3", unit_price="33.33"))
    blue = post(client, "/api/v1/invoices", valid_invoice).json()
    first = post(
        client, f"/api/v1/invoices/{blue['number']}/red-letter", {"lines": [{"line_no": 2, "quantity": "1"}]}
    )
    assert first.status_code == 201, first.content
    red = first.json()
    assert red["colour"] == "red" and red["original_number"] == blue["number"]
    assert red["total_amount"] == "-33.33" and red["total_with_tax_in_words"].startswith("负")
    assert client.get(f"/api/v1/invoices/{blue['number']}").json()["state"] == "partly_red"
    rest = post(
        client, f"/api/v1/invoices/{blue['number']}/red-letter", {"full": True, "confirmation_no": "A1"}
    ).json()
    assert int(blue["total_amount"].replace(".", "")) == -(
        int(red["total_amount"].replace(".", "")) + int(rest["total_amount"].replace(".", ""))
    )
    assert client.get(f"/api/v1/invoices/{blue['number']}").json()["state"] == "fully_red"
    again = post(client, f"/api/v1/invoices/{blue['number']}/red-letter", {"full": True})
    assert again.status_code == 409


def test_receipt_endpoint_gives_a_fresh_receipt_against_the_latest_head(client_for, valid_invoice):
    client = client_for("clerk")
    first = post(client, "/api/v1/invoices", valid_invoice).json()
    post(client, "/api/v1/invoices", valid_invoice)
    fresh = client.get(f"/api/v1/invoices/{first['number']}/receipt").json()
    assert fresh["head"]["size"] == 2 and fresh["index"] == 0
    assert verify_receipt(fresh, keys.registry()).ok


def test_idempotent_retry_returns_the_same_invoice(client_for, valid_invoice):
    client = client_for("clerk")
    first = post(client, "/api/v1/invoices", valid_invoice, **{"Idempotency-Key": "k-1"})
    again = post(client, "/api/v1/invoices", valid_invoice, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Invoice.objects.count() == 1


def test_same_idempotency_key_with_another_body_is_422(client_for, valid_invoice):
    client = client_for("clerk")
    post(client, "/api/v1/invoices", valid_invoice, **{"Idempotency-Key": "k-2"})
    valid_invoice["remark"] = "changed"
    response = post(client, "/api/v1/invoices", valid_invoice, **{"Idempotency-Key": "k-2"})
    assert response.status_code == 422
    assert response.json()["type"].endswith("idempotency_key_reused")
    assert Invoice.objects.count() == 1


def test_idempotency_keys_expire_after_the_configured_time(client_for, valid_invoice, settings):
    import time_machine
    from django.utils import timezone

    settings.FAPIAO_IDEMPOTENCY_TTL_HOURS = 1
    client = client_for("clerk")
    first = post(client, "/api/v1/invoices", valid_invoice, **{"Idempotency-Key": "k-3"}).json()
    with time_machine.travel(timezone.now() + timezone.timedelta(hours=2)):
        valid_invoice["remark"] = "a new request under an expired key"
        later = post(client, "/api/v1/invoices", valid_invoice, **{"Idempotency-Key": "k-3"})
    assert later.status_code == 201
    assert later.json()["number"] != first["number"]
    assert Invoice.objects.count() == 2


def test_openapi_documents_the_invoice_body(client):
    schema = client.get("/api/v1/openapi.json").json()
    post_op = schema["paths"]["/api/v1/invoices"]["post"]
    body = post_op["requestBody"]["content"]["application/json"]["schema"]
    assert "lines" in json.dumps(body)
    assert any(p["name"] == "Idempotency-Key" for p in post_op["parameters"])


def test_red_letter_reason_is_written_on_the_red_invoice(client_for, valid_invoice):
    """红冲原因 (issue 14): one of four codes; anything else is 422 at ``reason`` and nothing is written."""
    clerk = client_for("clerk")

    def send(url: str, body: object) -> Any:
        return clerk.post(url, data=json.dumps(body), content_type="application/json")

    blue = send("/api/v1/invoices", valid_invoice).json()
    url = f"/api/v1/invoices/{blue['number']}/red-letter"
    refused = send(url, {"full": True, "reason": "作废"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "reason"
    assert Invoice.objects.filter(colour="red").count() == 0
    made = send(url, {"full": True, "reason": "return"})
    assert made.status_code == 201, made.content.decode()
    assert Invoice.objects.get(colour="red").remark.startswith("红冲原因：销货退回")


def test_the_api_read_answers_what_the_orm_path_answers(client_for, valid_invoice):
    """The API's read runs prepared statements (``rows.select``), not the pages' ORM query: for a
    blue and a red invoice its body is the one the ORM-loaded invoice gives, lines in order."""
    from fapiao.invoices.presenters import invoice_representation

    client = client_for("clerk")
    valid_invoice["lines"].append(dict(valid_invoice["lines"][0], name="*信息技术服务*维护", quantity="2"))
    blue = post(client, "/api/v1/invoices", valid_invoice).json()
    red = post(client, f"/api/v1/invoices/{blue['number']}/red-letter", {"full": True}).json()
    for number in (blue["number"], red["number"]):
        read = client.get(f"/api/v1/invoices/{number}")
        assert read.status_code == 200, read.content
        loaded = (
            Invoice.objects.select_related("merchant", "original")
            .prefetch_related("lines")
            .get(number=number)
        )
        assert read.json() == json.loads(json.dumps(invoice_representation(loaded)))
    body = client.get(f"/api/v1/invoices/{red['number']}").json()
    assert body["original_number"] == blue["number"]
    assert [line["no"] for line in body["lines"]] == [1, 2]
