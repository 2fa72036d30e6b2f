"""One rate limiter for every limit: fixed windows counted in the database, shared by all processes.

``hit(scope, key, limit, window)`` counts one event of ``key`` (a client address, a token, a
merchant) in ``scope`` (what is limited) and says whether it is within ``limit`` per ``window``
seconds.  The count is one row per (scope, key, window start) in :class:`RateCounter`, raised by a
single ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (SQLite and PostgreSQL alike), so every
gunicorn worker and every server sees the same number — unlike Django's per-process memory cache.
``peek`` reads a count without adding to it.

Windows are aligned to the epoch (an hour's window starts on the hour, UTC).  Closed windows are
deleted by :func:`purge`, which :func:`hit` runs at most once a minute per process; a scope that
must know what a window counted before it goes (the audit trail's summary of anonymous refusals)
registers :func:`on_close` from its ``AppConfig.ready``.

A hit inside a transaction commits with it: call :func:`hit` outside one (as requests do) when a
rolled-back attempt must still count.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from fapiao.platform.models import RateCounter

log = logging.getLogger(__name__)

PURGE_EVERY = 60.0  # seconds between one process's purges
PURGE_BATCH = 500  # closed windows handed to a scope's callback per purge
MAX_KEY = 200


@dataclass(frozen=True)
class Decision:
    """``allowed`` while ``count`` (this hit included) is within the limit; ``retry_after``: whole
    seconds until the window closes (the ``Retry-After`` of a refusal)."""

    allowed: bool
    count: int
    retry_after: int


@dataclass(frozen=True)
class ClosedWindow:
    scope: str
    key: str
    start: datetime  # UTC
    end: datetime
    count: int


@dataclass(frozen=True)
class _Hook:
    callback: Callable[[list[ClosedWindow]], None]
    at_least: Callable[[], int]


_hooks: dict[str, _Hook] = {}
_purge_lock = threading.Lock()
_next_purge = 0.0


def hit(scope: str, key: str, limit: int, window: int, *, now: float | None = None) -> Decision:
    """Count one event of ``key`` in ``scope``; allowed while the window's count is at most ``limit``."""
    moment = time.time() if now is None else now
    start = _window_start(moment, window)
    count = int(_execute("hit", [scope, _key(key), start, start + window])[0][0])
    _maybe_purge(moment)
    return _decision(count, limit, start + window, moment)


def peek(scope: str, key: str, limit: int, window: int, *, now: float | None = None) -> Decision:
    """The window's count so far, without counting; ``allowed`` while it is below ``limit`` (one more
    hit would still be within it)."""
    moment = time.time() if now is None else now
    start = _window_start(moment, window)
    found = _execute("peek", [scope, _key(key), start])
    count = int(found[0][0]) if found else 0
    return _decision(count + 1, limit, start + window, moment, count=count)


def on_close(
    scope: str, callback: Callable[[list[ClosedWindow]], None], *, at_least: Callable[[], int] = lambda: 1
) -> None:
    """Hand ``scope``'s closed windows counting at least ``at_least()`` to ``callback`` as they are
    purged, in the purge's transaction: a callback that raises keeps them for the next purge."""
    _hooks[scope] = _Hook(callback, at_least)


def purge(*, now: float | None = None) -> int:
    """Delete every closed window (after its scope's callback saw it); how many were deleted."""
    moment = int(time.time() if now is None else now)
    deleted = 0
    for scope, hook in list(_hooks.items()):
        threshold = max(1, hook.at_least())
        try:
            with transaction.atomic():
                rows = _execute("take_closed", [scope, moment, threshold, PURGE_BATCH])
                if rows:
                    hook.callback([_closed(scope, *row) for row in rows])
        except Exception:  # a failing callback must not fail the request that happened to purge
            log.exception("rate limit windows of %s not purged", scope)
            continue
        deleted += len(rows)
        deleted += _rowcount("drop_below", [scope, moment, threshold])
    hooked = sorted(_hooks)
    deleted += _rowcount("drop_closed", [moment, *hooked], others=len(hooked))
    return deleted


# --- Internals ---------------------------------------------------------------------------------


def _window_start(moment: float, window: int) -> int:
    if window <= 0:
        raise ValueError("a rate limit window is a positive number of seconds")
    return int(moment // window) * window


def _decision(reached: int, limit: int, end: int, moment: float, *, count: int | None = None) -> Decision:
    return Decision(
        allowed=reached <= limit,
        count=reached if count is None else count,
        retry_after=max(1, math.ceil(end - moment)),
    )


def _key(key: str) -> str:
    """Keys are stored as given up to 200 characters, longer ones as their SHA-256."""
    return key if len(key) <= MAX_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _closed(scope: str, key: str, start: int, end: int, count: int) -> ClosedWindow:
    return ClosedWindow(
        scope, key, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), int(count)
    )


def _maybe_purge(moment: float) -> None:
    """At most once a minute per process, on whichever thread gets there first."""
    global _next_purge  # noqa: PLW0603  one timestamp per process, under the lock
    if time.monotonic() < _next_purge or not _purge_lock.acquire(blocking=False):
        return
    try:
        _next_purge = time.monotonic() + PURGE_EVERY
        purge(now=moment)
    except DatabaseError as error:  # the count stands; the next purge will do
        log.warning("rate limit purge failed: %s", error)
    finally:
        _purge_lock.release()


@functools.cache
def _statements(vendor: str) -> dict[str, str]:
    """The SQL, with names quoted for the vendor (names come from the model, never from input)."""
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    table = quote(RateCounter._meta.db_table)
    pk, scope, key, start, end, count = (
        quote(name) for name in ("id", "scope", "key", "window_start", "window_end", "count")
    )
    del vendor  # only the cache key: both vendors take the same statements
    return {
        "hit": f"INSERT INTO {table} ({scope}, {key}, {start}, {end}, {count}) "  # noqa: S608
        f"VALUES (%s, %s, %s, %s, 1) ON CONFLICT ({scope}, {key}, {start}) "
        f"DO UPDATE SET {count} = {table}.{count} + 1 RETURNING {count}",
        "peek": f"SELECT {count} FROM {table} WHERE {scope} = %s AND {key} = %s AND {start} = %s",  # noqa: S608
        "take_closed": f"DELETE FROM {table} WHERE {pk} IN (SELECT {pk} FROM {table} "  # noqa: S608
        f"WHERE {scope} = %s AND {end} <= %s AND {count} >= %s ORDER BY {end} LIMIT %s) "
        f"RETURNING {key}, {start}, {end}, {count}",
        "drop_below": f"DELETE FROM {table} WHERE {scope} = %s AND {end} <= %s AND {count} < %s",  # noqa: S608
        "drop_closed": f"DELETE FROM {table} WHERE {end} <= %s{{others}}",  # noqa: S608
        "others": f" AND {scope} NOT IN ({{}})",
    }


def _sql(name: str, others: int = 0) -> str:
    statements = _statements(connections[DEFAULT_DB_ALIAS].vendor)
    if name != "drop_closed":
        return statements[name]
    tail = statements["others"].format(", ".join(["%s"] * others)) if others else ""
    return statements[name].format(others=tail)


def _execute(name: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_sql(name), params)
        return list(cursor.fetchall()) if cursor.description else []


def _rowcount(name: str, params: list[Any], *, others: int = 0) -> int:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_sql(name, others), params)
        return max(0, int(cursor.rowcount))
