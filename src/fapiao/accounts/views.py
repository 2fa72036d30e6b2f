"""Pages of the sign-in machinery: the locked-out page and the CSRF failure page.

Both answer in the user's language (zh-Hans by default) and say what to do next.  On the API
(``/api/``) the same failures are problem documents.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.utils.translation import gettext

from fapiao.audit.services import record_refusal
from fapiao.core.errors import _
from fapiao.web import problems

LOCKED_OUT_STATUS = 429


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


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
    if _is_api(request):
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
    record_refusal(request, status=403, code="csrf_failed")
    if _is_api(request):
        return problems.problem(403, code="csrf_failed", detail=detail)
    return render(request, "accounts/csrf_failure.html", {"detail": detail}, status=403)
