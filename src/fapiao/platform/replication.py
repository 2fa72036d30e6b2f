"""Acknowledge a write only while a synchronous standby confirms it (``FAPIAO_REQUIRE_SYNC_STANDBY``).

With ``synchronous_commit=on`` and a non-empty ``synchronous_standby_names`` PostgreSQL returns
from COMMIT only once a standby has flushed the commit record: the write is on two disks.  But a
failover tool may empty ``synchronous_standby_names`` when no standby is healthy (pg_auto_failover's
``wait_primary`` state, always so with ``number_sync_standbys = 0``), and then PostgreSQL
acknowledges commits that exist on one disk only.  :func:`require_sync_standby` runs inside every
unit of work's transaction, after its last write and right before COMMIT, and refuses
(503 ``no_sync_standby``, nothing saved) while ``pg_stat_replication`` shows no streaming standby
that is synchronous (``sync`` or ``quorum``).

The look-up costs one round trip to the primary, so a positive answer is trusted for
``FAPIAO_SYNC_STANDBY_CACHE_MS`` (1 s) per process and server; a negative one is never kept (the
next write asks again, so writes resume as soon as a standby is back).  The database role needs
``pg_monitor`` (or superuser) to see the standbys' state; without it the check sees none and
refuses every write, which the log says.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connection

from fapiao.core.errors import NoSyncStandbyError

log = logging.getLogger(__name__)

SYNC_STANDBYS_SQL = (
    "SELECT count(*) FILTER (WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum')), "
    "count(*) FILTER (WHERE state IS NULL) FROM pg_stat_replication"
)

_confirmed_until: dict[tuple[str, str], float] = {}  # (host, port) of the primary -> monotonic deadline
_lock = threading.Lock()


def enabled() -> bool:
    return bool(getattr(settings, "FAPIAO_REQUIRE_SYNC_STANDBY", False)) and connection.vendor == "postgresql"


def _server() -> tuple[str, str]:
    """The server this connection reached (with several hosts in the URL, the primary libpq chose)."""
    info = connection.connection.info
    return str(info.host), str(info.port)


def sync_standbys() -> int:
    """How many streaming synchronous standbys the connected primary has now (no cache)."""
    with connection.cursor() as cursor:
        cursor.execute(SYNC_STANDBYS_SQL)
        synchronous, hidden = cursor.fetchone()
    if hidden and not synchronous:
        log.warning(
            "pg_stat_replication hides the standbys' state from this role: grant it pg_monitor "
            "(FAPIAO_REQUIRE_SYNC_STANDBY refuses writes until it can see a synchronous standby)"
        )
    return int(synchronous)


def require_sync_standby() -> None:
    """Raise :class:`NoSyncStandbyError` unless the primary has a synchronous standby; call it inside
    the write transaction, after its last write (the caller's COMMIT follows)."""
    if not enabled():
        return
    connection.ensure_connection()
    server = _server()
    now = time.monotonic()
    if _confirmed_until.get(server, 0.0) > now:
        return
    if sync_standbys() == 0:
        with _lock:
            _confirmed_until.pop(server, None)
        raise NoSyncStandbyError()
    with _lock:
        _confirmed_until[server] = now + settings.FAPIAO_SYNC_STANDBY_CACHE_MS / 1000


def forget() -> None:
    """Drop the cached answers (tests)."""
    with _lock:
        _confirmed_until.clear()
