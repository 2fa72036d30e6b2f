"""The ledger verification page: auditors and operators run `verify` and read its report."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from fapiao.accounts.permissions import Action, may
from fapiao.ledger.verify import UnknownMerchantError, verify_ledger
from fapiao.ledger.verify_runs import latest_full_run, record_run


@login_required
@require_http_methods(["GET", "POST"])
def verify_page(request: HttpRequest) -> HttpResponse:
    """GET shows the form; POST runs the verification and shows its report."""
    if not may(request.user, Action.VERIFY_LEDGER):  # type: ignore[arg-type]
        raise PermissionDenied(_("Only auditors and operators may verify the ledger."))
    merchant = request.POST.get("merchant", "").strip()
    deep = request.POST.get("deep") == "on"
    context: dict[str, object] = {
        "merchant": merchant,
        "deep": deep,
        "report": None,
        "error": "",
        "incidents": [],
    }
    if request.method == "POST":
        try:
            # In the request's own process: a web worker does not start helper processes.
            report = verify_ledger(merchant=merchant or None, deep=deep, workers=0)
        except UnknownMerchantError:
            context["error"] = _("No merchant has this unified social credit code.")
        else:
            context["report"] = report.to_json(get_language() or "zh-hans")
            _run, opened = record_run(report, merchant=merchant or None, source="web", by=request.user)
            context["incidents"] = [incident.pk for incident in opened]
    last = latest_full_run()
    context["last_run"] = last
    if last is not None:
        context["last_run_by"] = last.by.display_name if last.by else _("the command line")
    status = 400 if context["error"] else 200
    return render(request, "ledger/verify.html", context, status=status)
