"""Restore (恢复), re-issue (补开) or repair (修复) an approved case's invoice: see it, then write it.

The page shows exactly what the remedy writes (:func:`fapiao.recovery.remedies.preview`): the
merchant's own ledger entry of the number, or the claim as reviewed.  The reviewer chooses the
remedy and may add a note — there is nothing else to type.  When the claim lacks what the invoice
needs, the page says what, and the way on is a correction notice (补正) to the merchant.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_http_methods

from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.core.cases import CaseState
from fapiao.core.errors import FapiaoError, ValidationFailed
from fapiao.core.identifiers import holds_resident_id
from fapiao.core.masking import mask
from fapiao.core.strict import whole_number_or_none
from fapiao.core.words import amount_in_words
from fapiao.invoices.models import Invoice
from fapiao.platform.errors import friendly
from fapiao.platform.forms import FormState, posted
from fapiao.platform.private import private_page
from fapiao.recovery import remedies, selectors
from fapiao.recovery.choices import Remedy
from fapiao.recovery.history import ledger_rows
from fapiao.recovery.models import Case
from fapiao.recovery.remedy_plan import Writing
from fapiao.recovery.views.progress import state_label

LABELS = {"note": gettext_lazy("Note"), "version": gettext_lazy("Version")}


def _buyer_tax_id(writing: Writing) -> str:
    tax_id = writing.buyer.tax_id
    if tax_id is None:
        return ""
    return mask(tax_id.value) if holds_resident_id(tax_id.kind) else tax_id.value


def _context(case: Case, remedy: Remedy, form: FormState) -> dict[str, Any]:
    writing, refusal = remedies.preview(case, remedy)
    missing = refusal.errors if isinstance(refusal, ValidationFailed) else []
    return {
        "case": case,
        "remedy": remedy.value,
        "writing": writing,
        "refusal": refusal.render(gettext) if refusal else "",
        "missing": [error.render(gettext) for error in missing],
        "buyer_tax_id": _buyer_tax_id(writing) if writing else "",
        "words": amount_in_words(writing.total_with_tax) if writing else "",
        "matches_claim": writing is not None and writing.total_with_tax == case.claimed_total_with_tax,
        "form": form,
        "summary": form.summary({name: str(text) for name, text in LABELS.items()}),
        "ledger": ledger_rows(case),
    }


def _row_exists(case: Case) -> bool:
    return Invoice.objects.filter(merchant_id=case.merchant_id, number=case.claimed_number).exists()


@login_required
@require_http_methods(["GET", "POST"])
@friendly
@private_page
def resolve_page(request: HttpRequest, case_id: str) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.REVIEW_CASES)
    case = selectors.case_get(user=user, case_id=case_id)
    values = request.POST if request.method == "POST" else request.GET
    remedy = Remedy.REISSUE if values.get("remedy") == Remedy.REISSUE else Remedy.RESTORE
    if values.get("remedy") == Remedy.REPAIR or (remedy is Remedy.RESTORE and _row_exists(case)):
        remedy = Remedy.REPAIR  # the row is there: restoring it is impossible, rewriting it is the way
    elif values.get("remedy") == Remedy.REPLAY:
        remedy = Remedy.REPLAY
    if case.state != CaseState.APPROVED:
        text = gettext("Only an approved case can be resolved; this one is {state}.")
        messages.error(request, text.format(state=state_label(case.state)))
        return redirect("recovery:case", case_id=case.uid)
    if request.method == "GET":
        form = FormState(data={"version": str(case.version), "note": ""})
        return render(request, "recovery/staff/resolve.html", _context(case, remedy, form))
    form = FormState(data=posted(request.POST, ("version", "note")))
    version = whole_number_or_none(form.data["version"])
    try:
        _case, made, _receipt = remedies.resolve_case(
            user=user,
            case=case,
            version=-1 if version is None else version,
            remedy=remedy.value,
            note=form.data["note"],
        )
    except FapiaoError as failure:
        form.add_failure(failure, lambda path: path if path == "note" else "")
        case.refresh_from_db()
        form.data["version"] = str(case.version)  # the page shows the case as it is now
        return render(request, "recovery/staff/resolve.html", _context(case, remedy, form))
    if remedy is Remedy.REPAIR:
        done = gettext(
            "Invoice {number} was repaired from its ledger entry; "
            "the merchant was asked to check it and confirm."
        )
    elif remedy is Remedy.REPLAY:
        done = gettext(
            "Invoice {number} was replayed from the receipt with its original ledger entry; "
            "the merchant was asked to check it and confirm."
        )
    elif remedy is Remedy.RESTORE:
        done = gettext("Invoice {number} was restored; the merchant was asked to check it and confirm.")
    else:
        done = gettext("Invoice {number} was re-issued; the merchant was asked to check it and confirm.")
    messages.success(request, done.format(number=made.number))
    return redirect("recovery:case", case_id=case.uid)
