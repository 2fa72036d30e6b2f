"""How the OpenAPI document describes errors: one ``Problem`` schema, served as
``application/problem+json``, and one helper that lists every problem answer an operation can give,
so the routers say only what is particular to each operation (a 404, a 409, a body, its links).

The rules the helper applies, and ``tests/integration/test_openapi_document.py`` checks for every
operation: 503 everywhere (any query can find the database gone); 422 everywhere (a control
character in the path or the query string is refused before any operation runs:
:mod:`fapiao.platform.input_guard`); 401, 403 and 429 wherever a sign-in is needed (429: an
anonymous client past the hour's refusals, :mod:`fapiao.platform.errors`); 413 wherever there is a
body; 404 wherever the path names something.
"""

from __future__ import annotations

from typing import Any

from fapiao.platform.schemas import Problem

PROBLEM_MEDIA_TYPE = "application/problem+json"
REF_TEMPLATE = "#/components/schemas/{model}"

#: What each problem status means on this API (docs/api.md, "Errors").
DESCRIPTIONS: dict[int, str] = {
    401: "Not signed in: no token, or an unknown, expired or revoked one, or a disabled user's.",
    403: (
        "Not allowed: the role (`role_forbidden`), the token's scope (`token_read_only`) or the session "
        "(`csrf_failed`, `password_change_required`, `second_factor_required`)."
    ),
    404: "No such thing, or another merchant's (existence does not leak).",
    409: "The state forbids it now (a stale version, an action the state does not allow, a duplicate).",
    413: "The request body is larger than the server takes.",
    422: "Invalid input, every problem listed in `errors`; nothing was saved.",
    429: (
        "Too many requests: this address's unauthenticated requests were refused too often this hour "
        "(`too_many_requests`); `Retry-After` says when to retry."
    ),
    502: "A server we pass the request on to refused it for good (the mail server: `mail_refused`).",
    503: "The database is unavailable; nothing was saved. `Retry-After` says when to retry.",
}
RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": RETRY_AFTER},
    503: {"Retry-After": RETRY_AFTER},
}


def problem_components() -> dict[str, Any]:
    """The component schemas the problem answers refer to."""
    schema = Problem.model_json_schema(ref_template=REF_TEMPLATE)
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {**definitions, "Problem": schema}


def problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}}},
    }
    if status in HEADERS:
        response["headers"] = HEADERS[status]
    return response


def error_responses(*statuses: int, public: bool = False) -> dict[int, Any]:
    """Every problem answer of one operation: 422 and 503 always, 401, 403 and 429 unless
    ``public``, and the operation's own ``statuses`` (404, 409, 413…)."""
    wanted = {422, 503, *statuses}
    if not public:
        wanted |= {401, 403, 429}
    return {status: problem_response(status) for status in sorted(wanted)}


def query_parameter(name: str, description: str, **schema: Any) -> dict[str, Any]:
    """An optional query parameter that the handler reads itself (a search filter)."""
    return {
        "in": "query",
        "name": name,
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


PAGE_PARAMETER = query_parameter("page", "Page number, from 1.", type="integer", minimum=1)


def link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to ``operation_id``; a ``body_…`` parameter goes into the request body."""
    body = {
        name.removeprefix("body_"): value for name, value in parameters.items() if name.startswith("body_")
    }
    found: dict[str, Any] = {
        "operationId": operation_id,
        "description": description,
        "parameters": {name: value for name, value in parameters.items() if not name.startswith("body_")},
    }
    if body:
        found["requestBody"] = body
    return found


def documented(
    *statuses: int,
    public: bool = False,
    links: dict[int, dict[str, Any]] | None = None,
    content: dict[int, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An operation's ``openapi_extra``: ``extra`` (a request body we parse ourselves, a header
    parameter), the problem answers (see :func:`error_responses`), the ``links`` from its answers
    and the media type of an answer that is not JSON (``content={200: "application/pdf"}``).

    Status keys are ints, as ninja's own, so ninja merges them into the answers it documents."""
    responses: dict[int, Any] = error_responses(*statuses, public=public)
    for status, media_type in (content or {}).items():
        binary = {"schema": {"type": "string", "format": "binary"}}
        responses[status] = {"description": "OK", "content": {media_type: binary}}
    for status, named in (links or {}).items():
        responses.setdefault(status, {})["links"] = named
    return {**(extra or {}), "responses": responses}
