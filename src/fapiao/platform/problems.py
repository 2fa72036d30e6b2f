"""The one place where errors become HTTP answers: RFC 9457 problem documents for the API.

Messages are translated here (the core keeps English msgids); zh-Hans is the default.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext

from fapiao.core.errors import FapiaoError, FieldError, ValidationFailed, _
from fapiao.platform.metrics import mark_unavailable

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://fapiao-vault.invalid/problems/"
TITLES = {
    400: _("Bad request"),
    401: _("Authentication required"),
    403: _("Forbidden"),
    404: _("Not found"),
    405: _("Method not allowed"),
    409: _("Conflict"),
    413: _("Request too large"),
    422: _("Invalid request"),
    429: _("Too many requests"),
    500: _("Internal error"),
    502: _("Bad gateway"),
    503: _("Service unavailable"),
}
THROTTLED = _(
    "Too many refused requests came from your network address this hour; try again in {minutes} minutes."
)


class ProblemResponse(JsonResponse):
    def __init__(self, body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(
            body,
            status=status,
            content_type="application/problem+json",
            json_dumps_params={"ensure_ascii": False},
            headers=headers,
        )


def field_error_document(error: FieldError) -> dict[str, str]:
    return {"field": error.field, "code": error.code, "message": error.render(gettext)}


def problem(
    status: int,
    *,
    code: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    return ProblemResponse(
        body(status, code=code, detail=detail, errors=errors), status=status, headers=headers
    )


def body(status: int, *, code: str, detail: str, errors: list[FieldError] | None = None) -> dict[str, Any]:
    """The problem document itself (RFC 9457), in the active language."""
    return {
        "type": PROBLEM_TYPE_BASE + code,
        "title": gettext(TITLES.get(status, TITLES[400])),
        "status": status,
        "detail": detail,
        "errors": [field_error_document(error) for error in errors or []],
    }


def document(error: FapiaoError) -> dict[str, Any]:
    """``error`` as a problem document, for an answer that carries several (one per bulk item)."""
    errors = error.errors if isinstance(error, ValidationFailed) else []
    return body(error.status, code=error.code, detail=error.render(gettext), errors=errors)


def throttled_detail(retry_after: int) -> str:
    return gettext(THROTTLED).format(minutes=max(1, -(-retry_after // 60)))


def too_many_requests(retry_after: int) -> ProblemResponse:
    """429 with ``Retry-After``: the client's anonymous refusals passed the hour's limit."""
    return problem(
        429,
        code="too_many_requests",
        detail=throttled_detail(retry_after),
        headers={"Retry-After": str(retry_after)},
    )


def from_error(error: FapiaoError) -> ProblemResponse:
    errors = error.errors if isinstance(error, ValidationFailed) else []
    headers = None
    if error.status == 503:
        headers = {"Retry-After": str(settings.FAPIAO_RETRY_AFTER_SECONDS)}
    if getattr(error, "retry_after", None):  # a limit says when it opens again
        headers = {"Retry-After": str(error.retry_after)}  # type: ignore[attr-defined]
    response = problem(
        error.status, code=error.code, detail=error.render(gettext), errors=errors, headers=headers
    )
    return mark_unavailable(response, error.code) if error.status == 503 else response


def database_unavailable(request: HttpRequest, error: DatabaseError) -> ProblemResponse:
    log.warning("database unavailable: %s", error, extra={"path": request.path})
    response = problem(
        503,
        code="database_unavailable",
        detail=gettext(_("The database is unavailable; nothing was saved. Please retry shortly.")),
        headers={"Retry-After": str(settings.FAPIAO_RETRY_AFTER_SECONDS)},
    )
    return mark_unavailable(response, "database_unavailable")
