"""Gates a signed-in browser passes before anything else: a one-time password is changed first, and
staff with a second factor enter their code (operators set one up) before the session is used.

The API applies the same two gates to sessions itself (``fapiao.api.Session``, 403 problems); API
tokens are revoked when a password is reset and are only created in a session that passed both.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse

from fapiao.accounts import second_factor

#: URL names a user with a one-time password may still reach (the first that resolves is where
#: they are sent).  The web UI names its pages in the ``web`` namespace.
PASSWORD_CHANGE_URL_NAMES = ("web:password_change", "password_change")
SECOND_FACTOR_URL_NAMES = ("accounts:second-factor", "accounts:second-factor-setup")
ALWAYS_ALLOWED_URL_NAMES = ("web:logout", "logout", "admin:logout", "set_language")
ALWAYS_ALLOWED_PREFIXES = ("/static/", "/api/", "/healthz", "/readyz")

Gate = Callable[[HttpRequest], HttpResponse]


def _reverse_all(names: tuple[str, ...]) -> list[str]:
    found = []
    for name in names:
        try:
            found.append(reverse(name))
        except NoReverseMatch:
            continue
    return found


def _exempt(request: HttpRequest, also: tuple[str, ...]) -> bool:
    path = request.path
    if path.startswith(ALWAYS_ALLOWED_PREFIXES) or path.startswith(settings.STATIC_URL):
        return True
    return path in _reverse_all(ALWAYS_ALLOWED_URL_NAMES + also)


class PasswordChangeRequiredMiddleware:
    """Sends a session user whose password is one-time to the password change page."""

    def __init__(self, get_response: Gate) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and getattr(user, "must_change_password", False):
            change = _reverse_all(PASSWORD_CHANGE_URL_NAMES)
            # The second-factor pages stay open: the code comes before the new password.
            if change and not _exempt(request, PASSWORD_CHANGE_URL_NAMES + SECOND_FACTOR_URL_NAMES):
                return HttpResponseRedirect(change[0])
        return self.get_response(request)


class SecondFactorMiddleware:
    """Asks staff with a second factor for their code; sends operators without one to set it up."""

    def __init__(self, get_response: Gate) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:

        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and second_factor.required(user)
            and not second_factor.session_passed(request)
            and not _exempt(request, SECOND_FACTOR_URL_NAMES)
        ):
            name = (
                "accounts:second-factor-setup"
                if second_factor.must_set_up(user)
                else "accounts:second-factor"
            )
            query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
            return HttpResponseRedirect(reverse(name) + (f"?{query}" if query else ""))
        return self.get_response(request)
