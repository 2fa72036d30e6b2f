"""The readiness gauges of ``GET /metrics``: read from the database and the disk at scrape time.

Counters and latencies are kept by the code that does the work (:mod:`fapiao.platform.metrics`);
what the *state* of the installation is — is the database there, when was the ledger last
verified and did it pass, how many incidents are open, how many cases are overdue, how far behind
is the standby — is asked afresh at each scrape by :class:`ReadinessCollector`, with a few cheap
queries on indexed columns (none reads the invoices).

What the collector reads is a registry, so another part of operations adds its gauges without
touching this module:

* :func:`register_verification` — a subject whose latest verification has a time and a result,
  exported as ``fapiao_<subject>_last_verified_timestamp_seconds`` and
  ``fapiao_<subject>_last_verify_ok``.  The ledger, the audit trail and the backups
  (``ops.BackupVerification``) are registered below;
* :func:`register_source` — any other function that yields metric families.

A source that fails with a database error is left out of that scrape (and marked in
``fapiao_metrics_source_failed``); the others are still exported.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection
from prometheus_client.core import GaugeMetricFamily, Metric

from fapiao.audit.verify_runs import latest_full_result as latest_audit_run
from fapiao.ledger.incidents import open_incident_count
from fapiao.ledger.verify_runs import latest_full_result as latest_ledger_run
from fapiao.ops.backup.readiness import latest_result as latest_backup_verification
from fapiao.recovery.selectors import open_case_counts

log = logging.getLogger(__name__)
SUBJECT = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Verification:
    """The latest finished verification of a subject: when it finished and whether it passed."""

    finished_at: datetime
    ok: bool


Source = Callable[[], Iterable[Metric]]
_sources: dict[str, Source] = {}


def register_source(name: str, source: Source) -> None:
    """Export what ``source()`` yields at every scrape (registering a name again replaces it)."""
    _sources[name] = source


def register_verification(subject: str, latest: Callable[[], Verification | None], *, what: str) -> None:
    """Export the time and result of ``subject``'s latest verification.

    ``latest()`` returns the latest *finished* verification, or None when there has been none: then
    the timestamp is 0 (so "overdue" alerts fire: nothing was ever verified) and the result absent.
    ``what`` names the subject in the metrics' help text ("ledger verify over every log").
    """
    if not SUBJECT.match(subject):
        raise ValueError(f"a metric subject is lower-case letters, digits and _: {subject!r}")

    def source() -> Iterator[Metric]:
        verification = latest()
        stamp = GaugeMetricFamily(
            f"fapiao_{subject}_last_verified_timestamp_seconds",
            f"When the latest {what} finished (Unix time); 0: never.",
        )
        stamp.add_metric([], verification.finished_at.timestamp() if verification else 0.0)
        yield stamp
        if verification is not None:
            yield GaugeMetricFamily(
                f"fapiao_{subject}_last_verify_ok",
                f"Whether the latest {what} passed (1) or found problems (0).",
                value=1.0 if verification.ok else 0.0,
            )

    register_source(f"{subject}_verification", source)


def registered() -> list[str]:
    return sorted(_sources)


# --- the sources of this installation -------------------------------------------------------


def _ledger_verification() -> Verification | None:
    run = latest_ledger_run()
    return Verification(*run) if run is not None else None


def _audit_verification() -> Verification | None:
    run = latest_audit_run()
    return Verification(*run) if run is not None else None


def _backup_verification() -> Verification | None:
    result = latest_backup_verification()
    return Verification(*result) if result is not None else None


def _incidents() -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "fapiao_integrity_incidents_open",
        "Integrity incidents not yet resolved (acknowledged ones included).",
        value=open_incident_count(),
    )


def _cases() -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        "fapiao_recovery_cases", "Recovery cases not yet closed, by state.", labels=["state"]
    )
    overdue = GaugeMetricFamily(
        "fapiao_recovery_cases_overdue",
        "Recovery cases past their state's due time (FAPIAO_CASE_DUE_HOURS), by state.",
        labels=["state"],
    )
    for state, count in sorted(open_case_counts().items()):
        by_state.add_metric([state], count.cases)
        if count.overdue is not None:
            overdue.add_metric([state], count.overdue)
    yield by_state
    yield overdue


REPLICATION_SQL = """
SELECT application_name,
       state,
       COALESCE(EXTRACT(EPOCH FROM replay_lag), 0),
       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)
FROM pg_stat_replication
"""


def _replication() -> Iterator[Metric]:
    """On a PostgreSQL primary, each standby's lag (none: no lag series) and how many stream."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        row = cursor.fetchone()
        if row is None or row[0]:  # connected to a standby: it has no standbys of its own to report
            return
        cursor.execute(REPLICATION_SQL)
        rows = cursor.fetchall()
    yield GaugeMetricFamily(
        "fapiao_database_standbys",
        "Standbys streaming from the primary (pg_stat_replication).",
        value=sum(1 for _name, state, _lag, _bytes in rows if state == "streaming"),
    )
    seconds = GaugeMetricFamily(
        "fapiao_database_replication_lag_seconds",
        "How long ago the standby last replayed what the primary had committed (0 when caught up).",
        labels=["standby"],
    )
    size = GaugeMetricFamily(
        "fapiao_database_replication_lag_bytes",
        "WAL the primary has written that the standby has not yet replayed.",
        labels=["standby"],
    )
    for name, _state, lag, behind in rows:
        seconds.add_metric([name or "standby"], float(lag))
        size.add_metric([name or "standby"], float(behind))
    yield seconds
    yield size


register_verification("ledger", _ledger_verification, what="ledger verify over every log")
register_verification("audit", _audit_verification, what="audit verify over every audit log")
register_verification("backup", _backup_verification, what="backup verification")
register_source("incidents", _incidents)
register_source("cases", _cases)
register_source("replication", _replication)


# --- the collector ---------------------------------------------------------------------------


def _database_up() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


def _disk() -> Iterator[Metric]:
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(settings.VAR_DIR)
    yield GaugeMetricFamily(
        "fapiao_var_dir_free_bytes",
        "Free space on the file system of the var dir (database, keys, witness file, evidence).",
        value=usage.free,
    )
    yield GaugeMetricFamily("fapiao_var_dir_size_bytes", "Size of that file system.", value=usage.total)


class ReadinessCollector:
    """Yields the readiness gauges; registered on the registry of each scrape (``fapiao.ops.metrics``)."""

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = _database_up()
        yield GaugeMetricFamily(
            "fapiao_database_up", "Whether the database answers a query (1) or not (0).", value=int(up)
        )
        yield from _disk()
        yield GaugeMetricFamily(
            "fapiao_database_standbys_expected",
            "Standbys that should stream from the primary (FAPIAO_EXPECTED_STANDBYS).",
            value=settings.FAPIAO_EXPECTED_STANDBYS,
        )
        failures = GaugeMetricFamily(
            "fapiao_metrics_source_failed",
            "Whether a readiness source failed in this scrape (1: its series are missing), by source.",
            labels=["source"],
        )
        for name in registered():
            if not up:
                failures.add_metric([name], 1)
                continue
            try:
                families = list(_sources[name]())
            except DatabaseError:
                log.warning("metrics source %s failed", name, exc_info=True)
                failures.add_metric([name], 1)
                continue
            failures.add_metric([name], 0)
            yield from families
        yield failures
        yield GaugeMetricFamily(
            "fapiao_metrics_scrape_duration_seconds",
            "How long this scrape took to read the readiness gauges.",
            value=time.perf_counter() - started,
        )
