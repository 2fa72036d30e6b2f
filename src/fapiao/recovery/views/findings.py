"""The one click from a flagged invoice to a recovery case prefilled from the ledger (issue 14)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.core.errors import NotFoundError, _
from fapiao.invoices import findings
from fapiao.platform.errors import friendly
from fapiao.recovery.loss import open_case_for_finding


class NoSuchFindingError(NotFoundError):
    """No invoice of yours with this number has an open ledger finding."""

    code = "finding_not_found"


@login_required
@require_POST
@friendly
def case_from_finding(request: HttpRequest, number: str) -> HttpResponse:
    """POST: open (or find) the case for a merchant's own flagged invoice, then show it."""
    user = acting_user(request)
    require(user, Action.OPEN_CASES)
    finding = findings.finding_for(user, number)
    if finding is None:
        raise NoSuchFindingError(_("No invoice of yours with this number has an open ledger finding."))
    case, created = open_case_for_finding(user=user, finding=finding)
    if created:
        messages.success(
            request,
            gettext(
                "The application was filled in from the ledger, with its receipt and the finding attached. "
                "Check it and submit it."
            ),
        )
    return redirect("recovery:case", case_id=case.uid)
