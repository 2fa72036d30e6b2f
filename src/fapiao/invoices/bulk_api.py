"""/api/v1/invoice-batches — the bulk issuing API (:mod:`fapiao.invoices.bulk`); a thin handler."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from ninja import Router

from fapiao.invoices import bulk, schemas
from fapiao.platform.openapi import documented
from fapiao.platform.requests import large_json_body

router = Router(tags=["invoices"])


def _documented() -> dict[str, Any]:
    extra = documented(409, 413, extra=schemas.body_schema(schemas.BatchIn))
    extra["responses"][429] = {
        **extra["responses"][429],
        "description": "This token sent more than `FAPIAO_BATCHES_PER_MINUTE` batches this minute "
        "(`batch_rate_limited`), or the address's anonymous refusals passed the hour's limit; "
        "`Retry-After` says when to retry.",
    }
    extra["responses"][413] = {
        **extra["responses"][413],
        "description": "The body is larger than `FAPIAO_BATCH_MAX_BYTES` (32 MiB by default).",
    }
    return extra


@router.post(
    "",
    response={200: schemas.BatchOut},
    openapi_extra=_documented(),
    summary="Issue up to 1,000 invoices at once",
)
def issue_batch(request: HttpRequest) -> JsonResponse:
    """Each item is issued or refused on its own (``all_or_nothing``: all or none); the answer
    comes once every issued item is durable, one result per item in the order sent."""
    token = getattr(request, "api_token", None)
    bulk.check_rate(f"token:{token.pk}" if token is not None else f"user:{request.user.pk}")
    result = bulk.issue_batch(
        user=request.user,  # type: ignore[arg-type]
        payload=large_json_body(request, max_bytes=settings.FAPIAO_BATCH_MAX_BYTES),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    response = JsonResponse(result.body, status=result.status, json_dumps_params={"ensure_ascii": False})
    if result.replayed:
        response["Idempotent-Replayed"] = "true"
    return response
