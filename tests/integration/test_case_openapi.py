"""The case API as /api/v1/openapi.json documents it (docs/api.md): every route, a summary each,
the problem answers, request bodies with examples that the services really accept, no dangling
references."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest
from django.utils import timezone

from fapiao.core.case_claim import parse_claim
from fapiao.recovery.remedies import parse_note, parse_remedy

pytestmark = pytest.mark.django_db

CASE = "/api/v1/cases/{case_id}"
#: docs/api.md, plus what the issue adds: editing, the reviewers' claim handling, files, the receipt.
DOCUMENTED = {
    ("post", "/api/v1/cases"),
    ("get", "/api/v1/cases"),
    ("get", "/api/v1/cases/reasons"),
    ("get", CASE),
    ("patch", CASE),
    *(
        ("post", f"{CASE}/{action}")
        for action in (
            "submit",
            "evidence",
            "messages",
            "claim",
            "request-info",
            "approve",
            "reject",
            "resubmit",
            "resolve",
            "confirm",
            "reopen",
            "withdraw",
            "release",
            "assign",
        )
    ),
    ("get", f"{CASE}/evidence/{{evidence_id}}"),
    ("get", f"{CASE}/receipt.pdf"),
}


@pytest.fixture
def schema(client: Any) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def case_operations(schema: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/cases")
        for method, operation in operations.items()
    }


def json_body(operation: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = operation["requestBody"]["content"]["application/json"]
    return content


def test_every_case_route_is_documented_with_a_summary(schema):
    operations = case_operations(schema)
    assert set(operations) == DOCUMENTED
    for (method, path), operation in operations.items():
        assert operation.get("summary", "").strip(), (method, path)
        assert operation.get("tags") == ["cases"], (method, path)
        # What each route can answer: a case in the path can be missing (404); writes and the
        # receipt of an unsubmitted case meet the case's state (409).
        problems = {"401", "403", "422", "429", "503"}
        if "{case_id}" in path:
            problems.add("404")
        if method in ("post", "patch") or path.endswith("receipt.pdf"):
            problems.add("409")
        assert problems <= set(operation["responses"]), (method, path, sorted(operation["responses"]))
        for status in problems:
            body = operation["responses"][status]["content"]["application/problem+json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Problem"}, (method, path, status)


def test_action_bodies_ask_for_the_version(schema):
    operations = case_operations(schema)
    versioned = [key for key in DOCUMENTED if key[0] in ("post", "patch") and key[1] != "/api/v1/cases"]
    for method, path in versioned:
        if path.endswith(("/evidence", "/messages", "/release", "/assign")):
            continue
        body = json_body(operations[(method, path)])["schema"]
        assert "version" in body["properties"] and "version" in body["required"], (method, path)


def test_the_file_upload_is_documented_as_multipart(schema):
    upload = case_operations(schema)[("post", f"{CASE}/evidence")]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["required"]) == {"file", "type"}
    assert "system_receipt" in form["properties"]["type"]["enum"]
    assert "413" in upload["responses"]


def test_the_claim_example_is_a_claim_the_service_accepts(schema):
    body = json_body(case_operations(schema)[("post", "/api/v1/cases")])
    example = body["example"]
    assert body["schema"]["example"] == example
    assert set(example) <= set(body["schema"]["properties"])
    claim = parse_claim(example, today=max(timezone.localdate(), date.fromisoformat(example["issued_on"])))
    assert claim.number == example["number"] and claim.total_with_tax > 0


def test_the_resolve_example_is_a_remedy_the_service_accepts(schema):
    """A remedy carries no invoice content: the example is the remedy, the version and a note."""
    body = json_body(case_operations(schema)[("post", f"{CASE}/resolve")])
    example = body["example"]
    assert set(example) == {"version", "remedy", "note"} == set(body["schema"]["properties"])
    assert example["remedy"] in body["schema"]["properties"]["remedy"]["enum"]
    assert isinstance(example["version"], int)
    assert parse_remedy(example["remedy"]).value == example["remedy"] and parse_note(example["note"])


def test_no_case_route_points_at_a_schema_the_document_lacks(schema):
    text = json.dumps(
        {path: ops for path, ops in schema["paths"].items() if path.startswith("/api/v1/cases")}
    )
    referenced = set(re.findall(r'"#/components/schemas/([^"]+)"', text))
    assert referenced <= set(schema["components"]["schemas"]), referenced - set(
        schema["components"]["schemas"]
    )
    assert "$defs" not in text


def test_the_edit_example_is_a_claim_with_its_version(schema):
    body = json_body(case_operations(schema)[("patch", CASE)])
    example = dict(body["example"])
    assert isinstance(example.pop("version"), int)
    parse_claim(example, today=max(timezone.localdate(), date.fromisoformat(example["issued_on"])))


def test_opening_a_draft_documents_the_idempotency_key(schema):
    parameters = case_operations(schema)[("post", "/api/v1/cases")]["parameters"]
    assert any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters)


def test_no_route_at_all_points_at_a_schema_the_document_lacks(schema):
    text = json.dumps(schema["paths"])
    referenced = set(re.findall(r'"#/components/schemas/([^"]+)"', text))
    dangling = referenced - set(schema["components"]["schemas"])
    assert not dangling, dangling
