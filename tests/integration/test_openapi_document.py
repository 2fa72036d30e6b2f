"""/api/v1/openapi.json tells the truth about errors (issue 13, finding 17): every operation lists
every problem answer it can give, each as ``application/problem+json`` with the ``Problem`` schema,
and its links lead to operations that exist.  What the server really answers is
tests/integration/test_api_schemathesis.py's part."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PROBLEM = {"$ref": "#/components/schemas/Problem"}
LEDGER = "/api/v1/ledger/{log}"


@pytest.fixture
def document(client: Client) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def problems_it_can_answer(label: str, operation: dict[str, Any]) -> set[str]:
    """503 anywhere (the database can be gone); 422 anywhere (a control character in the path or
    the query string, declared or not); 401, 403 and 429 (an anonymous client refused too often)
    wherever a sign-in is needed; 413 for a body; 404 when the path names something."""
    expected = {"422", "503"}
    if operation.get("security"):
        expected |= {"401", "403", "429"}
    if operation.get("requestBody"):
        expected.add("413")
    if "{" in label:
        expected.add("404")
    return expected


def test_every_operation_documents_every_problem_it_can_answer(document):
    missing = {
        label: sorted(problems_it_can_answer(label, operation) - set(operation["responses"]))
        for label, operation in operations(document)
    }
    assert not {label: lacking for label, lacking in missing.items() if lacking}


def test_every_problem_answer_is_a_problem_document(document):
    wrong = [
        (label, status, response.get("content"))
        for label, operation in operations(document)
        for status, response in operation["responses"].items()
        if int(status) >= 400 and response.get("content") != {"application/problem+json": {"schema": PROBLEM}}
    ]
    assert not wrong


def test_the_problem_schema_is_the_served_shape(document):
    schemas = document["components"]["schemas"]
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "errors"}
    item = problem["properties"]["errors"]["items"]
    assert set(schemas[item["$ref"].rsplit("/", 1)[-1]]["required"]) == {"field", "code", "message"}


def test_retry_after_and_www_authenticate_are_documented(document):
    for label, operation in operations(document):
        assert "Retry-After" in operation["responses"]["503"]["headers"], label
        if "429" in operation["responses"]:
            assert "Retry-After" in operation["responses"]["429"]["headers"], label
        if "401" in operation["responses"]:
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], label


def test_the_ledger_reads_document_their_refusals(document):
    """The head, entries and proofs answered 401, 404 and 422 while documenting only 200."""
    for path in ("/head", "/entries", "/proof/inclusion", "/proof/consistency"):
        responses = document["paths"][LEDGER + path]["get"]["responses"]
        assert {"200", "401", "403", "404", "422", "429", "503"} <= set(responses), path
        assert responses["200"]["content"]["application/json"]["schema"]["$ref"], path
    public_keys = document["paths"]["/api/v1/ledger/public-keys"]["get"]
    assert "security" not in public_keys and "401" not in public_keys["responses"]
    assert set(public_keys["responses"]) == {"200", "422", "503"}


def test_the_audit_proof_declares_its_index_required(document):
    parameters = document["paths"]["/api/v1/audit/logs/{log}/proof"]["get"]["parameters"]
    assert {p["name"]: p["required"] for p in parameters if p["in"] == "query"} == {"index": True}


def test_searches_document_the_filters_they_read(document):
    for path, some in (
        ("/api/v1/invoices", {"number", "buyer", "date_from", "state", "page"}),
        ("/api/v1/cases", {"state", "older_than_days", "q", "page"}),
        ("/api/v1/audit", {"actor", "action", "date_to", "page"}),
    ):
        parameters = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert some <= parameters, path


def test_files_are_documented_with_their_media_types(document):
    case = "/api/v1/cases/{case_id}"
    pdf = document["paths"][f"{case}/receipt.pdf"]["get"]["responses"]["200"]["content"]
    assert set(pdf) == {"application/pdf"}
    download = document["paths"][f"{case}/evidence/{{evidence_id}}"]["get"]["responses"]["200"]["content"]
    assert set(download) == {"application/octet-stream"}


def test_links_lead_to_operations_and_parameters_that_exist(document):
    by_id = {operation["operationId"]: operation for _label, operation in operations(document)}
    links = [
        (label, name, link)
        for label, operation in operations(document)
        for response in operation["responses"].values()
        for name, link in response.get("links", {}).items()
    ]
    assert {"fapiao_recovery_api_submit", "fapiao_invoices_api_red_letter"} <= {
        link["operationId"] for _label, _name, link in links
    }
    for label, name, link in links:
        target = by_id[link["operationId"]]
        assert set(link["parameters"]) <= {p["name"] for p in target["parameters"]}, (label, name)
        if "requestBody" in link:
            body = target["requestBody"]["content"]["application/json"]["schema"]
            assert set(link["requestBody"]) <= set(body["properties"]), (label, name)


def test_what_is_served_is_what_is_documented(client_for, demo):
    """A few real refusals checked against the document by hand (schemathesis does the rest)."""
    clerk = client_for("clerk")
    answers = [
        (Client().get("/api/v1/ledger/91110108MA01ABCD84/head"), "401"),
        (clerk.get("/api/v1/ledger/91110105MA01EFGH56/head"), "404"),
        (clerk.get("/api/v1/ledger/91110108MA01ABCD84/entries", {"start": "x", "end": 1}), "422"),
        (client_for("auditor").get("/api/v1/audit/logs/staff/proof"), "422"),
        (client_for("madmin").post("/api/v1/accounts/users", "{", content_type="application/json"), "422"),
    ]
    for response, status in answers:
        assert str(response.status_code) == status, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert set(json.loads(response.content)) == {"type", "title", "status", "detail", "errors"}
