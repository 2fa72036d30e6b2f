"""The public 查验 page (/check/): no sign-in; the QR code on every invoice PDF leads here."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

from fapiao.core.errors import ValidationFailed
from fapiao.documents import check
from fapiao.platform.forms import FormState
from fapiao.platform.middleware import client_address


@require_GET
def check_page(request: HttpRequest) -> HttpResponse:
    names = (*check.FIELDS, "code")
    data = {name: request.GET.get(name, "").strip() for name in names}
    form = FormState(data=data)
    answer = None
    status = 200
    if any(data.values()):
        try:
            answer = check.check_invoice(check.parse_query(data), client=client_address(request))
        except ValidationFailed as failed:
            form.add_failure(failed, lambda path: path)
        except check.CheckRateLimitedError as limited:
            form.add("", limited.render(gettext))
            status = 429
    response = render(request, "documents/check.html", {"form": form, "answer": answer}, status=status)
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response
