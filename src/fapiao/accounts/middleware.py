"""A user signed in with a one-time password changes it before doing anything else."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse

#: URL names a user with a one-time password may still reach (the first that resolves is where
#: they are sent).  The web UI names its pages in the ``web`` namespace.
PASSWORD_CHANGE_URL_NAMES = ("web:password_change", "password_change")
ALWAYS_ALLOWED_URL_NAMES = ("web:logout", "logout", "admin:logout", "set_language")
ALWAYS_ALLOWED_PREFIXES = ("/static/", "/api/", "/healthz", "/readyz")


def _reverse_all(names: tuple[str, ...]) -> list[str]:
    found = []
    for name in names:
        try:
            found.append(reverse(name))
        except NoReverseMatch:
            continue
    return found


class PasswordChangeRequiredMiddleware:
    """Sends a session user whose password is one-time to the password change page.

    The API answers such a session with 403 ``password_change_required`` itself
    (``fapiao.api.Session``); API tokens are revoked when a password is reset.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and getattr(user, "must_change_password", False):
            redirect = self._redirect(request)
            if redirect is not None:
                return redirect
        return self.get_response(request)

    def _redirect(self, request: HttpRequest) -> HttpResponse | None:
        path = request.path
        if path.startswith(ALWAYS_ALLOWED_PREFIXES) or path.startswith(settings.STATIC_URL):
            return None
        change = _reverse_all(PASSWORD_CHANGE_URL_NAMES)
        if not change or path in change or path in _reverse_all(ALWAYS_ALLOWED_URL_NAMES):
            return None
        return HttpResponseRedirect(change[0])
