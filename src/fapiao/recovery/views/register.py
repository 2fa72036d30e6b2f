"""代商户登记: support's page to register a case for a merchant who phoned in or wrote."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from fapiao.accounts.models import Merchant
from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.core.errors import FapiaoError
from fapiao.platform.errors import friendly
from fapiao.platform.forms import FormState, posted
from fapiao.platform.private import private_page
from fapiao.recovery import register
from fapiao.recovery.templatetags.recovery_tags import channel as channel_label
from fapiao.recovery.views.apply import FIELDS, LABELS, PATHS, claim_payload, form_context

REGISTER_FIELDS = ("merchant", "channel", *FIELDS)
REGISTER_LABELS = {
    **LABELS,
    "merchant": _("Merchant (unified social credit code)"),
    "channel": _("How the merchant reached us"),
}


#: Where the service's paths land on this form (``claim.buyer.name`` → ``buyer_name``).
def _path(path: str) -> str:
    bare = path.removeprefix("claim.").removeprefix("claim")
    return PATHS.get(bare, bare) if bare else ""


def _page(request: HttpRequest, form: FormState) -> HttpResponse:
    context = form_context(form, None, REGISTER_LABELS)
    context.update(
        {
            "register": True,
            "channel_choices": [("", gettext("Choose…"))]
            + [(c.value, str(channel_label(c.value))) for c in register.REGISTER_CHANNELS],
            "merchants": Merchant.objects.filter(is_active=True)
            .order_by("name")
            .values_list("uscc", "name")[:500],
        }
    )
    return render(request, "recovery/apply.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@friendly
@private_page
def register_page(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.REGISTER_CASES)
    if request.method == "GET":
        data = dict.fromkeys(REGISTER_FIELDS, "")
        data["merchant"] = request.GET.get("merchant", "")
        return _page(request, FormState(data=data))
    form = FormState(data=posted(request.POST, REGISTER_FIELDS))
    payload = {
        "merchant": form.data["merchant"],
        "channel": form.data["channel"],
        "claim": claim_payload(form.data),
    }
    try:
        case = register.register_case(user=user, payload=payload)
    except FapiaoError as failure:
        form.add_failure(failure, _path)
        return _page(request, form)
    text = gettext("Case {no} was registered for {merchant}; the merchant was notified.")
    messages.success(request, text.format(no=case.acceptance_no, merchant=case.merchant.name))
    return redirect("recovery:case", case_id=case.uid)
