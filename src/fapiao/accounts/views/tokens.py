"""One's own API tokens: create (the secret shown once), list, revoke.

The same services as ``/api/v1/accounts/tokens``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from fapiao.accounts import second_factor, selectors
from fapiao.accounts import tokens as api_tokens
from fapiao.accounts.choices import STAFF_ROLES
from fapiao.accounts.requests import acting_user
from fapiao.accounts.views.secret import secret_page
from fapiao.core.errors import FapiaoError, _
from fapiao.platform.forms import FormState, posted

TOKEN_FIELDS = ("name", "scope", "days")


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    actor = acting_user(request)
    form = FormState(data={"name": "", "scope": "read", "days": str(api_tokens.DEFAULT_TOKEN_DAYS)})
    if request.method == "POST":
        form.data = posted(request.POST, TOKEN_FIELDS)
        try:
            days = int(form.data["days"] or "0")
        except ValueError:
            days = 0
        try:
            token, plaintext = api_tokens.create_token(
                user=actor, scope=form.data["scope"], name=form.data["name"], days=days, actor=actor
            )
        except FapiaoError as failure:
            form.add_failure(failure, lambda field: field)
        else:
            return secret_page(
                request,
                {
                    "title": gettext(_("Your new API token")),
                    "secret": plaintext,
                    "explanation": gettext(
                        _("Copy it now: it is shown only this once. It expires on {date}.")
                    ).format(date=f"{token.expires_at:%Y-%m-%d}"),
                    "usage": f"Authorization: Bearer {plaintext}",
                    "back": "accounts:tokens",
                },
            )
    context = {
        "offer_second_factor": actor.role in STAFF_ROLES and not second_factor.is_set_up(actor),
        "rows": selectors.own_tokens(user=actor),
        "now": timezone.now(),
        "form": form,
        "summary": form.summary({"name": gettext(_("Name")), "scope": gettext(_("Scope")), "days": ""}),
        "max_days": api_tokens.MAX_TOKEN_DAYS,
    }
    return render(request, "accounts/tokens.html", context)


@login_required
@require_POST
def revoke_token(request: HttpRequest, token_id: str) -> HttpResponse:
    actor = acting_user(request)
    token = selectors.own_token_get(user=actor, public_id=token_id)
    api_tokens.revoke_token(token=token, actor=actor)
    messages.success(request, gettext(_("Token “{name}” was revoked.")).format(name=token.name))
    return redirect("accounts:tokens")
