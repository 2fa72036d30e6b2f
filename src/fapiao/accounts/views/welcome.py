"""The pages behind a mailed link: choose one's password (a new account, or after a reset).

The link carries its token in the path; the first page checks it, keeps it in the session and sends
the browser on to a page whose address holds no token — so the token never leaves in a ``Referer``
and is never in a cached page.  Anyone with the link may use it once: it is the only credential.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from fapiao.accounts import invitations
from fapiao.core.errors import FapiaoError, ValidationFailed, _
from fapiao.platform.forms import FormState, posted

SESSION_KEY = "fapiao_invitation"
FIELDS = ("password", "password_again")


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    response["Referrer-Policy"] = "no-referrer"
    return response


def _closed(request: HttpRequest, failure: FapiaoError) -> HttpResponse:
    """Why the link does not work, and what to do next."""
    request.session.pop(SESSION_KEY, None)
    context = {"detail": failure.render(gettext)}
    return _no_store(render(request, "accounts/welcome_closed.html", context, status=failure.status))


@require_http_methods(["GET"])
def open_link(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitations.find_open(token)
    except FapiaoError as failure:
        return _closed(request, failure)
    request.session[SESSION_KEY] = token
    return _no_store(redirect("accounts:welcome-password"))


@require_http_methods(["GET", "POST"])
def choose_password(request: HttpRequest) -> HttpResponse:
    token = str(request.session.get(SESSION_KEY, ""))
    try:
        invitation = invitations.find_open(token)
    except FapiaoError as failure:
        return _closed(request, failure)
    form = FormState(data={name: "" for name in FIELDS})
    if request.method == "POST":
        typed = posted(request.POST, FIELDS)
        try:
            user = invitations.accept(
                token=token, password=typed["password"], password_again=typed["password_again"]
            )
        except ValidationFailed as failure:
            form.add_failure(failure, lambda field: field)
        except FapiaoError as failure:  # used or replaced a moment ago
            return _closed(request, failure)
        else:
            request.session.pop(SESSION_KEY, None)
            done = _("Your password is set. Sign in as {username} with it.")
            messages.success(request, gettext(done).format(username=user.username))
            return redirect("web:login")
    context = {
        "form": form,
        "summary": form.summary(
            {"password": gettext(_("New password")), "password_again": gettext(_("New password again"))}
        ),
        "username": invitation.user.username,
        "is_reset": invitation.purpose == invitation.PURPOSE_RESET,
        "expires": invitation.expires_at,
    }
    return _no_store(render(request, "accounts/welcome.html", context))
