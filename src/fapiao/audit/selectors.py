"""Reading the audit trail: auditors browse and filter it (by actor, action, target, merchant, date).

Every read asks the permission table first (``READ_AUDIT``: auditors).  Dates are Beijing
business dates; times are stored in UTC.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.audit.models import STAFF_LOG, AuditLog, AuditRecord
from fapiao.core.errors import FieldError, InvalidValueError, ValidationFailed
from fapiao.core.strict import parse_iso_date

BEIJING = ZoneInfo("Asia/Shanghai")
PAGE_SIZE = 50
MAX_PAGE = 10_000
FILTERS = ("actor", "action", "target", "target_type", "merchant", "date_from", "date_to")


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""  # username (exact) or part of the copied name
    action: str = ""  # an action ("invoice.issue") or its family ("invoice")
    target: str = ""  # the target's id or its text, exactly
    target_type: str = ""  # "invoices.invoice", "accounts.apitoken", "route", …
    merchant: str = ""  # a USCC, or "staff" for the staff log
    date_from: date | None = None
    date_to: date | None = None

    def as_params(self) -> dict[str, str]:
        """The filters as query parameters (for links and the export's audit record)."""
        params = {name: getattr(self, name) for name in FILTERS}
        return {
            name: value.isoformat() if isinstance(value, date) else value
            for name, value in params.items()
            if value
        }


def _clean(value: str | None) -> str:
    return unicodedata.normalize("NFKC", value or "").strip()[:200]


def parse_filters(params: dict[str, str]) -> AuditFilters:
    """Query parameters → filters, every bad one reported at once."""
    errors: list[FieldError] = []
    values: dict[str, Any] = {name: _clean(params.get(name)) for name in FILTERS[:5]}
    for name in ("date_from", "date_to"):
        raw = _clean(params.get(name))
        if raw:
            try:
                values[name] = parse_iso_date(raw)
            except InvalidValueError as error:
                errors.append(error.at(name))
    if errors:
        raise ValidationFailed(errors)
    return AuditFilters(**values)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=BEIJING)


def audit_records(*, user: User, filters: AuditFilters) -> QuerySet[AuditRecord]:
    """The records ``user`` may read that match ``filters``, newest first."""
    require(user, Action.READ_AUDIT)
    queryset = AuditRecord.objects.select_related("log", "log__merchant")
    if filters.actor:
        queryset = queryset.filter(
            Q(actor_username__iexact=filters.actor) | Q(actor_name__icontains=filters.actor)
        )
    if filters.action:
        action = filters.action.lower()
        queryset = queryset.filter(Q(action=action) | Q(action__startswith=action + "."))
    if filters.target:
        queryset = queryset.filter(Q(target_id=filters.target) | Q(target_repr=filters.target))
    if filters.target_type:
        queryset = queryset.filter(target_type=filters.target_type.lower())
    if filters.merchant:
        if filters.merchant.lower() == "staff":
            queryset = queryset.filter(log__name=STAFF_LOG)
        else:
            queryset = queryset.filter(log__merchant__uscc=filters.merchant.upper())
    if filters.date_from:
        queryset = queryset.filter(at__gte=_day_start(filters.date_from))
    if filters.date_to:
        queryset = queryset.filter(at__lt=_day_start(filters.date_to + timedelta(days=1)))
    return queryset.order_by("-at", "-id")


def audit_logs(*, user: User) -> QuerySet[AuditLog]:
    require(user, Action.READ_AUDIT)
    return AuditLog.objects.select_related("merchant").order_by("name")


def record_representation(row: AuditRecord) -> dict[str, Any]:
    """One record as the API and exports show it (its snapshots are stored masked)."""
    return {
        "log": row.log.name,
        "index": row.seq,
        "at": row.at.astimezone(UTC).isoformat(),
        "actor": {
            "id": row.actor_id,
            "username": row.actor_username,
            "name": row.actor_name,
            "role": row.actor_role,
        }
        if row.actor_username
        else None,
        "request_id": row.request_id,
        "client_address": row.client_address,
        "action": row.action,
        "target": {"type": row.target_type, "id": row.target_id, "repr": row.target_repr},
        "merchant": row.log.merchant.uscc if row.log.merchant_id and row.log.merchant else None,
        "before": row.before,
        "after": row.after,
        "note": row.note,
    }
