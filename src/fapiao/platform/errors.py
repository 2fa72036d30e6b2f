"""Error pages that say, in plain words, what happened and what to do next (DESIGN.md C10).

The same failure is a problem document under ``/api/`` and a page everywhere else.  The 500
and 503 pages are rendered without the menu and without the database: they must work when
the database is what failed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.template import loader
from django.utils.translation import gettext

from fapiao.core.errors import NotFoundError, PermissionDeniedError, _
from fapiao.platform import problems
from fapiao.platform.requests import is_api

log = logging.getLogger(__name__)
View = Callable[..., HttpResponse]


# Called as f(request, status=…, code=…) for every page refused with 403: the audit trail registers
# itself here from ``AuditConfig.ready`` (the platform knows no audit).
PAGE_REFUSED: list[Callable[..., Any]] = []


def _message(exception: BaseException | None) -> str:
    """The exception's own message when it was written for people (ours, or one we raised)."""
    if exception is None or not exception.args:
        return ""
    first = exception.args[0]
    return first if isinstance(first, str) else ""


def page_not_found(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    if is_api(request):
        return problems.problem(404, code="not_found", detail=gettext(_("Not found")))
    context = {"detail": _message(exception)}
    return render(request, "web/errors/404.html", context, status=404)


def permission_denied(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    if is_api(request):
        return problems.problem(403, code="forbidden", detail=gettext(_("You are not allowed to do this.")))
    # Every page refused is in the audit trail, as every refused API call is (DESIGN.md C8).
    for record in PAGE_REFUSED:
        record(request, status=403, code="page_forbidden")
    context = {"detail": _message(exception)}
    return render(request, "web/errors/403.html", context, status=403)


def _bare(template: str, status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    """Render without context processors: no session, no menu, no database."""
    body = loader.get_template(template).render({"STATIC_URL": settings.STATIC_URL})
    return HttpResponse(body, status=status, headers=headers)


def database_unavailable_page(request: HttpRequest, error: BaseException | None = None) -> HttpResponse:
    """503 with Retry-After: nothing was saved; the page says to wait and retry."""
    log.warning("database unavailable: %s", error, extra={"path": request.path})
    retry = str(settings.FAPIAO_RETRY_AFTER_SECONDS)
    return _bare("web/errors/503.html", 503, {"Retry-After": retry})


def server_error(request: HttpRequest) -> HttpResponse:
    exception = sys.exc_info()[1]
    if isinstance(exception, DatabaseError):
        if is_api(request):
            return problems.database_unavailable(request, exception)
        return database_unavailable_page(request, exception)
    if is_api(request):
        return problems.problem(500, code="internal_error", detail=gettext(_("Internal error")))
    return _bare("web/errors/500.html", 500)


def friendly(view: View) -> View:
    """Our domain errors as pages: not found → 404 page, not allowed → 403 page, with the message."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotFoundError as error:
            raise Http404(error.render(gettext)) from error
        except PermissionDeniedError as error:
            raise PermissionDenied(error.render(gettext)) from error

    return wrapper


# The sign-in machinery's refusals (django-axes' lockout, Django's CSRF check).
LOCKED_OUT_STATUS = 429


def locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """django-axes calls this when a sign-in is refused because the username is locked out."""
    minutes = settings.FAPIAO_LOCKOUT_MINUTES
    if minutes:
        detail = gettext(
            _(
                "Too many wrong passwords: this account is locked for {minutes} minutes. "
                "Try again later, or ask an operator to unlock it."
            )
        ).format(minutes=minutes)
    else:
        detail = gettext(_("Too many wrong passwords: this account is locked. Ask an operator to unlock it."))
    if is_api(request):
        return problems.problem(LOCKED_OUT_STATUS, code="locked_out", detail=detail)
    context = {"detail": detail, "login_url": resolve_url(settings.LOGIN_URL)}
    return render(request, "accounts/locked_out.html", context, status=LOCKED_OUT_STATUS)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF check refused a form: usually an old page or cookies switched off."""
    detail = gettext(
        _(
            "This form has expired or did not come from this site, so nothing was saved. "
            "Go back, reload the page and submit it again."
        )
    )
    for record in PAGE_REFUSED:
        record(request, status=403, code="csrf_failed")
    if is_api(request):
        return problems.problem(403, code="csrf_failed", detail=detail)
    return render(request, "accounts/csrf_failure.html", {"detail": detail}, status=403)
