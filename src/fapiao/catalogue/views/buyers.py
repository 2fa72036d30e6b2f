"""The address book (购买方地址簿): list, add, change, remove."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods

from fapiao.accounts.requests import acting_user
from fapiao.catalogue import selectors, sensitive, services
from fapiao.catalogue.models import Buyer
from fapiao.catalogue.views.editing import PAGE_SIZE, edit_page
from fapiao.core.errors import _
from fapiao.platform.private import private_page

BUYER_FIELDS = services.BUYER_FIELDS
BUYER_LABELS = {
    "name": _("Buyer name"),
    "tax_id": _("Taxpayer number"),
    "address": _("Address"),
    "phone": _("Phone"),
    "bank": _("Bank"),
    "bank_account": _("Bank account"),
    "email": _("E-mail"),
}


def _masked(buyer: Buyer) -> dict[str, Any]:
    return {"id": buyer.pk, **sensitive.masked(buyer)}


@login_required
@require_GET
def buyer_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    buyers = selectors.buyer_list(user=acting_user(request), query=query)
    page = Paginator(buyers, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "rows": [_masked(buyer) for buyer in page], "q": query}
    return render(request, "catalogue/buyers.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@private_page
def buyer_edit(request: HttpRequest, buyer_id: int | None = None) -> HttpResponse:
    """Add an entry, or change one.  Changing shows the stored values in full: an audited reveal."""
    user = acting_user(request)
    services.merchant_of(user)  # only those who issue have an address book (403 for the others)
    initial: dict[str, str] = dict.fromkeys(BUYER_FIELDS, "")
    if buyer_id is not None:
        selectors.buyer_get(user=user, buyer_id=buyer_id)  # another merchant's entry: 404
        if request.method == "GET":
            initial = services.reveal_buyer(user=user, buyer_id=buyer_id)

    def save(data: dict[str, str]) -> Any:
        values = services.BuyerInput(**{name: data.get(name, "") for name in BUYER_FIELDS})
        return services.save_buyer(user=user, data=values, buyer_id=buyer_id)

    return edit_page(
        request,
        template="catalogue/buyer_form.html",
        fields=BUYER_FIELDS,
        labels=BUYER_LABELS,
        initial=initial,
        save=save,
        done="catalogue:buyers",
        extra={"editing": buyer_id is not None, "buyer_id": buyer_id},
    )


@login_required
@require_http_methods(["GET", "POST"])
def buyer_delete(request: HttpRequest, buyer_id: int) -> HttpResponse:
    user = acting_user(request)
    buyer = selectors.buyer_get(user=user, buyer_id=buyer_id)
    if request.method == "POST":
        services.delete_buyer(user=user, buyer_id=buyer_id)
        messages.success(request, gettext("Removed {name} from the address book.").format(name=buyer.name))
        return redirect("catalogue:buyers")
    context = {"what": buyer.name, "cancel": "catalogue:buyers", "kind": "buyer"}
    return render(request, "catalogue/confirm_delete.html", context)
