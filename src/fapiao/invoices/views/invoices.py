"""我的发票: search, export, one invoice, its print view and its receipt."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from fapiao.accounts.models import Merchant, User
from fapiao.accounts.permissions import Action, may, require
from fapiao.accounts.requests import acting_user
from fapiao.audit import services as audit
from fapiao.core.errors import ValidationFailed, _
from fapiao.invoices import exports, findings, selectors, services
from fapiao.invoices.models import Invoice, InvoiceFinding
from fapiao.invoices.panels import render_panels
from fapiao.invoices.presenters import invoice_representation, summary_representation
from fapiao.ledger.services import receipt_for
from fapiao.platform import labels
from fapiao.platform.forms import FormState

PAGE_SIZE = 20
FILTER_FIELDS = (
    "number", "date_from", "date_to", "buyer", "amount_min", "amount_max", "state", "direction", "merchant",
)  # fmt: skip
SORTS = {
    "issued_on": ("issued_on", "issued_at", "id"),
    "number": ("number",),
    "total": ("total_with_tax", "id"),
    "buyer": ("buyer_name", "id"),
}
DEFAULT_SORT = "-issued_on"
EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _ordering(sort: str) -> tuple[str, tuple[str, ...]]:
    key = sort.removeprefix("-")
    if key not in SORTS:
        sort, key = DEFAULT_SORT, DEFAULT_SORT.removeprefix("-")
    prefix = "-" if sort.startswith("-") else ""
    return sort, tuple(prefix + column for column in SORTS[key])


def _recovery_url(params: dict[str, str]) -> str | None:
    """申请补救 with the searched values prefilled, once the recovery pages exist (``recovery:new``)."""
    try:
        url = reverse("recovery:new")
    except NoReverseMatch:
        return None
    prefill = {name: value for name, value in params.items() if value}
    return f"{url}?{urlencode(prefill)}" if prefill else url


def _sort_links(request: HttpRequest, current: str) -> dict[str, dict[str, str]]:
    """Per sortable column: the link that sorts by it (toggling direction) and its aria-sort."""
    links = {}
    for key in SORTS:
        ascending = current == key
        descending = current == "-" + key
        target = ("-" + key) if ascending or (not descending and key in ("issued_on", "total")) else key
        query = request.GET.copy()
        query["sort"] = target
        query.pop("page", None)
        state = "ascending" if ascending else "descending" if descending else "none"
        links[key] = {"url": "?" + query.urlencode(), "aria": state}
    return links


@login_required
@require_GET
def invoice_list(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.READ_INVOICES)
    params = {name: request.GET.get(name, "") for name in FILTER_FIELDS}
    sort, ordering = _ordering(request.GET.get("sort", DEFAULT_SORT))
    form = FormState(data=params)
    searched = any(params.values())
    try:
        filters = selectors.parse_filters(params)
    except ValidationFailed as failed:
        form.add_failure(failed, lambda path: path)
        filters = None
    export = request.GET.get("format", "")
    missing = findings.missing_matching(user, filters) if filters is not None else []
    if filters is not None and export in EXPORT_TYPES:
        queryset = selectors.invoice_list(user=user, filters=filters).order_by(*ordering)
        return _export(request, queryset, export, missing)
    page = None
    rows: list[dict[str, Any]] = []
    if filters is not None:
        queryset = selectors.invoice_list(user=user, filters=filters).order_by(*ordering)
        page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
        rows = [invoice_row(invoice, user) for invoice in page]
        flags = findings.findings_by_number(user, [row["number"] for row in rows])
        for invoice, row in zip(page, rows, strict=True):
            finding = flags.get((invoice.merchant_id, invoice.number))
            row["flag"] = finding.kind if finding is not None else ""
    missing_rows = [
        {**findings.summary(finding), "url": _finding_url(finding, user)}
        for finding in (missing if page is None or page.number == 1 else [])
    ]
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "missing_rows": missing_rows,
        "flagged": findings.visible_to(user).count() if user.is_merchant_user else 0,
        "searched": searched,
        "sort": sort,
        "sort_links": _sort_links(request, sort),
        "query": query.urlencode(),
        "may_export": may(user, Action.EXPORT_INVOICES),
        "is_staff_view": not user.is_merchant_user,
        "state_choices": labels.choices("state"),
        "direction_choices": labels.choices("direction"),
        "recovery_url": _recovery_url(params)
        if page is not None and not page.paginator.count and not missing_rows
        else None,
    }
    return render(request, "invoices/list.html", context)


def invoice_row(invoice: Invoice, user: User) -> dict[str, Any]:
    row = summary_representation(invoice)
    row["merchant"] = invoice.merchant.uscc
    row["merchant_name"] = invoice.merchant.name
    row["url"] = detail_url(invoice, user)
    return row


def detail_url(invoice: Invoice, user: User, view: str = "invoices:invoice") -> str:
    """An invoice's page; staff, who see every merchant, get the merchant in the link (numbers of
    imported invoices are unique per merchant only)."""
    url = reverse(view, args=[invoice.number])
    return url if user.is_merchant_user else f"{url}?{urlencode({'merchant': invoice.merchant.uscc})}"


def _finding_url(finding: InvoiceFinding, user: User) -> str:
    url = reverse("invoices:invoice", args=[finding.number])
    return url if user.is_merchant_user else f"{url}?{urlencode({'merchant': finding.merchant.uscc})}"


def _export(request: HttpRequest, queryset: Any, kind: str, missing: list[InvoiceFinding]) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.EXPORT_INVOICES)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="fapiao-export-") as folder:
        path = Path(folder) / f"invoices-{stamp}.{kind}"
        count = exports.export_invoices(queryset, path, flags=findings.visible_to(user), missing=missing)
        data = path.read_bytes()
    audit.record(
        actor=user,
        action="invoices.export",
        merchant=getattr(user, "merchant", None),
        after={"format": kind, "rows": count, "filters": request.GET.dict()},
    )
    response = HttpResponse(data, content_type=EXPORT_TYPES[kind])
    response["Content-Disposition"] = f'attachment; filename="{path.name}"'
    return response


def _finding_context(request: HttpRequest, finding: InvoiceFinding | None) -> dict[str, Any]:
    """The flag of an invoice verify found missing or altered, and its one-click remedy."""
    if finding is None:
        return {"finding": None}
    user = acting_user(request)
    try:
        apply_url = reverse("recovery:from-finding", args=[finding.number])
    except NoReverseMatch:
        apply_url = ""
    return {
        "finding": finding,
        "ledger": finding.ledger,
        "row_values": finding.row,
        "may_apply": bool(apply_url) and may(user, Action.OPEN_CASES),
        "apply_url": apply_url,
    }


def _finding_of(request: HttpRequest, invoice: Invoice) -> InvoiceFinding | None:
    return findings.active_for_merchant(invoice.merchant_id).filter(number=invoice.number).first()


def _missing_page(request: HttpRequest, number: str, not_found: Exception) -> HttpResponse:
    """A number verify found missing: the page shows what its ledger entry says, and the remedy."""
    user = acting_user(request)
    merchant = None
    if not user.is_merchant_user:
        uscc = request.GET.get("merchant", "")
        merchant = Merchant.objects.filter(uscc=uscc.strip().upper()).first() if uscc else None
        if merchant is None:
            raise not_found
    finding = findings.finding_for(user, number, merchant=merchant)
    if finding is None or finding.kind != findings.MISSING:
        raise not_found
    return render(request, "invoices/missing.html", _finding_context(request, finding))


def _get(request: HttpRequest, number: str) -> Invoice:
    return selectors.invoice_get(
        user=acting_user(request),
        number=number,
        merchant=request.GET.get("merchant", ""),
    )


def _lines_with_remaining(invoice: Invoice, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The lines, and for a blue invoice what is left to red-letter of each."""
    so_far = services.red_lettered_so_far(invoice) if invoice.colour == "blue" else {}
    lines = []
    for line, stored in zip(body["lines"], invoice.lines.all(), strict=True):
        quantity, amount, tax = so_far.get(stored.no, (0, 0, 0))
        lines.append(
            {
                **line,
                "red_quantity": quantity,
                "red_amount": amount,
                "red_tax": tax,
                "remaining_amount": stored.amount - amount,
                "remaining_tax": stored.tax - tax,
                "amount_fen": stored.amount,
                "tax_fen": stored.tax,
            }
        )
    return lines


@login_required
@require_GET
def invoice_detail(request: HttpRequest, number: str) -> HttpResponse:
    try:
        invoice = _get(request, number)
    except services.InvoiceNotFoundError as not_found:
        return _missing_page(request, number, not_found)
    body = invoice_representation(invoice)
    user = acting_user(request)
    red_letters = selectors.invoices_visible_to(user).filter(original_id=invoice.pk).order_by("issued_at")
    context = {
        "invoice": invoice,
        "body": body,
        "lines": _lines_with_remaining(invoice, body),
        "red_letters": [invoice_row(red, user) for red in red_letters],
        "original_url": detail_url(invoice.original, user)
        if invoice.original_id and invoice.original
        else "",
        "may_red_letter": (
            may(user, Action.RED_LETTER_INVOICE)
            and invoice.colour == "blue"
            and invoice.state in ("normal", "partly_red")
            and user.is_merchant_user
        ),
        "has_receipt": invoice.ledger_seq is not None,
        "print_url": detail_url(invoice, user, "invoices:invoice-print"),
        "receipt_url": detail_url(invoice, user, "invoices:invoice-receipt"),
        "red_letter_url": reverse("invoices:red-letter", args=[invoice.number]),
        "panels": render_panels("invoice", request, invoice),
        **_finding_context(request, _finding_of(request, invoice)),
    }
    return render(request, "invoices/detail.html", context)


@login_required
@require_GET
def invoice_print(request: HttpRequest, number: str) -> HttpResponse:
    invoice = _get(request, number)
    body = invoice_representation(invoice)
    context = {
        "invoice": invoice,
        "body": body,
        "lines": body["lines"],
        "back_url": detail_url(invoice, acting_user(request)),
        "issuer_name": audit.display_name(invoice.created_by),
        "finding": _finding_of(request, invoice),
    }
    return render(request, "invoices/print.html", context)


@login_required
@require_GET
def invoice_receipt(request: HttpRequest, number: str) -> HttpResponse:
    """The receipt as a file the merchant keeps (the same document as the API's)."""
    invoice = _get(request, number)
    if invoice.ledger_seq is None:
        raise services.InvoiceNotFoundError(_("This invoice has no ledger entry."))
    response = JsonResponse(
        receipt_for(invoice.merchant, invoice.ledger_seq), json_dumps_params={"ensure_ascii": False}
    )
    response["Content-Disposition"] = f'attachment; filename="receipt-{invoice.number}.json"'
    return response
