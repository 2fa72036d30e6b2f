"""The home page: what this user can do next, and (for those who issue) the latest invoices."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from fapiao.accounts.permissions import Action, may
from fapiao.accounts.requests import acting_user
from fapiao.invoices import selectors
from fapiao.invoices.views.invoices import invoice_row

RECENT = 5


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    recent = []
    if user.is_merchant_user and may(user, Action.READ_INVOICES):
        latest = selectors.invoice_list(user=user, filters=selectors.InvoiceFilters())[:RECENT]
        recent = [invoice_row(invoice, user) for invoice in latest]
    context = {
        "recent": recent,
        "may_issue": may(user, Action.ISSUE_INVOICE),
        "may_read": may(user, Action.READ_INVOICES),
        "may_export": may(user, Action.EXPORT_INVOICES),
        "may_verify": may(user, Action.VERIFY_LEDGER),
        "merchant": user.merchant,
        "role": user.role,
    }
    return render(request, "web/home.html", context)
