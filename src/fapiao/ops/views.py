"""Health endpoints for load balancers and monitoring."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from fapiao.ops.health import readiness_checks
from fapiao.platform.metrics import mark_unavailable


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers and there is disk to write to.

    ``degraded`` (still HTTP 200: reads are served) while an integrity incident is open, the
    signing key cannot be loaded (writes cannot be acknowledged with a receipt), the latest
    ``ledger verify`` over every log failed or is overdue, or the latest backup verification
    failed or is overdue.
    """
    checks = readiness_checks()
    ready = checks["database"] == "ok"
    status = (
        "ok" if all(value == "ok" for value in checks.values()) else ("degraded" if ready else "unavailable")
    )
    response = JsonResponse({"status": status, "checks": checks}, status=200 if ready else 503)
    if not ready:
        response["Retry-After"] = str(settings.FAPIAO_RETRY_AFTER_SECONDS)
        mark_unavailable(response, "not_ready")
    return response
