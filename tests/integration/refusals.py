"""What a refused request must look like (issue 13, findings 9–16): a 4xx problem document with the
expected code — or a page with the message — and nothing changed anywhere, the audit trail included."""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps

from fapiao.recovery.models import Case, CaseMessage


def world() -> dict[str, Any]:
    """Rows per table (audit trail included: a 422 writes no record), and each case's state,
    version and texts."""
    rows = {model._meta.label: model.objects.count() for model in apps.get_models()}
    cases = {
        str(case.uid): (case.state, case.version, case.decision_reason, case.claimed_buyer_name)
        for case in Case.objects.all()
    }
    messages = sorted(CaseMessage.objects.values_list("body", flat=True))
    return {"rows": rows, "cases": cases, "messages": messages}


class Unchanged:
    """``with Unchanged(): …`` fails if anything changed inside the block."""

    def __enter__(self) -> Unchanged:
        self.before = world()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            assert world() == self.before


def problem(response: Any, status: int, code: str = "validation_failed") -> dict[str, Any]:
    """The answer is a problem document with this status and type code (and no traceback)."""
    assert response.status_code == status, response.content.decode(errors="replace")[:2000]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    assert body["type"].rsplit("/", 1)[-1] == code, body
    assert body["status"] == status
    for text in [body["detail"], *(error["message"] for error in body["errors"])]:
        assert text.strip() and "Traceback" not in text, text
    return body


def field_codes(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(error["field"], error["code"]) for error in body["errors"]}


def send(client: Any, method: str, path: str, data: object) -> Any:
    """``data`` as the JSON body (a ``str`` is sent as it is)."""
    text = data if isinstance(data, str) else json.dumps(data)
    return client.generic(method, path, data=text, content_type="application/json")
