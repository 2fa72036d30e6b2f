"""Request ids, and every failure of a view answered in one place (never a traceback, never a half-write)."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from fapiao.core.errors import FapiaoError
from fapiao.platform.context import RequestContext, bound
from fapiao.platform.errors import respond

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


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
