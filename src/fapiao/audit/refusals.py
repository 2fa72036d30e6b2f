"""Refused requests in the audit trail, without letting strangers fill the disk (issue 13, finding 5).

A refusal by a signed-in user (a 403, a wrong second-factor code) is recorded one by one, always.
An anonymous one — a 401 on the API, a failed sign-in, a form without its CSRF token — is counted
per client address per hour by the shared rate limiter (:mod:`fapiao.platform.ratelimit`):

* the first ``FAPIAO_ANON_REFUSALS_AUDITED`` (20) of the hour are recorded one by one;
* the rest are only counted, and once the hour has closed one ``access.anonymous_summary`` record
  says how many there were (written when the limiter purges the window, so the trail stays
  append-only: a count is never updated in place);
* beyond ``FAPIAO_ANON_REFUSALS_PER_HOUR`` (100) the client gets 429 with ``Retry-After`` instead of
  the refusal, before any work and without writing anything: the counter is read first and only
  counted up while the client is within the limit (:func:`count` on the refusal paths,
  :func:`throttled` in front of the sign-in form).  So a flood past the limit costs one ``SELECT``
  a request; the 429s themselves are not counted (the access log has them).

An IPv6 client is counted by its /64 network, which one subscriber gets whole.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from fapiao.audit.services import MAX_NOTE, record, record_quietly
from fapiao.platform import context as request_context
from fapiao.platform import ratelimit
from fapiao.platform.ratelimit import ClosedWindow, Decision

log = logging.getLogger("fapiao.audit")

SCOPE = "anonymous-refusal"
WINDOW = 3600
_DECIDED = "_fapiao_refusal"  # one count per request, however many records it makes


def client_key(address: str) -> str:
    """The counted key of an address: itself, an IPv6 address's /64, or ``unknown``."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()[:100] or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _limits() -> tuple[int, int]:
    return int(settings.FAPIAO_ANON_REFUSALS_AUDITED), int(settings.FAPIAO_ANON_REFUSALS_PER_HOUR)


def count(request: Any = None) -> Decision | None:
    """Count one anonymous refusal of the current client (once per request), unless the client is
    already past the limit: then the refusing decision, and nothing is written.  None when the
    counter cannot be reached (the database is down: nothing would be recorded anyway)."""
    decided = getattr(request, _DECIDED, None)
    if decided is not None:
        return decided  # type: ignore[no-any-return]
    _audited, limit = _limits()
    key = client_key(request_context.current_client_address())
    try:
        decision = ratelimit.peek(SCOPE, key, limit, WINDOW)
        if decision.allowed:
            decision = ratelimit.hit(SCOPE, key, limit, WINDOW)
    except DatabaseError as error:
        log.warning("anonymous refusal not counted: %s", error)
        return None
    if request is not None:
        setattr(request, _DECIDED, decision)
    return decision


def throttled(address: str) -> Decision | None:
    """The decision that refuses ``address`` now (its refusals this hour reached the limit), else None.

    Reads the count without adding to it: a throttled client costs one ``SELECT``.
    """
    _audited, limit = _limits()
    try:
        decision = ratelimit.peek(SCOPE, client_key(address), limit, WINDOW)
    except DatabaseError:
        return None
    return None if decision.allowed else decision


def recorded_one_by_one(decision: Decision | None) -> bool:
    """Whether a counted refusal gets a record of its own: it is one of the hour's first few (a setting)."""
    audited, _limit = _limits()
    return decision is None or (decision.allowed and decision.count <= audited)


def record_refusal(request: Any, *, status: int, code: str) -> Decision | None:
    """Record a refused request — 401 (no or bad credentials) or 403 (not allowed) — on the API or a page.

    Anonymous refusals are sampled (see the module); the limiter's decision comes back so that the
    caller answers 429 instead when it is not ``allowed``.  A signed-in user's refusal is always
    recorded and returns None.
    """
    user = getattr(request, "user", None)
    actor = user if getattr(user, "is_authenticated", False) else None
    decision = None if actor is not None else count(request)
    if actor is None and not recorded_one_by_one(decision):
        return decision
    method, path = str(getattr(request, "method", "") or ""), str(getattr(request, "path", "") or "")
    record_quietly(
        actor=actor,
        action="access.unauthenticated" if status == 401 else "access.forbidden",
        target_type="route",
        target_id=path[:64],
        note=f"{method} {path}"[:MAX_NOTE],
        after={"status": status, "code": code, "method": method, "path": path[:500]},
    )
    return decision


def summarise(windows: list[ClosedWindow]) -> None:
    """One record per client and closed hour whose refusals were not all recorded one by one."""
    audited, limit = _limits()
    for window in windows:
        recorded = min(window.count, audited)
        with request_context.bound(request_context.RequestContext("", window.key[:100])):
            record(
                actor=None,
                action="access.anonymous_summary",
                target_type="client",
                target_id=window.key[:64],
                note=(
                    f"{window.count} anonymous refusals from {window.key} between "
                    f"{window.start:%Y-%m-%d %H:%M} and {window.end:%H:%M} UTC: the first {recorded} "
                    f"recorded one by one, the rest counted here; beyond {limit} answered 429."
                ),
                after={
                    "client": window.key,
                    "from": window.start.isoformat(),
                    "to": window.end.isoformat(),
                    "refusals": window.count,
                    "recorded": recorded,
                    "counted_only": window.count - recorded,
                    "limit": limit,
                },
            )


def connect() -> None:
    """Called from ``AuditConfig.ready``: closed windows with unrecorded refusals get their summary."""
    ratelimit.on_close(SCOPE, summarise, at_least=lambda: _limits()[0] + 1)
