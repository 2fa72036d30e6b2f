"""The one place where failures become answers (docs/guide/README.md), for the API and the pages alike.

:func:`respond` maps a domain error (:class:`FapiaoError`) or a database failure to what the client
understands: a problem document under ``/api/`` (the API's exception handlers call it), a page
that says what happened and what to do next everywhere else (:class:`ErrorMiddleware
<fapiao.platform.middleware.ErrorMiddleware>` calls it for every view).  Not found → the 404
page; not allowed → the 403 page; unavailable → the 503 page; anything else the request cannot
do as it stands (a conflict, invalid input no form caught) → the message above the form it came
from, or a page saying nothing was changed.  A view that re-renders its form with each error
beside its field catches the error itself; nothing else does.

The 500 and 503 pages are rendered without the menu and without the database: they must work
when the database is what failed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.template import loader
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext

from fapiao.core.errors import FapiaoError, _
from fapiao.platform import problems
from fapiao.platform.metrics import mark_unavailable
from fapiao.platform.ratelimit import Decision
from fapiao.platform.requests import is_api

log = logging.getLogger(__name__)
View = Callable[..., HttpResponse]


# Called as f(request, status=…, code=…) for every request refused with 401 or 403, API or page: the
# audit trail registers itself here from ``AuditConfig.ready`` (the platform knows no audit).  It may
# return the rate limiter's :class:`Decision`: one not ``allowed`` turns the refusal into a 429.
REFUSED: list[Callable[..., Decision | None]] = []
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def refused(request: HttpRequest, *, status: int, code: str) -> Decision | None:
    """Every refused request is in the audit trail (docs/spec/security.md) — an anonymous client's sampled,
    and past the hour's limit not at all: then the refusing decision comes back (answer 429)."""
    throttled = None
    for record in REFUSED:
        decision = record(request, status=status, code=code)
        if decision is not None and not decision.allowed:
            throttled = decision
    return throttled


def too_many_requests(request: HttpRequest, decision: Decision) -> HttpResponse:
    """429 with ``Retry-After``: this client's anonymous refusals passed the hour's limit."""
    if is_api(request):
        return problems.too_many_requests(decision.retry_after)
    detail = problems.throttled_detail(decision.retry_after)
    response = render(request, "web/errors/429.html", {"detail": detail}, status=429)
    response["Retry-After"] = str(decision.retry_after)
    return response


def _message(exception: BaseException | None) -> str:
    """The exception's own message when it was written for people (ours, or one we raised)."""
    if exception is None or not exception.args:
        return ""
    first = exception.args[0]
    return first if isinstance(first, str) else ""


def page_not_found(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    if is_api(request):
        return problems.problem(404, code="not_found", detail=gettext(_("Not found")))
    return _not_found_page(request, _message(exception))


def _not_found_page(request: HttpRequest, detail: str) -> HttpResponse:
    return render(request, "web/errors/404.html", {"detail": detail}, status=404)


def permission_denied(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    if is_api(request):
        return problems.problem(403, code="forbidden", detail=gettext(_("You are not allowed to do this.")))
    return _forbidden_page(request, _message(exception))


def _forbidden_page(request: HttpRequest, detail: str) -> HttpResponse:
    throttled = refused(request, status=403, code="page_forbidden")
    if throttled is not None:
        return too_many_requests(request, throttled)
    return render(request, "web/errors/403.html", {"detail": detail}, status=403)


def _bare(template: str, status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    """Render without context processors: no session, no menu, no database."""
    body = loader.get_template(template).render({"STATIC_URL": settings.STATIC_URL})
    return HttpResponse(body, status=status, headers=headers)


def database_unavailable_page(request: HttpRequest, error: BaseException | None = None) -> HttpResponse:
    """503 with Retry-After: nothing was saved; the page says to wait and retry."""
    log.warning("database unavailable: %s", error, extra={"path": request.path})
    retry = str(settings.FAPIAO_RETRY_AFTER_SECONDS)
    return mark_unavailable(_bare("web/errors/503.html", 503, {"Retry-After": retry}), "database_unavailable")


def server_error(request: HttpRequest) -> HttpResponse:
    exception = sys.exc_info()[1]
    if isinstance(exception, FapiaoError | DatabaseError):
        return respond(request, exception)
    if is_api(request):
        return problems.problem(500, code="internal_error", detail=gettext(_("Internal error")))
    return _bare("web/errors/500.html", 500)


def respond(request: HttpRequest, failure: FapiaoError | DatabaseError) -> HttpResponse:
    """The answer to a failure: a problem document under ``/api/``, a page everywhere else."""
    if isinstance(failure, DatabaseError):
        if is_api(request):
            return problems.database_unavailable(request, failure)
        return database_unavailable_page(request, failure)
    if is_api(request):
        if failure.status in (401, 403):
            throttled = refused(request, status=failure.status, code=failure.code)
            if throttled is not None:  # an anonymous client past the hour's limit
                return problems.too_many_requests(throttled.retry_after)
        return problems.from_error(failure)
    return _error_page(request, failure)


def _error_page(request: HttpRequest, error: FapiaoError) -> HttpResponse:
    detail = error.render(gettext)
    if error.status == 404:
        return _not_found_page(request, detail)
    if error.status in (401, 403):
        return _forbidden_page(request, detail)
    if error.status == 503:
        retry = str(settings.FAPIAO_RETRY_AFTER_SECONDS)
        return mark_unavailable(_bare("web/errors/503.html", 503, {"Retry-After": retry}), error.code)
    back = _back(request)
    if back:  # a form sent from one of our pages: back to it, the message above it
        messages.error(request, detail)
        return HttpResponseRedirect(back)
    title = gettext(problems.TITLES.get(error.status, problems.TITLES[400]))
    context = {"detail": detail, "title": title}
    return render(request, "web/errors/refused.html", context, status=error.status)


def _back(request: HttpRequest) -> str:
    """The page a form was sent from (ours only), or "" for a link followed or an unknown origin."""
    referer = request.headers.get("Referer", "")
    if request.method in SAFE_METHODS or not referer:
        return ""
    if not url_has_allowed_host_and_scheme(referer, {request.get_host()}, request.is_secure()):
        return ""
    return referer


def friendly(view: View) -> View:
    """The same mapping at the view (:class:`ErrorMiddleware` applies it to every view already)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except FapiaoError as error:
            return respond(request, error)

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
                "Too many wrong passwords or codes: this account is locked for {minutes} minutes. "
                "Try again later, or ask an operator to unlock it."
            )
        ).format(minutes=minutes)
    else:
        detail = gettext(
            _("Too many wrong passwords or codes: this account is locked. Ask an operator to unlock it.")
        )
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
    throttled = refused(request, status=403, code="csrf_failed")
    if throttled is not None:
        return too_many_requests(request, throttled)
    if is_api(request):
        return problems.problem(403, code="csrf_failed", detail=detail)
    return render(request, "accounts/csrf_failure.html", {"detail": detail}, status=403)
