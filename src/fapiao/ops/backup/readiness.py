"""``/readyz``'s ``backup``: ``ok``, ``failed`` (the latest verification found problems) or
``overdue`` (no backup verified in ``FAPIAO_BACKUP_MAX_AGE_HOURS`` while there is data older than
that).  A fresh installation is ``ok`` until it has data worth losing."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from fapiao.audit.models import AuditRecord
from fapiao.invoices.models import Invoice
from fapiao.ops.models import BackupVerification


def latest_result() -> tuple[datetime, bool] | None:
    """When the latest finished backup verification ended and whether it passed (monitoring reads
    it at every scrape: one probe of the finished_at index)."""
    finished = BackupVerification.objects.filter(finished_at__isnull=False).order_by("-finished_at", "-pk")
    latest = finished.values_list("finished_at", "ok").first()
    if latest is None or latest[0] is None:
        return None
    return latest[0], latest[1]


def readiness() -> str:
    latest = (
        BackupVerification.objects.filter(finished_at__isnull=False).order_by("-finished_at", "-pk").first()
    )
    if latest is not None and not latest.ok:
        return "failed"
    limit = timezone.now() - timedelta(hours=settings.FAPIAO_BACKUP_MAX_AGE_HOURS)
    if latest is not None and latest.finished_at is not None and latest.finished_at >= limit:
        return "ok"
    oldest_invoice = Invoice.objects.order_by("pk").values_list("issued_at", flat=True).first()
    oldest_record = AuditRecord.objects.order_by("pk").values_list("at", flat=True).first()
    data_since = min((t for t in (oldest_invoice, oldest_record) if t is not None), default=None)
    return "overdue" if data_since is not None and data_since < limit else "ok"
