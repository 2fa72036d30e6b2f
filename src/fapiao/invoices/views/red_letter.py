"""Red-letter (红冲) an invoice, fully or by line: what remains, a review of the red lines, the write."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.core.entry import normalise_text, number_text
from fapiao.core.errors import FapiaoError, InvalidValueError, _
from fapiao.core.invoice import Line
from fapiao.core.money import format_decimal
from fapiao.core.red_letter import RED_LETTER_REASONS, parse_red_letter_request, red_letter_lines
from fapiao.invoices import selectors, services
from fapiao.invoices.models import Invoice
from fapiao.invoices.rows import core_line
from fapiao.platform.forms import EMPTY, FormState, new_token, valid_token


def _open_lines(invoice: Invoice) -> list[dict[str, Any]]:
    so_far = services.red_lettered_so_far(invoice)
    rows = []
    for stored in invoice.lines.all():
        line = core_line(stored, invoice)
        quantity, amount, tax = so_far.get(line.no, (Decimal(0), 0, 0))
        rows.append(
            {
                "line": line,
                "red_quantity": format_decimal(quantity),
                "remaining_quantity": format_decimal(line.quantity - quantity),
                "remaining_amount": line.amount - amount,
                "remaining_tax": line.tax - tax,
                "open": line.quantity - quantity > 0,
            }
        )
    return rows


def _payload(state: FormState, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[int]]:
    """The API body, and which line number each ``lines`` item is (to put errors beside it)."""
    payload: dict[str, Any] = {}
    order: list[int] = []
    if state.data.get("mode") == "full":
        payload["full"] = True
    else:
        items = []
        for row in rows:
            no = row["line"].no
            raw = state.data.get(f"qty-{no}", "")
            if not raw.strip():
                continue
            try:
                items.append({"line_no": no, "quantity": number_text(raw)})
                order.append(no)
            except InvalidValueError as error:
                state.add(f"qty-{no}", error.render(gettext))
        if not items and not state.invalid:
            state.add(
                "",
                gettext(
                    _("Enter the quantity to red-letter on at least one line, or choose the whole invoice.")
                ),
            )
        payload["lines"] = items
    confirmation = "".join(normalise_text(state.data.get("confirmation_no", "")).split())
    if confirmation:
        payload["confirmation_no"] = confirmation
    if state.data.get("reason"):
        payload["reason"] = state.data["reason"]
    return payload, order


def _to_name(order: list[int]) -> Any:
    def name(path: str) -> str:
        parts = path.split(".")
        if len(parts) == 3 and parts[0] == "lines" and parts[1].isdigit() and int(parts[1]) < len(order):
            return f"qty-{order[int(parts[1])]}"
        return path if path in ("confirmation_no", "reason") else ""

    return name


def _preview(invoice: Invoice, payload: dict[str, Any]) -> tuple[Line, ...]:
    """The red lines the write will create (the same rules, computed before anything is stored)."""
    request = parse_red_letter_request(payload)
    original = [core_line(line, invoice) for line in invoice.lines.all()]
    return red_letter_lines(original, services.red_lettered_so_far(invoice), request)


@login_required
@require_http_methods(["GET", "POST"])
def red_letter(request: HttpRequest, number: str) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.RED_LETTER_INVOICE)
    invoice = selectors.invoice_get(user=user, number=number)
    if invoice.colour != "blue":
        raise services.InvoiceNotFoundError(_("Only a blue invoice can be red-lettered."))
    rows = _open_lines(invoice)
    names = ["mode", "confirmation_no", "reason", *(f"qty-{row['line'].no}" for row in rows)]
    state = FormState(data={name: request.POST.get(name, "") for name in names})
    state.data["mode"] = state.data["mode"] or "lines"
    context: dict[str, Any] = {
        "invoice": invoice,
        "rows": rows,
        "form": state,
        "reason_choices": [("", gettext("Choose…")), *RED_LETTER_REASONS.items()],
        "reason_label": RED_LETTER_REASONS.get(state.data["reason"], ""),
    }
    if request.method == "GET" or request.POST.get("action") == "edit":
        return render(request, "invoices/red_letter.html", _with_fields(context))
    payload, order = _payload(state, rows)
    red_lines: tuple[Line, ...] = ()
    if not state.invalid:
        try:
            red_lines = _preview(invoice, payload)
        except FapiaoError as error:
            state.add_failure(error, _to_name(order))
    if not state.data["reason"]:  # the page always asks for the 红冲原因 (beside every other problem)
        state.add("reason", gettext(EMPTY))
    if state.invalid:
        return render(request, "invoices/red_letter.html", _with_fields(context, show_errors=True))
    if request.POST.get("action") == "confirm":
        return _write(
            request,
            user=user,
            invoice=invoice,
            payload=payload,
            order=order,
            context=context,
            red_lines=red_lines,
        )
    return render(request, "invoices/red_letter_confirm.html", _confirm(context, red_lines, new_token()))


def _with_fields(context: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Each line's quantity input: its name, what was typed, its errors."""
    state: FormState = context["form"]
    for row in context["rows"]:
        row["field"] = f"qty-{row['line'].no}"
        row["value"] = state.data.get(row["field"], "")
        row["errors"] = state.errors.get(row["field"], [])
    return {**context, **extra}


def _confirm(context: dict[str, Any], red_lines: tuple[Line, ...], token: str) -> dict[str, Any]:
    amount = sum(line.amount for line in red_lines)
    tax = sum(line.tax for line in red_lines)
    state: FormState = context["form"]
    return {
        **context,
        "red_lines": red_lines,
        "amount": amount,
        "tax": tax,
        "total": amount + tax,
        "token": token,
        "hidden": sorted((k, v) for k, v in state.data.items() if v),
    }


def _write(
    request: HttpRequest,
    *,
    user: User,
    invoice: Invoice,
    payload: dict[str, Any],
    order: list[int],
    context: dict[str, Any],
    red_lines: tuple[Line, ...],
) -> HttpResponse:
    state: FormState = context["form"]
    token = request.POST.get("form_token", "")
    if not valid_token(token):
        state.add("", gettext(_("This confirmation page has expired; please check the invoice again.")))
        return render(request, "invoices/red_letter_confirm.html", _confirm(context, red_lines, new_token()))
    try:
        result = services.red_letter_invoice(
            user=user, number=invoice.number, payload=payload, idempotency_key=f"web-red-{token}"
        )
    except FapiaoError as failure:  # each field error beside its line; any other above the form
        state.add_failure(failure, _to_name(order))
        return render(request, "invoices/red_letter.html", _with_fields(context, show_errors=True))
    red_number = result.body["number"]
    if result.replayed:
        messages.info(
            request,
            gettext("Red invoice {number} was already issued; it was not issued again.").format(
                number=red_number
            ),
        )
    else:
        messages.success(
            request,
            gettext("Red invoice {number} has been issued against {original}.").format(
                number=red_number, original=invoice.number
            ),
        )
    return redirect("invoices:invoice", red_number)
