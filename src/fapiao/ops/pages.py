"""The operators' pages: 运维概览 (the overview) and 备份与演练 (backups and drills).

Installation-wide figures, so operators only (``Action.READ_OPERATIONS``); everyone else gets the
403 page (which the audit trail records), an anonymous visitor the sign-in page.  Read-only: the
pages run nothing; the commands they name do.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

from fapiao.accounts.permissions import Action, may
from fapiao.core.errors import _
from fapiao.ops.backup.status import backups
from fapiao.ops.drill_reports import list_reports
from fapiao.ops.overview import overview

OPERATORS_ONLY = _("Only operators may see the operations pages.")


def _require_operator(request: HttpRequest) -> None:
    if not may(request.user, Action.READ_OPERATIONS):  # type: ignore[arg-type]
        raise PermissionDenied(gettext(OPERATORS_ONLY))


@login_required
@require_GET
def overview_page(request: HttpRequest) -> HttpResponse:
    _require_operator(request)
    return render(request, "ops/overview.html", {"o": overview()})


@login_required
@require_GET
def backups_page(request: HttpRequest) -> HttpResponse:
    _require_operator(request)
    return render(request, "ops/backups.html", {"backups": backups(), "drills": list_reports()})
