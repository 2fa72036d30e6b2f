"""The second-factor pages: enter the code after the password; set up an authenticator app."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from fapiao.accounts import second_factor
from fapiao.accounts.models import User
from fapiao.core.errors import ValidationFailed
from fapiao.platform.errors import locked_out
from fapiao.platform.forms import FormState


def _next(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(wanted, {request.get_host()}, request.is_secure()):
        return wanted
    return resolve_url("web:home")


def _code_form(request: HttpRequest) -> FormState:
    return FormState(data={"code": request.POST.get("code", ""), "next": _next(request)})


@login_required
@require_http_methods(["GET", "POST"])
def enter_code(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if not second_factor.is_set_up(user):
        return redirect(f"{resolve_url('accounts:second-factor-setup')}?next={_next(request)}")
    form = _code_form(request)
    if request.method == "POST":
        try:
            second_factor.verify(request=request, user=user, code=form.data["code"])
        except second_factor.SecondFactorLockedOutError:
            return locked_out(request)
        except ValidationFailed as failure:
            form.add_failure(failure, lambda field: field)
        else:
            return redirect(_next(request))
    context = {"form": form, "summary": form.summary({"code": ""})}
    return render(request, "accounts/second_factor.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def set_up(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if second_factor.is_set_up(user):
        return redirect(_next(request))
    form = _code_form(request)
    if request.method == "POST" and user.totp_secret:
        try:
            second_factor.confirm_setup(request=request, user=user, code=form.data["code"])
        except second_factor.SecondFactorLockedOutError:
            return locked_out(request)
        except ValidationFailed as failure:
            form.add_failure(failure, lambda field: field)
        else:
            request.session[second_factor.SESSION_KEY] = user.pk
            request.session.cycle_key()
            return redirect(_next(request))
        secret = second_factor.secret_of(user)
    else:
        secret = second_factor.start_setup(user=user)
    context = {
        "form": form,
        "summary": form.summary({"code": ""}),
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "uri": second_factor.provisioning_uri(user, secret),
        "required": second_factor.must_set_up(user),
    }
    response = render(request, "accounts/second_factor_setup.html", context)
    add_never_cache_headers(response)
    return response
