"""Health endpoints for load balancers and monitoring."""

from __future__ import annotations

import logging
import shutil

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from fapiao.core.errors import FapiaoError
from fapiao.ledger.incidents import open_incident_count
from fapiao.ledger.verify_runs import readiness
from fapiao.ops.backup.readiness import readiness as backup_readiness
from fapiao.platform import keys
from fapiao.platform.metrics import mark_unavailable

MIN_FREE_DISK_BYTES = 512 * 1024 * 1024
log = logging.getLogger(__name__)


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
    checks["signing_key"] = _signing_key_check()
    checks["incidents"] = _incidents_check() if checks["database"] == "ok" else "unknown"
    checks["ledger_verify"] = _verify_check() if checks["database"] == "ok" else "unknown"
    checks["backup"] = _backup_check() if checks["database"] == "ok" else "unknown"
    ready = checks["database"] == "ok"
    status = (
        "ok" if all(value == "ok" for value in checks.values()) else ("degraded" if ready else "unavailable")
    )
    response = JsonResponse({"status": status, "checks": checks}, status=200 if ready else 503)
    if not ready:
        response["Retry-After"] = str(settings.FAPIAO_RETRY_AFTER_SECONDS)
        mark_unavailable(response, "not_ready")
    return response


def _verify_check() -> str:
    """The latest ``ledger verify`` over every log: ok, failed or overdue (fapiao.ledger.verify_runs)."""

    try:
        return readiness()
    except DatabaseError:
        return "unknown"


def _backup_check() -> str:
    """The latest verified backup: ok, failed or overdue (fapiao.ops.backup.readiness)."""

    try:
        return backup_readiness()
    except DatabaseError:
        return "unknown"


def _signing_key_check() -> str:
    """Whether the current signing key loads ("ok"); a fresh installation makes its first key here."""

    try:
        keys.signing_key()
    except (FapiaoError, OSError, ValueError):
        log.exception("the ledger signing key is unavailable")
        return "unavailable"
    return "ok"


def _incidents_check() -> str:
    """Open incidents: "ok", or "open: N" while N integrity incidents are not yet resolved."""

    try:
        count = open_incident_count()
    except DatabaseError:
        return "unknown"
    return f"open: {count}" if count else "ok"
