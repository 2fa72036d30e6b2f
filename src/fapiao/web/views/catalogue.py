"""The address book (购买方地址簿) and the product catalogue (商品目录): list, add, change, remove."""

from __future__ import annotations

from collections.abc import Callable
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
from fapiao.catalogue.models import Buyer, Product
from fapiao.core.errors import ValidationFailed, _
from fapiao.invoices.forms import rate_choices
from fapiao.platform.errors import friendly
from fapiao.platform.forms import FormState, posted

PAGE_SIZE = 50
BUYER_FIELDS = services.BUYER_FIELDS
PRODUCT_FIELDS = ("name", "tax_code", "spec", "unit", "unit_price", "price_includes_tax", "tax_rate")
BUYER_LABELS = {
    "name": _("Buyer name"),
    "tax_id": _("Taxpayer number"),
    "address": _("Address"),
    "phone": _("Phone"),
    "bank": _("Bank"),
    "bank_account": _("Bank account"),
}
PRODUCT_LABELS = {
    "name": _("Item name"),
    "tax_code": _("Tax classification code"),
    "spec": _("Specification"),
    "unit": _("Unit"),
    "unit_price": _("Unit price"),
    "tax_rate": _("Tax rate"),
}


def _translated(labels: dict[str, str]) -> dict[str, str]:
    return {name: gettext(text) for name, text in labels.items()}


def _masked(buyer: Buyer) -> dict[str, Any]:
    return {"id": buyer.pk, **sensitive.masked(buyer)}


@login_required
@require_GET
@friendly
def buyer_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    buyers = selectors.buyer_list(user=acting_user(request), query=query)
    page = Paginator(buyers, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "rows": [_masked(buyer) for buyer in page], "q": query}
    return render(request, "web/catalogue/buyers.html", context)


def _edit(
    request: HttpRequest,
    *,
    template: str,
    fields: tuple[str, ...],
    labels: dict[str, str],
    initial: dict[str, str],
    save: Callable[[dict[str, str]], Any],
    done: str,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    state = FormState(data=initial)
    if request.method == "POST":
        state = FormState(data=posted(request.POST, fields))
        try:
            save(state.data)
        except ValidationFailed as failed:
            state.add_failure(failed, lambda path: path if path in fields else "")
        else:
            messages.success(request, gettext("Saved."))
            return redirect(done)
    context = {"form": state, "summary": state.summary(_translated(labels)), **(extra or {})}
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
@friendly
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

    return _edit(
        request,
        template="web/catalogue/buyer_form.html",
        fields=BUYER_FIELDS,
        labels=BUYER_LABELS,
        initial=initial,
        save=save,
        done="web:buyers",
        extra={"editing": buyer_id is not None, "buyer_id": buyer_id},
    )


@login_required
@require_http_methods(["GET", "POST"])
@friendly
def buyer_delete(request: HttpRequest, buyer_id: int) -> HttpResponse:
    user = acting_user(request)
    buyer = selectors.buyer_get(user=user, buyer_id=buyer_id)
    if request.method == "POST":
        services.delete_buyer(user=user, buyer_id=buyer_id)
        messages.success(request, gettext("Removed {name} from the address book.").format(name=buyer.name))
        return redirect("web:buyers")
    context = {"what": buyer.name, "cancel": "web:buyers", "kind": "buyer"}
    return render(request, "web/catalogue/confirm_delete.html", context)


@login_required
@require_GET
@friendly
def product_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    products = selectors.product_list(user=acting_user(request), query=query)
    page = Paginator(products, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "web/catalogue/products.html", {"page": page, "q": query})


def _product_initial(product: Product | None) -> dict[str, str]:
    if product is None:
        return {**dict.fromkeys(PRODUCT_FIELDS, ""), "tax_rate": "0.06"}
    values = {name: str(getattr(product, name)) for name in PRODUCT_FIELDS}
    values["price_includes_tax"] = "on" if product.price_includes_tax else ""
    return values


@login_required
@require_http_methods(["GET", "POST"])
@friendly
def product_edit(request: HttpRequest, product_id: int | None = None) -> HttpResponse:
    user = acting_user(request)
    services.merchant_of(user)  # only those who issue have a catalogue (403 for the others)
    product = selectors.product_get(user=user, product_id=product_id) if product_id is not None else None

    def save(data: dict[str, str]) -> Any:
        values = services.ProductInput(
            name=data.get("name", ""),
            tax_code=data.get("tax_code", ""),
            spec=data.get("spec", ""),
            unit=data.get("unit", ""),
            unit_price=data.get("unit_price", ""),
            price_includes_tax=data.get("price_includes_tax") == "on",
            tax_rate=data.get("tax_rate", ""),
        )
        return services.save_product(user=user, data=values, product_id=product_id)

    return _edit(
        request,
        template="web/catalogue/product_form.html",
        fields=PRODUCT_FIELDS,
        labels=PRODUCT_LABELS,
        initial=_product_initial(product),
        save=save,
        done="web:products",
        extra={"editing": product is not None, "product_id": product_id, "rate_choices": rate_choices()},
    )


@login_required
@require_http_methods(["GET", "POST"])
@friendly
def product_delete(request: HttpRequest, product_id: int) -> HttpResponse:
    user = acting_user(request)
    product = selectors.product_get(user=user, product_id=product_id)
    if request.method == "POST":
        services.delete_product(user=user, product_id=product_id)
        messages.success(request, gettext("Removed {name} from the catalogue.").format(name=str(product)))
        return redirect("web:products")
    context = {"what": str(product), "cancel": "web:products", "kind": "product"}
    return render(request, "web/catalogue/confirm_delete.html", context)
