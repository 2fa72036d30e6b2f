"""Restore (恢复) or re-issue (补开) the invoice of an approved case: every field shown, then confirmed.

The form is the clerk's issue form (:mod:`fapiao.invoices.forms`: same inputs, same number
reading, same per-field errors) prefilled from the best source the system has
(:func:`fapiao.recovery.prefill.best_source`): the ledger entry of the claimed number, a verified
e-invoice file, or the claim.  Nothing is written until the reviewer ticks that they checked
every field and presses the button; the service then checks it all again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_http_methods

from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.core.case_claim import parse_date
from fapiao.core.cases import CaseState
from fapiao.core.errors import FapiaoError, InvalidValueError, ValidationFailed
from fapiao.core.strict import whole_number_or_none
from fapiao.core.tax import rates_in_force
from fapiao.core.words import amount_in_words
from fapiao.invoices.forms import BUYER_FIELDS, FIELD_LABELS, LINE_LABELS, IssueForm, check, read_form
from fapiao.platform import labels
from fapiao.platform.errors import friendly
from fapiao.platform.private import private_page
from fapiao.recovery import remedies, selectors
from fapiao.recovery.models import Case
from fapiao.recovery.prefill import LINE_KEYS, Source, best_source, ledger_rows
from fapiao.recovery.views.progress import state_label

REMEDIES = ("restore", "reissue")
EXTRA_FIELDS = ("issued_on", "version", "remedy", "confirm")
EXTRA_LABELS = {"issued_on": gettext_lazy("Invoice date"), "confirm": gettext_lazy("Confirmation")}
NOT_CONFIRMED = "Confirm that you checked every field."  # the core's msgid (fapiao.core.case_claim)


def source_data(source: Source) -> dict[str, str]:
    """The form's inputs from a source's invoice body."""
    invoice = source.invoice
    buyer = invoice.get("buyer") or {}
    data = {f"buyer_{name}": str(buyer.get(name) or "") for name in BUYER_FIELDS}
    data.update(kind=invoice.get("kind") or "ordinary", remark=invoice.get("remark") or "")
    lines = invoice.get("lines") or [{}]
    for row, line in enumerate(lines):
        for key in LINE_KEYS:
            data[f"lines-{row}-{key}"] = str(line.get(key) or "")
    data["line_count"] = str(len(lines))
    data["issued_on"] = source.issued_on
    return data


def _read(values: Any, *, add_line: bool = False, remove_row: int | None = None) -> IssueForm:
    form = read_form(values, add_line=add_line, remove_row=remove_row)
    form.state.data.update({name: str(values.get(name, "")) for name in EXTRA_FIELDS})
    return form


def _issued_on(form: IssueForm, remedy: str) -> date:
    """The invoice's date: the original's for a restore (checked), today for a re-issue."""
    today = timezone.localdate()
    if remedy != "restore":
        return today
    try:
        return parse_date(form.state.data["issued_on"], latest=today)
    except InvalidValueError as problem:
        form.state.add("issued_on", problem.render(gettext))
        return today


def _field_name(form: IssueForm, path: str) -> str:
    """A service problem's path (``lines.0.quantity``, ``buyer.tax_id``) → this form's input name."""
    if path in EXTRA_FIELDS or path in ("kind", "remark"):
        return path
    if path.startswith("buyer."):
        return "buyer_" + path.removeprefix("buyer.")
    parts = path.split(".")
    if (
        len(parts) == 3
        and parts[0] == "lines"
        and parts[1].isdigit()
        and int(parts[1]) < len(form.payload_rows)
    ):
        return form.name(
            form.payload_rows[int(parts[1])], "amount" if parts[2] in ("amount", "tax") else parts[2]
        )
    return ""


def _labels(form: IssueForm) -> dict[str, str]:
    found = {name: gettext(str(text)) for name, text in {**FIELD_LABELS, **EXTRA_LABELS}.items()}
    for position, row in enumerate(form.rows, start=1):
        for name, text in LINE_LABELS.items():
            found[form.name(row, name)] = gettext("Line {no}, {field}").format(
                no=position, field=gettext(text)
            )
    return found


@dataclass
class Page:
    """The form as it stands: the case, the inputs, the prefill's source, the remedy, the invoice date."""

    case: Case
    form: IssueForm
    source: Source
    remedy: str
    on: date


def _context(page: Page) -> dict[str, Any]:
    case, form, on = page.case, page.form, page.on
    rates = [("", gettext("— choose —"))] + [(r.code, labels.rate_label(r.code)) for r in rates_in_force(on)]
    return {
        "case": case,
        "remedy": page.remedy,
        "source": page.source,
        "form": form.state,
        "lines": form.line_contexts(),
        "summary": form.state.summary(_labels(form)),
        "rate_choices": rates,
        "kind_choices": labels.choices("kind"),
        "figures": form.figures,
        "totals": {
            "amount": form.total_amount,
            "tax": form.total_tax,
            "total": form.total_with_tax,
            "words": amount_in_words(form.total_with_tax) if form.figures else "",
        },
        "matches_claim": form.total_with_tax == case.claimed_total_with_tax,
        "ledger": ledger_rows(case),
    }


def _render(request: HttpRequest, page: Page) -> HttpResponse:
    page.form.state.data["confirm"] = ""  # whatever changed, the reviewer confirms what they now see
    return render(request, "recovery/staff/resolve.html", _context(page))


@login_required
@require_http_methods(["GET", "POST"])
@friendly
@private_page
def resolve_page(request: HttpRequest, case_id: str) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.REVIEW_CASES)
    case = selectors.case_get(user=user, case_id=case_id)
    values = request.POST if request.method == "POST" else request.GET
    remedy = values.get("remedy", "restore") if values.get("remedy") in REMEDIES else "restore"
    if case.state != CaseState.APPROVED:
        text = gettext("Only an approved case can be resolved; this one is {state}.")
        messages.error(request, text.format(state=state_label(case.state)))
        return redirect("recovery:case", case_id=case.uid)
    source = best_source(case)
    if request.method == "GET":
        form = _read({**source_data(source), "version": str(case.version), "remedy": remedy})
        on = _issued_on(form, remedy)
        check(form, on=on)
        form.state.errors.clear()  # the prefill is shown as found; problems wait for the reviewer
        return _render(request, Page(case, form, source, remedy, on))
    action = request.POST.get("action", "review")
    remove = request.POST.get("remove_line", "")
    form = _read(request.POST, add_line=action == "add_line", remove_row=whole_number_or_none(remove))
    on = _issued_on(form, remedy)
    check(form, on=on)
    if action == "add_line" or remove:
        form.state.errors.clear()
        return _render(request, Page(case, form, source, remedy, on))
    if form.state.data.get("confirm") != "on":
        form.state.add("confirm", gettext(NOT_CONFIRMED))
    if action != "resolve" or form.state.invalid or form.payload is None:
        return _render(request, Page(case, form, source, remedy, on))
    return _resolve(request, Page(case, form, source, remedy, on))


def _resolve(request: HttpRequest, page: Page) -> HttpResponse:
    user, case, form, remedy = acting_user(request), page.case, page.form, page.remedy
    assert form.payload is not None
    invoice = dict(form.payload)
    if remedy == "restore":
        invoice.update(issued_on=page.on.isoformat(), confirm=True)
    version = whole_number_or_none(form.state.data.get("version", ""))
    try:
        _case, made, _receipt = remedies.resolve_case(
            user=user,
            case=case,
            version=-1 if version is None else version,
            remedy=remedy,
            invoice=invoice,
        )
    except ValidationFailed as failed:
        form.state.add_failure(failed, lambda path: _field_name(form, path))
        return _render(request, page)
    except FapiaoError as failure:
        form.state.add("", failure.render(gettext))
        return _render(request, page)
    if remedy == "restore":
        done = gettext("Invoice {number} was restored; the merchant was asked to check it and confirm.")
    else:
        done = gettext("Invoice {number} was re-issued; the merchant was asked to check it and confirm.")
    messages.success(request, done.format(number=made.number))
    return redirect("recovery:case", case_id=case.uid)
