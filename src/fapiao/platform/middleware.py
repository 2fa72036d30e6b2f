"""Request ids; the count, latency and log line of every request; and every failure of a view
answered in one place (never a traceback, never a half-write)."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

from fapiao.core.errors import FapiaoError
from fapiao.platform import hourly, metrics
from fapiao.platform.context import RequestContext, bound
from fapiao.platform.errors import respond

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Label values come from fixed sets: any other method a client sends is counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
request_log = logging.getLogger("fapiao.request")


def _address(text: str) -> str:
    """A normalised IP address, or "" when ``text`` is not one."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return ""


def client_address(request: HttpRequest) -> str:
    """The client's IP address: ``REMOTE_ADDR``, or behind ``FAPIAO_TRUSTED_PROXY_HOPS`` proxies the
    address that many hops back in ``X-Forwarded-For`` (each proxy appends the address it saw)."""
    remote = _address(request.META.get("REMOTE_ADDR", ""))
    hops = getattr(settings, "FAPIAO_TRUSTED_PROXY_HOPS", 0)
    if hops <= 0:
        return remote
    forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < hops:
        return remote
    return _address(forwarded[-hops]) or remote


class RequestIdMiddleware:
    """Gives every request an id (``X-Request-Id``) and records the client's address, for logs and
    the audit trail."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get("X-Request-Id", "")
        request_id = supplied if REQUEST_ID_PATTERN.match(supplied) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        with bound(RequestContext(request_id, client_address(request))):
            response = self.get_response(request)
        response["X-Request-Id"] = request_id
        return response


def route_of(request: HttpRequest) -> str:
    """The URL pattern that answered (``/api/v1/invoices/<number>``), never the path itself: a path
    can hold a number, a case id or a search term, and each distinct path would be a new series."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route is not None:
        return f"/{match.route}"
    if request.path.startswith(settings.STATIC_URL):
        return metrics.STATIC_ROUTE
    return metrics.UNMATCHED_ROUTE


def user_id_of(request: HttpRequest) -> int | None:
    """The signed-in user's id if this request already looked the user up; never a lookup of its own."""
    user = request.__dict__.get("user")
    if user is None:
        return None
    if getattr(user, "_wrapped", None) is empty:  # a session user nobody asked for
        return None
    return user.pk if getattr(user, "is_authenticated", False) else None


class RequestMetricsMiddleware:
    """Times and counts every request by route template, method and status (``fapiao_http_*``),
    and logs it as one JSON line: request id, user id, route, method, status and duration.

    The line carries no path and no query string: a search such as ``?buyer=<an ID number>`` must
    not put a party's data into the logs (docs/spec/security.md).  Placed right after
    :class:`RequestIdMiddleware`, so the request id is bound while it logs.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        route = route_of(request)
        method = request.method if request.method in METHODS else "other"
        metrics.observe_request(route, method, response, seconds)
        # Refusals and 503s per hour, for 运维概览; never raises, never waits for a database that is down.
        down = getattr(response, "unavailable_reason", "") in hourly.DATABASE_DOWN
        hourly.note(response.status_code, database_down=down)
        level = logging.WARNING if response.status_code >= 500 else logging.INFO
        if request_log.isEnabledFor(level):
            # makeRecord + handle: Logger.log's search of the stack for the caller is not needed.
            fields = {
                "request_id": getattr(request, "request_id", ""),
                "user_id": user_id_of(request),
                "method": method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
            }
            record = request_log.makeRecord(
                request_log.name, level, __file__, 0, "request", (), None, extra={"fields": fields}
            )
            request_log.handle(record)
        return response


class ErrorMiddleware:
    """Answers a view's domain error or database failure through :func:`fapiao.platform.errors.respond`:
    a problem document under ``/api/``, a page that says what to do everywhere else (a database
    failure: 503 with ``Retry-After``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, FapiaoError | DatabaseError):
            return respond(request, exception)
        return None
