"""What the operators' overview (运维概览) shows, read in one place: the health checks of ``/readyz``,
the latest ledger verify, audit verify and backup verification, the open integrity incidents, the
recovery cases past their due time, and the last 24 hours — invoices issued, refusals and 503s per
hour.

Installation-wide figures for operators only (the page checks ``Action.READ_OPERATIONS``); nothing
here names a buyer, and the counts are counts.

Invoices issued per hour are counted from the invoice rows.  ``issued_at`` has no index of its own
(one more index on the busiest table would cost every write), so :func:`_first_invoice_since`
finds the first row of the window by bisecting the primary key — invoices are appended, so their
ids follow their issue times (a restored invoice, with its original time, is the exception it
allows for) — with an hour of slack, and the count then reads only that range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from fapiao.audit.models import AuditVerifyRun
from fapiao.invoices.models import Invoice
from fapiao.ledger.incidents import incidents as unresolved_incidents
from fapiao.ledger.models import IntegrityIncident, VerifyRun
from fapiao.ledger.verify_runs import latest_full_run
from fapiao.ops.backup.readiness import readiness as backup_readiness
from fapiao.ops.chart import HourlyChart, hourly_chart
from fapiao.ops.health import readiness_checks
from fapiao.ops.models import BackupVerification
from fapiao.platform.hourly import HOUR, REFUSED, UNAVAILABLE, counts_since, hour_of
from fapiao.recovery.labels import state_label
from fapiao.recovery.selectors import open_case_counts

BEIJING = ZoneInfo("Asia/Shanghai")
HOURS = 24
INCIDENTS_SHOWN = 20
SLACK = timedelta(hours=1)
PROBE = 16  # rows read per probe of the bisection

CHECK_LABELS: dict[str, Promise] = {
    "database": _("Database"),
    "disk": _("Disk space under the var dir"),
    "signing_key": _("Signing key"),
    "incidents": _("Integrity incidents"),
    "ledger_verify": _("Ledger verification"),
    "backup": _("Backup"),
}
RESULT_LABELS: dict[str, Promise] = {
    "ok": _("OK"),
    "unavailable": _("Unavailable"),
    "low": _("Low: less than 512 MB free"),
    "failed": _("Failed"),
    "overdue": _("Overdue"),
    "unknown": _("Unknown: the database did not answer"),
}


@dataclass(frozen=True)
class Check:
    name: str
    label: str
    result: str  # the raw value /readyz gives
    shown: str  # what the page says
    ok: bool


@dataclass(frozen=True)
class CaseLine:
    state: str
    label: str
    cases: int
    overdue: int | None


@dataclass(frozen=True)
class HourRow:
    label: str  # "2026-12-05 14:00" (Beijing time)
    issued: int
    refused: int
    unavailable: int


@dataclass(frozen=True)
class Overview:
    checks: list[Check]
    ledger_verify: VerifyRun | None
    audit_verify: AuditVerifyRun | None
    backup: BackupVerification | None
    backup_state: str
    incidents: list[IntegrityIncident]
    incident_count: int
    cases: list[CaseLine]
    overdue_cases: int
    charts: list[HourlyChart]
    hours: list[HourRow]
    since: datetime  # the first hour shown, Beijing time


def check_list() -> list[Check]:
    """``/readyz``'s checks, named and worded for people."""
    found = []
    for name, result in readiness_checks().items():
        if result.startswith("open: "):
            shown = gettext("Open: %(count)s") % {"count": result.removeprefix("open: ")}
        else:
            shown = str(RESULT_LABELS.get(result, result))
        found.append(Check(name, str(CHECK_LABELS.get(name, name)), result, shown, result == "ok"))
    return found


def latest_audit_run() -> AuditVerifyRun | None:
    """The latest ``audit verify`` over every audit log (a ``--log`` run is not one)."""
    return AuditVerifyRun.objects.filter(log="").select_related("by").order_by("-finished_at", "-pk").first()


def latest_backup_verification() -> BackupVerification | None:
    return (
        BackupVerification.objects.filter(finished_at__isnull=False).order_by("-finished_at", "-pk").first()
    )


def case_lines() -> list[CaseLine]:
    return [
        CaseLine(state, state_label(state), count.cases, count.overdue)
        for state, count in open_case_counts().items()
    ]


# --- the last 24 hours -------------------------------------------------------------------------


def hour_starts(now: datetime | None = None) -> list[datetime]:
    """The starts of the last :data:`HOURS` hours (UTC), oldest first, the current hour last."""
    moment = (now or timezone.now()).timestamp()
    last = hour_of(moment)
    return [datetime.fromtimestamp(last - HOUR * (HOURS - 1 - n), UTC) for n in range(HOURS)]


def _window(rows: list[tuple[int, datetime]]) -> tuple[int, datetime] | None:
    """The first id of a run of rows and the newest issue time among them."""
    return (int(rows[0][0]), max(at for _pk, at in rows)) if rows else None


def _from(pk: int) -> tuple[int, datetime] | None:
    ids = Invoice.objects.filter(pk__gte=pk).order_by("pk").values_list("pk", "issued_at")
    return _window(list(ids[:PROBE]))


def _first_invoice_since(moment: datetime) -> int | None:
    """An id from which every invoice issued since ``moment`` lies (None: none was).

    Bisects the primary key: about log2(rows) probes of :data:`PROBE` rows each, never a scan of
    the table.  Each probe takes the newest time of a run of rows, not one row's: a restored
    invoice (a recovery case's remedy) keeps its original, older issue time under a new id, and a
    lone such row must not make the search skip the newer rows around it.
    """
    newest = list(Invoice.objects.order_by("-pk").values_list("pk", "issued_at")[:PROBE])
    last = _window(newest)
    first = Invoice.objects.order_by("pk").values_list("pk", "issued_at").first()
    if first is None or last is None or last[1] < moment:
        return None
    if first[1] >= moment:
        return int(first[0])
    low, high = int(first[0]), int(newest[0][0])  # low: a run of old rows starts here; from high on: new
    while high - low > 1:
        middle = (low + high) // 2
        run = _from(middle)
        if run is None or run[1] >= moment:
            high = middle
        else:
            low = run[0]
    return high


# The UTC hour of ``issued_at`` as text, in the database's own functions: Django's TruncHour runs a
# Python function per row on SQLite (~1 s for 100,000 invoices a day, against ~0.1 s this way).
HOUR_TEXT = {
    "sqlite": "SUBSTR({column}, 1, 13)",  # stored as 'YYYY-MM-DD HH:MM:SS[.ffffff]', UTC
    "postgresql": "to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')",
}


def issued_per_hour(starts: list[datetime]) -> dict[datetime, int]:
    """Invoices (blue and red) issued in each hour of ``starts`` (UTC hour starts), from their rows."""
    since = starts[0]
    boundary = _first_invoice_since(since - SLACK)
    if boundary is None:
        return {}
    template = HOUR_TEXT.get(connection.vendor)
    if template is None:  # another database: Django's portable (slower) truncation
        rows = (
            Invoice.objects.filter(pk__gte=boundary, issued_at__gte=since)
            .annotate(hour=TruncHour("issued_at", tzinfo=UTC))
            .values("hour")
            .annotate(n=Count("pk"))
            .values_list("hour", "n")
        )
        return {hour.astimezone(UTC): int(n) for hour, n in rows}
    quote = connection.ops.quote_name
    hour = template.format(column=quote("issued_at"))
    sql = (
        f"SELECT {hour}, COUNT(*) FROM {quote(Invoice._meta.db_table)} "  # noqa: S608  names from the model
        f"WHERE {quote('id')} >= %s AND {quote('issued_at')} >= %s GROUP BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [boundary, connection.ops.adapt_datetimefield_value(since)])
        found = cursor.fetchall()
    return {datetime.strptime(text, "%Y-%m-%d %H").replace(tzinfo=UTC): int(n) for text, n in found}


def last_day(now: datetime | None = None) -> tuple[list[HourlyChart], list[HourRow], datetime]:
    starts = hour_starts(now)
    issued = issued_per_hour(starts)
    counted = counts_since(int(starts[0].timestamp()))
    shown = [start.astimezone(BEIJING) for start in starts]
    series = {
        "issued": [issued.get(start, 0) for start in starts],
        REFUSED: [counted.get((REFUSED, int(start.timestamp())), 0) for start in starts],
        UNAVAILABLE: [counted.get((UNAVAILABLE, int(start.timestamp())), 0) for start in starts],
    }
    charts = [
        hourly_chart("issued", gettext("Invoices issued"), shown, series["issued"]),
        hourly_chart(REFUSED, gettext("Refusals (401, 403)"), shown, series[REFUSED]),
        hourly_chart(UNAVAILABLE, gettext("Unavailable (503)"), shown, series[UNAVAILABLE]),
    ]
    rows = [
        HourRow(
            hour.strftime("%Y-%m-%d %H:00"), series["issued"][n], series[REFUSED][n], series[UNAVAILABLE][n]
        )
        for n, hour in enumerate(shown)
    ]
    return charts, rows, shown[0]


def overview(now: datetime | None = None) -> Overview:
    cases = case_lines()
    charts, rows, since = last_day(now)
    open_ones = unresolved_incidents()
    return Overview(
        checks=check_list(),
        ledger_verify=latest_full_run(),
        audit_verify=latest_audit_run(),
        backup=latest_backup_verification(),
        backup_state=backup_readiness(),
        incidents=list(open_ones[:INCIDENTS_SHOWN]),
        incident_count=open_ones.count(),
        cases=cases,
        overdue_cases=sum(line.overdue or 0 for line in cases),
        charts=charts,
        hours=rows,
        since=since,
    )
