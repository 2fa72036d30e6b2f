"""What a run of ``ledger verify`` leaves behind (docs/spec/ledger.md, docs/operations/monitoring.md).

Verify itself only reads, inside one snapshot.  Afterwards the command line and the verification
page call :func:`record_run`: a :class:`~fapiao.ledger.models.VerifyRun` row, and — when the run
found anything wrong — an integrity incident for each log it found wrong (and one for the
witness file as a whole), so damage found by a nightly cron run is in front of the operators
(banner, ``/readyz``, ``fapiao incidents list``) instead of only in cron's mail.  An incident's
identity is the set of problems found: running verify again over the same damage finds the
unresolved incident instead of opening another, and new damage opens a new one.

``/readyz`` reads :func:`readiness`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from fapiao.accounts.models import Merchant
from fapiao.core.choices import IncidentKind
from fapiao.core.ledger_findings import INFO_CODES, Finding, Severity
from fapiao.ledger import incidents
from fapiao.ledger.models import IntegrityIncident, LogEntry, VerifyRun
from fapiao.ledger.verify import VerifyReport

# What higher apps do with a run's report, as f(report, incidents by log USCC): the invoices app
# keeps the findings about its rows for the merchant to see (registered from its AppConfig.ready).
RUN_HOOKS: list[Callable[[VerifyReport, Mapping[str, IntegrityIncident]], None]] = []


def register_run_hook(hook: Callable[[VerifyReport, Mapping[str, IntegrityIncident]], None]) -> None:
    if hook not in RUN_HOOKS:
        RUN_HOOKS.append(hook)


IDENTITY_KEYS = 200  # findings named in an incident's identity (the counts cover the rest)
SHOWN_KEYS = 20  # findings listed in its details


def finding_key(finding: Finding) -> str:
    """``code@log#where``: ``altered_entry@91110108MA01ABCD84#5``, ``witness_mismatch@witness#1000``."""
    where = next((str(v) for v in (finding.index, finding.size, finding.number) if v is not None), "")
    return f"{finding.message_key}@{finding.log or 'witness'}#{where}"


def record_run(
    report: VerifyReport, *, merchant: str | None, source: str, by: Any = None
) -> tuple[VerifyRun, list[IntegrityIncident]]:
    """Keep the run; open (or find) an integrity incident per log it found wrong."""
    run = VerifyRun.objects.create(
        finished_at=timezone.now(),
        merchant_uscc=(merchant or "").strip().upper()[:18],
        deep=report.deep,
        ok=report.ok,
        errors=report.errors,
        logs=len(report.logs),
        entries=sum(log.entries for log in report.logs),
        elapsed_seconds=round(report.elapsed, 3),
        source=source,
        by=by if getattr(by, "is_authenticated", False) else None,
    )
    if report.ok:
        _run_hooks(report, {})
        return run, []
    groups: list[tuple[str, list[Finding], dict[str, int]]] = []
    loose = [f for f in report.findings if f.severity is Severity.ERROR]
    if loose:
        groups.append(("", loose, dict(Counter(str(f.code) for f in loose))))
    for log in report.logs:
        if log.errors:  # counts: every finding of each code, also those past the listing cap
            wrong = [f for f in log.findings if f.severity is Severity.ERROR]
            counts = {code: n for code, n in log.counts.items() if code not in INFO_CODES}
            groups.append((log.log, wrong, counts))
    merchants = {
        m.uscc: m for m in Merchant.objects.filter(uscc__in=[uscc for uscc, _f, _c in groups if uscc])
    }
    opened = []
    for uscc, wrong, counts in groups:
        keys = sorted(finding_key(f) for f in wrong)
        identity = {"log": uscc, "counts": dict(sorted(counts.items())), "findings": keys[:IDENTITY_KEYS]}
        details = {
            "reason": "verify_failed",
            "log": uscc or "witness",
            "errors": sum(counts.values()),
            "summary": ", ".join(f"{code} × {n}" for code, n in sorted(counts.items())),
            "findings": keys[:SHOWN_KEYS],
            "deep": report.deep,
            "run": run.pk,
            "source": source,
        }
        incident, _created = incidents.open_incident(
            kind=IncidentKind.VERIFY_FAILED, merchant=merchants.get(uscc), identity=identity, details=details
        )
        opened.append(incident)
    _run_hooks(report, {uscc: incident for (uscc, _w, _c), incident in zip(groups, opened, strict=True)})
    return run, opened


def _run_hooks(report: VerifyReport, by_log: Mapping[str, IntegrityIncident]) -> None:
    for hook in RUN_HOOKS:
        hook(report, by_log)


def latest_full_run() -> VerifyRun | None:
    """The latest recorded run over every log (a ``--merchant`` run is not one)."""
    runs = VerifyRun.objects.filter(merchant_uscc="").select_related("by")
    return runs.order_by("-finished_at", "-pk").first()


def latest_full_result() -> tuple[datetime, bool] | None:
    """When the latest run over every log finished and whether it passed (monitoring reads it at
    every scrape: one index probe, no user row)."""
    runs = VerifyRun.objects.filter(merchant_uscc="").order_by("-finished_at", "-pk")
    return runs.values_list("finished_at", "ok").first()


def readiness() -> str:
    """``/readyz``'s ``ledger_verify``: ``ok``; ``failed`` (the latest run over every log found
    something); or ``overdue`` (none passed within ``FAPIAO_VERIFY_MAX_AGE_HOURS`` while the ledger
    holds entries older than that: a fresh installation is not overdue)."""
    latest = latest_full_run()
    if latest is not None and not latest.ok:
        return "failed"
    since = timezone.now() - timedelta(hours=settings.FAPIAO_VERIFY_MAX_AGE_HOURS)
    if latest is not None and latest.finished_at >= since:
        return "ok"
    # The first entry by primary key is the oldest (the logs are appended to): one index probe, as
    # load balancers poll /readyz every few seconds.
    oldest = LogEntry.objects.order_by("pk").values_list("created_at", flat=True).first()
    return "overdue" if oldest is not None and oldest < since else "ok"
