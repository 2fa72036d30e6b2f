"""What a run of ``audit verify`` leaves behind: an :class:`~fapiao.audit.models.AuditVerifyRun` row.

Verify itself only reads.  The command line and the audit verification page keep each run, so
monitoring can tell when the audit trail was last verified and whether it passed
(``fapiao_audit_last_verified_timestamp_seconds``, ``fapiao_audit_last_verify_ok``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from fapiao.audit.models import AuditVerifyRun
from fapiao.audit.verify import AuditReport


def record_run(report: AuditReport, *, log: str | None, source: str, by: Any = None) -> AuditVerifyRun:
    """Keep the run: ``log`` is what was asked for (None: every audit log)."""
    return AuditVerifyRun.objects.create(
        finished_at=timezone.now(),
        log=(report.logs[0].log if log and report.logs else "")[:40],
        deep=report.deep,
        ok=report.ok,
        errors=report.errors,
        logs=len(report.logs),
        records=sum(item.records for item in report.logs),
        elapsed_seconds=round(report.elapsed, 3),
        source=source,
        by=by if getattr(by, "is_authenticated", False) else None,
    )


def latest_full_result() -> tuple[datetime, bool] | None:
    """When the latest run over every audit log finished and whether it passed (a ``--log`` run is
    not one); monitoring reads it at every scrape."""
    runs = AuditVerifyRun.objects.filter(log="").order_by("-finished_at", "-pk")
    return runs.values_list("finished_at", "ok").first()
