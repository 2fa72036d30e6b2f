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
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext

from fapiao.core.errors import NotFoundError, PermissionDeniedError, _
from fapiao.web import problems

log = logging.getLogger(__name__)
View = Callable[..., HttpResponse]


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


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
    from fapiao.audit.services import record_refusal

    record_refusal(request, status=403, code="page_forbidden")
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
