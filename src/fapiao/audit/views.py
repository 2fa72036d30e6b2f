"""The audit trail pages for auditors: browse and filter, export (CSV/XLSX), verify.

Views parse, authorise (the permission table), call a selector or service, and render.  A refusal
is a 403 page, which records it in the audit trail (``fapiao.platform.errors.permission_denied``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_GET, require_http_methods

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, may
from fapiao.audit import selectors
from fapiao.audit.exports import export_audit
from fapiao.audit.verify import UnknownAuditLogError, report_lines, verify_audit
from fapiao.audit.verify_runs import record_run
from fapiao.core.errors import ValidationFailed, _

EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _allowed(request: HttpRequest, action: Action) -> User:
    user: User = request.user  # type: ignore[assignment]
    if not may(user, action):
        raise PermissionDenied(gettext(_("Only auditors may read and export the audit trail.")))
    return user


@login_required
@require_GET
def record_list(request: HttpRequest) -> HttpResponse:
    user = _allowed(request, Action.READ_AUDIT)
    params = {name: request.GET.get(name, "") for name in selectors.FILTERS}
    errors: dict[str, list[str]] = {}
    page = None
    try:
        filters = selectors.parse_filters(params)
    except ValidationFailed as failure:
        for error in failure.errors:
            errors.setdefault(error.field, []).append(error.render(gettext))
    else:
        paginator = Paginator(selectors.audit_records(user=user, filters=filters), selectors.PAGE_SIZE)
        page = paginator.get_page(request.GET.get("page", "1"))
    query = urlencode({name: value for name, value in params.items() if value})
    context = {
        "data": params,
        "errors": errors,
        "page": page,
        "query": query,
        "may_export": may(user, Action.EXPORT_AUDIT),
        "may_verify": may(user, Action.VERIFY_AUDIT),
    }
    return render(request, "audit/list.html", context, status=422 if errors else 200)


@login_required
@require_GET
def record_export(request: HttpRequest, kind: str) -> HttpResponse:
    user = _allowed(request, Action.EXPORT_AUDIT)
    try:
        filters = selectors.parse_filters({name: request.GET.get(name, "") for name in selectors.FILTERS})
    except ValidationFailed as failure:
        message = " ".join(error.render(gettext) for error in failure.errors)
        return HttpResponse(message, status=422, content_type="text/plain; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="fapiao-audit-") as folder:
        path = Path(folder) / f"audit-{stamp}.{kind}"
        export_audit(user=user, filters=filters, path=path)
        data = path.read_bytes()
    response = HttpResponse(data, content_type=EXPORT_TYPES[kind])
    response["Content-Disposition"] = f'attachment; filename="{path.name}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def verify_page(request: HttpRequest) -> HttpResponse:
    """GET shows the form; POST recomputes the audit logs and shows what is wrong, by index."""
    _allowed(request, Action.VERIFY_AUDIT)
    log = request.POST.get("log", "").strip()
    context: dict[str, object] = {"log": log, "report": None, "lines": [], "error": ""}
    if request.method == "POST":
        try:
            report = verify_audit(log=log or None, deep=request.POST.get("deep") == "on")
        except UnknownAuditLogError as error:
            context["error"] = error.render(gettext)
        else:
            record_run(report, log=log or None, source="web", by=request.user)
            context["report"] = report
            context["lines"] = report_lines(report, get_language() or "zh-hans")
    return render(request, "audit/verify.html", context, status=400 if context["error"] else 200)
