"""Refused and unavailable answers counted per hour in the database, for the operators' overview.

Prometheus keeps rates while it is scraped; the overview page (运维概览) must show the last 24 hours
from the installation itself, whatever restarted.  So every answer with status 401 or 403
(``refused``) and every 503 (``unavailable``) raises one row per (kind, hour) in
:class:`~fapiao.platform.models.HourlyCount`, with one ``INSERT … ON CONFLICT DO UPDATE``.

Counting never breaks or holds up an answer:

* :func:`note` never raises; a failed count is logged (``hourly count not written``) and lost;
* in the server (``FAPIAO_WRITE_BATCHING``) the request does not write at all: it adds one to this
  process's pending counts and, if no flush is queued yet, queues one on the group-commit writer
  without waiting (:meth:`GroupCommitWriter.enqueue`).  A flush writes one upsert per (kind, hour)
  it holds, however many answers it carries — a flood of 401s costs one statement per batch.  A
  flush a failed batch never ran leaves its counts pending for the next one (:func:`_queue`);
* without batching (tests, the command line) the upserts run at once, each in its own savepoint;
* a 503 given because the database did not answer tries nothing (a connection attempt would hold
  the answer up for PostgreSQL's connect timeout): its count waits in the process for the next
  answer that is counted.

A 429 is not counted: past the hour's limit an anonymous client's refusal must cost no write at
all (:mod:`fapiao.platform.errors`, tests/integration/test_anonymous_refusals.py); its count is
``fapiao_http_requests_total{status="429"}``.

A batch that rolls back takes its pending counts with it: these are approximate operational
figures (the exact ones are ``fapiao_http_requests_total`` in Prometheus), never a record.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from fapiao.platform.groupcommit import writer
from fapiao.platform.models import HourlyCount

log = logging.getLogger(__name__)

REFUSED = "refused"
UNAVAILABLE = "unavailable"
KINDS = (REFUSED, UNAVAILABLE)
REFUSED_STATUSES = frozenset({401, 403})
HOUR = 3600
KEEP_DAYS = 90
# 503 reasons (``fapiao.platform.metrics.mark_unavailable``) that say the database did not answer.
DATABASE_DOWN = frozenset({"database_unavailable", "not_ready"})

RESCHEDULE_SECONDS = 5.0  # a queued flush that has not run by then is queued again

_lock = threading.Lock()
_pending: Counter[tuple[str, int]] = Counter()
_scheduled_at: float | None = None  # when the flush now waiting in the writer's queue was queued
_purged_hour = 0


def kind_of(status: int) -> str | None:
    """What the overview counts an answer with this status as, or None (not counted)."""
    if status == 503:
        return UNAVAILABLE
    if status in REFUSED_STATUSES:
        return REFUSED
    return None


def hour_of(moment: float) -> int:
    """The start of the UTC hour holding ``moment`` (epoch seconds)."""
    return int(moment // HOUR) * HOUR


def note(status: int, *, now: float | None = None, database_down: bool = False) -> None:
    """Count an answer with ``status`` if it is a refusal or a 503.  Never raises.

    ``database_down``: this answer is a 503 because the database did not answer — then nothing is
    tried now (a connection attempt would only hold the answer up: PostgreSQL's connect timeout);
    the count waits in this process for the next answer that is counted.
    """
    kind = kind_of(status)
    if kind is None:
        return
    hour = hour_of(time.time() if now is None else now)
    try:
        if database_down:
            with _lock:
                _pending[(kind, hour)] += 1
        elif getattr(settings, "FAPIAO_WRITE_BATCHING", False):
            _queue(kind, hour)
        else:
            with _lock:
                _pending[(kind, hour)] += 1
            flush_pending()
    except Exception:  # counting must never break the answer it counts
        log.warning("hourly count not written", exc_info=True)


def _queue(kind: str, hour: int) -> None:
    """Add to the pending counts; queue a flush unless one was queued in the last few seconds.

    A batch that fails before it runs its jobs (the database is down: when 503s happen) drops the
    flush without running it; the counts stay pending, and the next answer after
    :data:`RESCHEDULE_SECONDS` queues another flush, which writes them once the database is back.
    """
    global _scheduled_at  # noqa: PLW0603  one time per process, under the lock
    now = time.monotonic()
    with _lock:
        _pending[(kind, hour)] += 1
        if _scheduled_at is not None and now - _scheduled_at < RESCHEDULE_SECONDS:
            return
        _scheduled_at = now
    try:
        writer().enqueue(flush_pending)
    except Exception:
        with _lock:
            _scheduled_at = None
        raise


def flush_pending(_unit: object = None) -> int:
    """Write this process's pending counts (the group-commit writer runs it); how many rows it raised."""
    global _scheduled_at  # noqa: PLW0603
    with _lock:
        taken = dict(_pending)
        _pending.clear()
        _scheduled_at = None
    written = 0
    for (kind, hour), amount in sorted(taken.items()):
        written += _count(kind, hour, amount)
    return written


flush_pending.deferrable = True  # type: ignore[attr-defined]  # reads nothing another write defers


def _count(kind: str, hour: int, amount: int) -> int:
    """One upsert in its own savepoint: a failure undoes only itself and is logged, never raised."""
    try:
        with transaction.atomic():
            _upsert(kind, hour, amount)
            _purge(hour)
    except Exception:
        log.warning("hourly count not written", exc_info=True)
        return 0
    return 1


def _upsert(kind: str, hour: int, amount: int) -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_statements()["upsert"], [kind, hour, amount])


def _purge(hour: int) -> None:
    """Once per hour and process: rows older than :data:`KEEP_DAYS` go."""
    global _purged_hour  # noqa: PLW0603
    if hour <= _purged_hour:
        return
    _purged_hour = hour
    HourlyCount.objects.filter(hour_start__lt=hour - KEEP_DAYS * 86400).delete()


@functools.cache
def _statements() -> dict[str, str]:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    table = quote(HourlyCount._meta.db_table)
    kind, hour, count = (quote(name) for name in ("kind", "hour_start", "count"))
    return {
        "upsert": f"INSERT INTO {table} ({kind}, {hour}, {count}) VALUES (%s, %s, %s) "  # noqa: S608
        f"ON CONFLICT ({kind}, {hour}) DO UPDATE SET {count} = {table}.{count} + EXCLUDED.{count}",
    }


# --- reading ------------------------------------------------------------------------------------


def counts_since(first_hour: int) -> dict[tuple[str, int], int]:
    """(kind, hour start) -> count for every hour from ``first_hour`` (epoch seconds, UTC) on."""
    rows: Any = HourlyCount.objects.filter(hour_start__gte=first_hour).values_list(
        "kind", "hour_start", "count"
    )
    return {(kind, int(hour)): int(count) for kind, hour, count in rows}
