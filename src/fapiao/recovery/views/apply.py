"""Step 2, 申请: the claim form, for a new draft (prefilled from the empty search) or an edit."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.core.entry import normalise_text, number_text
from fapiao.core.errors import FapiaoError, InvalidValueError
from fapiao.core.money import format_money
from fapiao.core.tax import rates_in_force
from fapiao.platform import labels
from fapiao.platform.errors import friendly
from fapiao.platform.forms import FormState, posted
from fapiao.platform.private import private_page
from fapiao.recovery import selectors, services
from fapiao.recovery.claim import case_fields
from fapiao.recovery.models import Case
from fapiao.recovery.views.progress import steps

FIELDS = (
    "number", "issued_on", "buyer_name", "buyer_tax_id", "total_with_tax", "total_amount", "total_tax",
    "tax_rate", "kind", "narrative",
)  # fmt: skip
LABELS = {
    "number": _("Invoice number"),
    "issued_on": _("Invoice date"),
    "buyer_name": _("Buyer"),
    "buyer_tax_id": _("Buyer's taxpayer number"),
    "total_with_tax": _("Total with tax"),
    "total_amount": _("Amount without tax"),
    "total_tax": _("Tax"),
    "tax_rate": _("Tax rate"),
    "kind": _("Kind"),
    "narrative": _("What happened"),
    "version": _("Version"),
}
# API paths of claim problems → this form's input names.
PATHS = {"buyer.name": "buyer_name", "buyer.tax_id": "buyer_tax_id", "buyer": "buyer_name"}


def _money(text: str) -> str:
    try:
        return number_text(text) if text.strip() else ""
    except InvalidValueError:
        return text  # the strict parser says what is wrong, at the field


def claim_payload(data: dict[str, str]) -> dict[str, Any]:
    """The API body of a claim from what the clerk typed (full-width digits, 元, commas allowed)."""
    payload: dict[str, Any] = {
        "number": normalise_text(data["number"]),
        "issued_on": data["issued_on"].strip(),
        "buyer": {"name": data["buyer_name"]},
        "total_with_tax": _money(data["total_with_tax"]),
        "narrative": data["narrative"],
    }
    if data["buyer_tax_id"].strip():
        payload["buyer"]["tax_id"] = normalise_text(data["buyer_tax_id"]).upper()
    for name in ("total_amount", "total_tax"):
        if data[name].strip():
            payload[name] = _money(data[name])
    if data["kind"]:
        payload["kind"] = data["kind"]
    if data["tax_rate"]:
        payload["tax_rate"] = data["tax_rate"]
    return payload


def _fen_text(fen: int | None) -> str:
    return format_money(fen) if fen is not None else ""


def prefill(params: dict[str, str]) -> dict[str, str]:
    """From the 我的发票 search that found nothing: number, the date (when one day), buyer, amount."""
    data = dict.fromkeys(FIELDS, "")
    data["number"] = params.get("number", "")
    date_from, date_to = params.get("date_from", ""), params.get("date_to", "")
    data["issued_on"] = date_from if date_from and date_to in ("", date_from) else ""
    data["buyer_name"] = params.get("buyer", "")
    low, high = params.get("amount_min", ""), params.get("amount_max", "")
    data["total_with_tax"] = low if low and high in ("", low) else ""
    return data


def _rate_choices() -> list[tuple[str, str]]:
    rates = rates_in_force(timezone.localdate())
    return [("", gettext("Not sure")), *((rate.code, labels.rate_label(rate.code)) for rate in rates)]


def form_context(form: FormState, case: Case | None, labels_: dict[str, Any]) -> dict[str, Any]:
    """What the claim form (``recovery/apply.html``) needs; the register page adds its own fields."""
    return {
        "rate_choices": _rate_choices(),
        "claimed_lines": case.claimed_lines if case else [],
        "form": form,
        "summary": form.summary({name: str(label) for name, label in labels_.items()}),
        "labels": labels_,
        "case": case,
        "steps": steps(case) if case else steps(Case(state="draft")),
        "kind_choices": [
            ("", gettext("Not sure")),
            ("ordinary", gettext("Ordinary invoice")),
            ("special", gettext("Special VAT invoice")),
        ],
    }


def _form_page(request: HttpRequest, form: FormState, case: Case | None) -> HttpResponse:
    return render(request, "recovery/apply.html", form_context(form, case, LABELS))


@login_required
@require_http_methods(["GET", "POST"])
@friendly
@private_page
def new_case(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.OPEN_CASES)
    if request.method == "GET":
        return _form_page(request, FormState(data=prefill(request.GET.dict())), None)
    form = FormState(data=posted(request.POST, FIELDS))
    try:
        case = services.open_case(user=user, payload=claim_payload(form.data))
    except FapiaoError as failure:
        form.add_failure(failure, lambda path: PATHS.get(path, path))
        return _form_page(request, form, None)
    messages.success(request, gettext("Draft saved. Now add your evidence, then submit."))
    return redirect("recovery:case", case_id=case.uid)


@login_required
@require_http_methods(["GET", "POST"])
@friendly
@private_page
def edit_case(request: HttpRequest, case_id: str) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.OPEN_CASES)
    case = selectors.case_get(user=user, case_id=case_id)
    if request.method == "GET":
        fields = case_fields(case)
        data = {
            "number": fields["number"],
            "issued_on": fields["issued_on"],
            "buyer_name": fields["buyer"]["name"],
            "buyer_tax_id": fields["buyer"].get("tax_id") or "",
            "total_with_tax": format_money(case.claimed_total_with_tax),
            "total_amount": _fen_text(case.claimed_total_amount),
            "total_tax": _fen_text(case.claimed_total_tax),
            "tax_rate": case.claimed_tax_rate,
            "kind": fields.get("kind") or "",
            "narrative": fields["narrative"],
            "version": str(case.version),
        }
        return _form_page(request, FormState(data=data), case)
    form = FormState(data=posted(request.POST, (*FIELDS, "version")))
    try:
        version = int(form.data["version"])
    except ValueError:
        version = -1
    try:
        payload = claim_payload(form.data)
        if case.claimed_lines:  # lines come through the API; the form keeps them as they are
            payload["lines"] = case.claimed_lines
        services.update_claim(user=user, case=case, payload=payload, version=version)
    except FapiaoError as failure:
        form.add_failure(failure, lambda path: PATHS.get(path, path))
        return _form_page(request, form, case)
    messages.success(request, gettext("The application was updated."))
    return redirect("recovery:case", case_id=case.uid)
