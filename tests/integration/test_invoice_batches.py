"""POST /api/v1/invoice-batches end to end through Django's test client, on SQLite and PostgreSQL:
per-item results and receipts, idempotency per item and per batch, tenant isolation, bad input
(the database holds exactly the good items), limits, scopes and the OpenAPI document."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fapiao.audit.models import AuditRecord
from fapiao.core.receipt import verify_receipt
from fapiao.invoices.models import Invoice
from fapiao.ledger.models import LogEntry
from fapiao.platform import keys

pytestmark = pytest.mark.django_db
PATH = "/api/v1/invoice-batches"


def post(client: Any, body: object, **headers: str) -> Any:
    return client.post(PATH, data=json.dumps(body), content_type="application/json", headers=headers)


def batch(invoice: dict[str, Any], keys_: list[str], **extra: Any) -> dict[str, Any]:
    return {"items": [{"key": key, "invoice": copy.deepcopy(invoice)} for key in keys_], **extra}


def bad(invoice: dict[str, Any]) -> dict[str, Any]:
    broken = copy.deepcopy(invoice)
    broken["lines"][0]["quantity"] = "abc"
    return broken


def test_every_item_is_issued_with_a_receipt_sharing_the_batch_head(client_for, valid_invoice):
    response = post(client_for("clerk"), batch(valid_invoice, ["a", "b", "c"]))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["count"], body["issued"], body["failed"]) == (3, 3, 0)
    assert [item["key"] for item in body["items"]] == ["a", "b", "c"]
    heads = set()
    for item in body["items"]:
        assert item["status"] == 201 and item["replayed"] is False
        verdict = verify_receipt(item["invoice"]["receipt"], keys.registry())
        assert verdict.ok, verdict
        assert verdict.entry is not None and verdict.entry["invoice"]["number"] == item["invoice"]["number"]
        heads.add(json.dumps(item["invoice"]["receipt"]["head"], sort_keys=True))
    assert len(heads) == 1  # one commit, one signed head for the whole batch
    numbers = [item["invoice"]["number"] for item in body["items"]]
    assert sorted(Invoice.objects.values_list("number", flat=True)) == sorted(numbers)
    assert LogEntry.objects.count() == 3
    assert AuditRecord.objects.filter(action="invoice.issue").count() == 3


def test_a_bad_item_does_not_block_the_others(client_for, valid_invoice):
    body = batch(valid_invoice, ["good-1", "bad", "good-2"])
    body["items"][1]["invoice"] = bad(valid_invoice)
    response = post(client_for("clerk"), body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["issued"], answer["failed"]) == (2, 1)
    refused = answer["items"][1]
    assert refused["status"] == 422 and "invoice" not in refused
    assert refused["problem"]["type"].endswith("validation_failed")
    assert [e["field"] for e in refused["problem"]["errors"]] == ["lines.0.quantity"]
    good = {answer["items"][0]["invoice"]["number"], answer["items"][2]["invoice"]["number"]}
    assert set(Invoice.objects.values_list("number", flat=True)) == good
    assert LogEntry.objects.count() == 2


def test_all_or_nothing_refuses_the_whole_batch_and_writes_nothing(client_for, valid_invoice):
    body = batch(valid_invoice, ["x", "y", "z"], all_or_nothing=True)
    body["items"][2]["invoice"] = bad(valid_invoice)
    response = post(client_for("clerk"), body)
    assert response.status_code == 422, response.content
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == ["items.2.invoice.lines.0.quantity"]
    assert Invoice.objects.count() == 0 and LogEntry.objects.count() == 0
    # Nothing was claimed: the same keys with a good body go through.
    body["items"][2]["invoice"] = copy.deepcopy(valid_invoice)
    assert post(client_for("clerk"), body).json()["issued"] == 3


def test_all_or_nothing_undoes_items_written_before_a_failure_in_the_unit(client_for, valid_invoice):
    client = client_for("clerk")
    assert post(client, batch(valid_invoice, ["taken"])).json()["issued"] == 1
    other = copy.deepcopy(valid_invoice)
    other["remark"] = "another body"
    body = {
        "all_or_nothing": True,
        "items": [{"key": "fresh", "invoice": valid_invoice}, {"key": "taken", "invoice": other}],
    }
    response = post(client, body)
    assert response.status_code == 422, response.content
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("items.1.key", "idempotency_key_reused")
    ]
    assert Invoice.objects.count() == 1 and LogEntry.objects.count() == 1


def test_item_keys_are_idempotent_across_batches_and_the_single_post(client_for, valid_invoice):
    client = client_for("clerk")
    single = client.post(
        "/api/v1/invoices", data=json.dumps(valid_invoice), content_type="application/json",
        headers={"Idempotency-Key": "k1"},
    )  # fmt: skip
    assert single.status_code == 201
    first = post(client, batch(valid_invoice, ["k1", "k2"])).json()
    assert first["items"][0]["replayed"] is True
    assert first["items"][0]["invoice"]["number"] == single.json()["number"]
    assert first["items"][1]["replayed"] is False
    again = post(client, batch(valid_invoice, ["k2", "k3"])).json()
    assert again["items"][0]["replayed"] is True
    assert again["items"][0]["invoice"] == first["items"][1]["invoice"]
    assert Invoice.objects.count() == 3


def test_an_item_key_reused_with_another_body_is_that_items_problem(client_for, valid_invoice):
    client = client_for("clerk")
    post(client, batch(valid_invoice, ["same"]))
    other = copy.deepcopy(valid_invoice)
    other["remark"] = "changed"
    body = {"items": [{"key": "same", "invoice": other}, {"key": "new", "invoice": valid_invoice}]}
    answer = post(client, body).json()
    assert answer["items"][0]["status"] == 422
    assert answer["items"][0]["problem"]["type"].endswith("idempotency_key_reused")
    assert answer["items"][1]["status"] == 201
    assert Invoice.objects.count() == 2


def test_the_batch_key_replays_the_whole_answer(client_for, valid_invoice):
    client = client_for("clerk")
    body = batch(valid_invoice, ["r1", "r2"])
    first = post(client, body, **{"Idempotency-Key": "batch-1"})
    second = post(client, body, **{"Idempotency-Key": "batch-1"})
    assert second.status_code == 200 and second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Invoice.objects.count() == 2
    other = post(client, batch(valid_invoice, ["r3"]), **{"Idempotency-Key": "batch-1"})
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency_key_reused")
    assert Invoice.objects.count() == 2


def test_keys_and_invoices_are_the_merchants_own(client_for, valid_invoice):
    mine = post(client_for("clerk"), batch(valid_invoice, ["shared-key"])).json()
    theirs = post(client_for("clerk2"), batch(valid_invoice, ["shared-key"])).json()
    assert mine["items"][0]["replayed"] is False and theirs["items"][0]["replayed"] is False
    assert theirs["items"][0]["invoice"]["seller"] != mine["items"][0]["invoice"]["seller"]
    number = mine["items"][0]["invoice"]["number"]
    assert client_for("clerk2", "read").get(f"/api/v1/invoices/{number}").status_code == 404
    assert Invoice.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"items": []}, "items", "empty"),
        ({}, "items", "required"),
        ([], "body", "invalid"),
        ({"items": [{"key": "a", "invoice": {}}], "extra": 1}, "extra", "unknown_field"),
        ({"items": [{"key": "a", "invoice": {}}], "all_or_nothing": "yes"}, "all_or_nothing", "invalid"),
        ({"items": [{"invoice": {}}]}, "items.0.key", "bad_idempotency_key"),
        ({"items": [{"key": "x" * 256, "invoice": {}}]}, "items.0.key", "bad_idempotency_key"),
        ({"items": [{"key": "a"}]}, "items.0.invoice", "required"),
        ({"items": ["a"]}, "items.0", "invalid"),
    ],
)
def test_a_malformed_batch_is_refused_whole(client_for, body, field, code):
    response = post(client_for("clerk"), body)
    assert response.status_code == 422, response.content
    assert (field, code) in [(e["field"], e["code"]) for e in response.json()["errors"]]
    assert Invoice.objects.count() == 0


def test_duplicate_keys_in_one_batch_are_refused(client_for, valid_invoice):
    response = post(client_for("clerk"), batch(valid_invoice, ["d", "e", "d"]))
    assert response.status_code == 422
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("items.2.key", "duplicate_key")]
    assert Invoice.objects.count() == 0


def test_over_a_thousand_items_is_refused(client_for, valid_invoice):
    response = post(client_for("clerk"), {"items": [{"key": str(i), "invoice": {}} for i in range(1001)]})
    assert response.status_code == 422
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("items", "too_many")]
    assert Invoice.objects.count() == 0


def test_the_body_limit_is_the_batch_limit_not_the_servers(client_for, valid_invoice, settings):
    big = batch(valid_invoice, ["big"])
    big["items"][0]["invoice"]["remark"] = "备" * 10  # a body over 8 MiB is not needed: lower the limit
    settings.FAPIAO_BATCH_MAX_BYTES = len(json.dumps(big)) - 1
    response = post(client_for("clerk"), big)
    assert response.status_code == 413 and response.json()["type"].endswith("too_large")
    assert Invoice.objects.count() == 0
    settings.FAPIAO_BATCH_MAX_BYTES = 32 * 1024 * 1024
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000  # the server-wide limit does not apply here
    assert post(client_for("clerk"), batch(valid_invoice, ["b1", "b2", "b3"])).json()["issued"] == 3


def test_tokens_are_limited_per_minute(client_for, valid_invoice, settings):
    settings.FAPIAO_BATCHES_PER_MINUTE = 2
    client = client_for("clerk")
    assert post(client, batch(valid_invoice, ["l1"])).status_code == 200
    assert post(client, batch(valid_invoice, ["l2"])).status_code == 200
    refused = post(client, batch(valid_invoice, ["l3"]))
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert refused.json()["type"].endswith("batch_rate_limited")
    assert post(client_for("clerk2"), batch(valid_invoice, ["l3"])).status_code == 200  # its own count
    assert Invoice.objects.count() == 3


@pytest.mark.parametrize(("user", "scope"), [("clerk", "read"), ("reviewer", "write")])
def test_read_tokens_and_staff_cannot_issue(client_for, valid_invoice, user, scope):
    response = post(client_for(user, scope), batch(valid_invoice, ["n"]))
    assert response.status_code == 403
    assert Invoice.objects.count() == 0


def test_the_openapi_document_describes_the_operation(client):
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"][PATH]["post"]
    assert {"200", "401", "403", "409", "413", "422", "429", "503"} <= set(operation["responses"])
    content = operation["requestBody"]["content"]["application/json"]
    assert content["example"]["items"][0]["key"]
    assert content["schema"]["properties"]["items"]["maxItems"] == 1000


def test_an_item_failing_midway_undoes_only_itself(client_for, valid_invoice, monkeypatch):
    """An item that fails after its key was claimed and its number taken: the fast pass is rolled
    back, the careful pass undoes that item alone — no claim left, no number used, no entry."""
    from fapiao.core.errors import ConflictError
    from fapiao.invoices import services

    real = services.create_invoice_row

    def failing(unit, **kwargs):
        if kwargs["new"].remark == "boom":
            raise ConflictError()
        return real(unit, **kwargs)

    monkeypatch.setattr(services, "create_invoice_row", failing)
    body = batch(valid_invoice, ["m0", "m1", "m2"])
    body["items"][1]["invoice"]["remark"] = "boom"
    answer = post(client_for("clerk"), body).json()
    assert [item["status"] for item in answer["items"]] == [201, 409, 201]
    assert answer["items"][1]["problem"]["type"].endswith("conflict")
    assert Invoice.objects.count() == 2 and LogEntry.objects.count() == 2
    assert AuditRecord.objects.filter(action="invoice.issue").count() == 2
    monkeypatch.setattr(services, "create_invoice_row", real)
    again = post(client_for("clerk"), body).json()  # the failed key was not left claimed
    assert [item["replayed"] for item in again["items"]] == [True, False, True]
    serials = sorted(int(number[5:]) for number in Invoice.objects.values_list("number", flat=True))
    assert serials == list(range(serials[0], serials[0] + 3))  # no number lost to the failure
