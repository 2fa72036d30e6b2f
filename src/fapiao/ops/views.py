"""Health endpoints for load balancers and monitoring."""

from __future__ import annotations

import shutil

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

MIN_FREE_DISK_BYTES = 512 * 1024 * 1024


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers and there is disk to write to."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError:
        checks["database"] = "unavailable"
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(settings.VAR_DIR).free
    checks["disk"] = "ok" if free >= MIN_FREE_DISK_BYTES else "low"
    ready = checks["database"] == "ok"
    status = (
        "ok" if all(value == "ok" for value in checks.values()) else ("degraded" if ready else "unavailable")
    )
    response = JsonResponse({"status": status, "checks": checks}, status=200 if ready else 503)
    if not ready:
        response["Retry-After"] = str(settings.FAPIAO_RETRY_AFTER_SECONDS)
    return response
