"""The home page: what this user can do next, and (for those who issue) the latest invoices."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from fapiao.accounts.choices import Role
from fapiao.accounts.permissions import Action, may
from fapiao.accounts.requests import acting_user
from fapiao.invoices import selectors
from fapiao.invoices.views.invoices import invoice_row
from fapiao.recovery import selectors as cases
from fapiao.recovery.views.staff_panel import is_desk

RECENT = 5


def desk_work(user: Any) -> list[tuple[str, str, int]]:
    """Support's and reviewers' queues with their counts: (link, what, how many); [] for others.

    Counted with the very filters the links apply, so a count and its list agree."""
    if not is_desk(user):
        return []
    queues: list[tuple[str, Any, cases.CaseFilters]] = []
    if user.role == Role.SUPPORT:
        queues += [
            (reverse("recovery:inbox"), _("Unread messages from merchants"), cases.CaseFilters(unread=True)),
            (
                "?state=submitted",
                _("New cases waiting to be taken up"),
                cases.CaseFilters(states=("submitted",)),
            ),
            (
                "?state=needs_info",
                _("Waiting for the merchant's answer"),
                cases.CaseFilters(states=("needs_info",)),
            ),
        ]
    else:
        queues += [
            ("?assignee=me", _("Held by me"), cases.CaseFilters(assignee="me")),
            ("?assignee=none", _("Nobody holds"), cases.CaseFilters(assignee="none")),
            (
                "?state=awaiting_second",
                _("Awaiting a second approval"),
                cases.CaseFilters(states=("awaiting_second",)),
            ),
        ]
    queues.append(("?overdue=1", _("Overdue"), cases.CaseFilters(overdue=True)))
    base = reverse("recovery:list")
    return [
        (
            link if link.startswith("/") else base + link,
            str(text),
            cases.case_list(user=user, filters=f).count(),
        )
        for link, text, f in queues
    ]


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
        "work": desk_work(user),
    }
    return render(request, "web/home.html", context)
