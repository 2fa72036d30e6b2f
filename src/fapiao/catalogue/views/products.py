"""The product catalogue (商品目录): list, add, change, remove."""

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
from fapiao.catalogue import selectors, services
from fapiao.catalogue.models import Product
from fapiao.catalogue.views.editing import PAGE_SIZE, edit_page
from fapiao.core.errors import _
from fapiao.platform.labels import rate_choices

PRODUCT_FIELDS = ("name", "tax_code", "spec", "unit", "unit_price", "price_includes_tax", "tax_rate")
PRODUCT_LABELS = {
    "name": _("Item name"),
    "tax_code": _("Tax classification code"),
    "spec": _("Specification"),
    "unit": _("Unit"),
    "unit_price": _("Unit price"),
    "tax_rate": _("Tax rate"),
}


@login_required
@require_GET
def product_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    products = selectors.product_list(user=acting_user(request), query=query)
    page = Paginator(products, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "catalogue/products.html", {"page": page, "q": query})


def _product_initial(product: Product | None) -> dict[str, str]:
    if product is None:
        return {**dict.fromkeys(PRODUCT_FIELDS, ""), "tax_rate": "0.06"}
    values = {name: str(getattr(product, name)) for name in PRODUCT_FIELDS}
    values["price_includes_tax"] = "on" if product.price_includes_tax else ""
    return values


@login_required
@require_http_methods(["GET", "POST"])
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

    return edit_page(
        request,
        template="catalogue/product_form.html",
        fields=PRODUCT_FIELDS,
        labels=PRODUCT_LABELS,
        initial=_product_initial(product),
        save=save,
        done="catalogue:products",
        extra={"editing": product is not None, "product_id": product_id, "rate_choices": rate_choices()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def product_delete(request: HttpRequest, product_id: int) -> HttpResponse:
    user = acting_user(request)
    product = selectors.product_get(user=user, product_id=product_id)
    if request.method == "POST":
        services.delete_product(user=user, product_id=product_id)
        messages.success(request, gettext("Removed {name} from the catalogue.").format(name=str(product)))
        return redirect("catalogue:products")
    context = {"what": str(product), "cancel": "catalogue:products", "kind": "product"}
    return render(request, "catalogue/confirm_delete.html", context)
