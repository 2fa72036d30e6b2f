"""What ``/readyz`` checks, in one place: the endpoint answers with it, the operators' overview
(运维概览) shows it."""

from __future__ import annotations

import logging
import shutil

from django.conf import settings
from django.db import DatabaseError, connection

from fapiao.core.errors import FapiaoError
from fapiao.ledger.incidents import open_incident_count
from fapiao.ledger.verify_runs import readiness
from fapiao.ops.backup.readiness import readiness as backup_readiness
from fapiao.platform import keys

MIN_FREE_DISK_BYTES = 512 * 1024 * 1024
log = logging.getLogger(__name__)


def readiness_checks() -> dict[str, str]:
    """Each check's name and result: ``database``, ``disk``, ``signing_key``, ``incidents``,
    ``ledger_verify``, ``backup`` — ``ok`` when healthy, otherwise what is wrong."""
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
    return checks


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
