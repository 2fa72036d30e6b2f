"""Issue an invoice: the form, its live totals, the confirmation page, and the one write.

The write carries the confirmation page's token as its ``Idempotency-Key``, so a double click
or a resubmitted page answers with the same invoice instead of a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.catalogue import selectors as catalogue
from fapiao.catalogue.models import Product
from fapiao.catalogue.services import remember_buyer, reveal_buyer
from fapiao.core.errors import FapiaoError, ValidationFailed, _
from fapiao.core.strict import whole_number_or_none
from fapiao.core.tax_codes import SOURCE as TAX_CODE_SOURCE
from fapiao.core.words import amount_in_words
from fapiao.invoices.forms import (
    BUYER_FIELDS,
    FIELD_LABELS,
    LINE_LABELS,
    IssueForm,
    check,
    empty_form,
    fill_from_product,
    product_price,
    read_form,
)
from fapiao.invoices.services import issue_invoice
from fapiao.platform import labels
from fapiao.platform.forms import new_token, valid_token
from fapiao.platform.labels import rate_choices
from fapiao.platform.private import private_page


@dataclass(frozen=True)
class ProductChoice:
    """A catalogue entry offered on the form, with its price on both bases (含税 and 不含税), so
    the page's script fills a line according to the form's switch without computing money."""

    entry: Product
    price_exclusive: str
    price_inclusive: str

    @classmethod
    def of(cls, product: Product) -> ProductChoice:
        return cls(product, product_price(product, inclusive=False), product_price(product, inclusive=True))


def _labels(form: IssueForm) -> dict[str, str]:
    found = {name: gettext(text) for name, text in FIELD_LABELS.items()}
    for position, row in enumerate(form.rows, start=1):
        for name, text in LINE_LABELS.items():
            found[form.name(row, name)] = gettext("Line {no}, {field}").format(
                no=position, field=gettext(text)
            )
    return found


def _fill_products(user: User, form: IssueForm) -> None:
    for row in form.rows:
        product_id = whole_number_or_none(form.value(row, "product"))
        if product_id is not None and not form.value(row, "name").strip():
            try:
                fill_from_product(form, row, catalogue.product_get(user=user, product_id=product_id))
            except FapiaoError:
                form.state.add(
                    form.name(row, "product"), gettext(_("No such entry in your address book or catalogue."))
                )


def _fill_buyer(user: User, form: IssueForm) -> None:
    """Copy the chosen address-book entry into empty buyer fields (browsers without script)."""
    buyer_id = whole_number_or_none(form.state.data.get("buyer_id", ""))
    if buyer_id is None or form.state.data.get("buyer_name", "").strip():
        return
    try:
        values = reveal_buyer(user=user, buyer_id=buyer_id)
    except FapiaoError:
        return
    for name in BUYER_FIELDS:
        form.state.data[f"buyer_{name}"] = values.get(name, "")


def _context(user: User, form: IssueForm, **extra: Any) -> dict[str, Any]:
    figures_ready = bool(form.figures)
    products = list(catalogue.product_list(user=user)[:500])
    return {
        "form": form.state,
        "lines": form.line_contexts(),
        "summary": form.state.summary(_labels(form)),
        "buyers": catalogue.buyer_list(user=user)[:500],
        "products": [ProductChoice.of(product) for product in products],
        # The 税收分类编码 picker: the shipped selection, plus the codes the merchant's catalogue uses.
        "catalogue_codes": [product.tax_code for product in products if product.tax_code],
        "tax_code_source": TAX_CODE_SOURCE,
        "rate_choices": rate_choices(),
        "unit_price_label": gettext("Unit price with tax (yuan)")
        if form.prices_inclusive
        else gettext("Unit price without tax (yuan)"),
        "kind_choices": labels.choices("kind"),
        "totals": {
            "amount": form.total_amount,
            "tax": form.total_tax,
            "total": form.total_with_tax,
            "words": amount_in_words(form.total_with_tax) if figures_ready else "",
        },
        "figures": form.figures,
        "complete": form.draft is not None,
        **extra,
    }


@login_required
@require_http_methods(["GET", "POST"])
@private_page
def issue(request: HttpRequest) -> HttpResponse:
    """GET: the empty form.  POST: add/remove a line, review (→ confirmation page), edit, or issue."""
    user = acting_user(request)
    require(user, Action.ISSUE_INVOICE)
    if request.method == "GET":
        return render(request, "invoices/issue.html", _context(user, empty_form()))
    action = request.POST.get("action", "review")
    remove = request.POST.get("remove_line", "")
    form = read_form(
        request.POST,
        add_line=action == "add_line",
        remove_row=whole_number_or_none(remove),
    )
    _fill_products(user, form)
    _fill_buyer(user, form)
    if action in ("add_line", "edit") or remove:
        check(form, on=timezone.localdate())
        form.state.errors.clear()  # only the figures; errors wait for "review"
        return render(request, "invoices/issue.html", _context(user, form))
    check(form, on=timezone.localdate())
    if form.state.invalid or form.draft is None:
        return render(request, "invoices/issue.html", _context(user, form, show_errors=True))
    if action == "confirm":
        return _issue(request, user, form)
    return render(request, "invoices/issue_confirm.html", _confirm_context(user, form, new_token()))


def _confirm_context(user: User, form: IssueForm, token: str, **extra: Any) -> dict[str, Any]:
    assert form.draft is not None
    hidden = {name: value for name, value in form.state.data.items() if value}
    return {
        **_context(user, form),
        "draft": form.draft,
        "buyer": form.payload["buyer"] if form.payload else {},
        "hidden": sorted(hidden.items()),
        "token": token,
        "save_buyer": form.state.data.get("save_buyer") == "on",
        **extra,
    }


def _issue(request: HttpRequest, user: User, form: IssueForm) -> HttpResponse:
    token = request.POST.get("form_token", "")
    if not valid_token(token):
        form.state.add("", gettext(_("This confirmation page has expired; please check the invoice again.")))
        return render(request, "invoices/issue_confirm.html", _confirm_context(user, form, new_token()))
    try:
        result = issue_invoice(user=user, payload=form.payload, idempotency_key=f"web-issue-{token}")
    except ValidationFailed as failed:
        form.state.add_failure(failed, lambda path: "")
        return render(request, "invoices/issue.html", _context(user, form, show_errors=True))
    except FapiaoError as error:
        form.state.add("", error.render(gettext))
        return render(request, "invoices/issue_confirm.html", _confirm_context(user, form, token))
    number = result.body["number"]
    if result.replayed:
        messages.info(
            request,
            gettext("Invoice {number} was already issued; it was not issued again.").format(number=number),
        )
    else:
        messages.success(request, gettext("Invoice {number} has been issued.").format(number=number))
        wanted = form.state.data.get("save_buyer") == "on" and form.payload
        if wanted and remember_buyer(user=user, buyer=form.payload["buyer"]) is not None:  # type: ignore[index]
            messages.info(request, gettext("The buyer was added to your address book."))
    return redirect("invoices:invoice", number)


@login_required
@require_POST
def issue_preview(request: HttpRequest) -> HttpResponse:
    """htmx: the live totals of the form as it stands (computed by the server, never in the browser)."""
    user = acting_user(request)
    require(user, Action.ISSUE_INVOICE)
    form = read_form(request.POST)
    _fill_products(user, form)
    check(form, on=timezone.localdate())
    return render(request, "invoices/_totals.html", _context(user, form))


@login_required
@require_GET
@private_page
def issue_buyer(request: HttpRequest) -> HttpResponse:
    """htmx: the buyer fields filled from the chosen address-book entry (an audited reveal of one entry)."""
    user = acting_user(request)
    require(user, Action.ISSUE_INVOICE)
    values = {f"buyer_{name}": "" for name in BUYER_FIELDS}
    buyer_id = request.GET.get("buyer_id", "")
    chosen = whole_number_or_none(buyer_id)
    if chosen is not None:
        revealed = reveal_buyer(user=user, buyer_id=chosen)
        values = {f"buyer_{name}": revealed.get(name, "") for name in BUYER_FIELDS}
    values["buyer_id"] = buyer_id
    form = empty_form()
    form.state.data.update(values)
    return render(request, "invoices/_buyer_fields.html", _context(user, form))
