"""The case page everyone shares (steps 2–5), 我的申请 / the staff's list, files, messages and actions.

Every write is a POST that calls one service and comes back to the case page: on success with a
message, on a refusal with the reason shown where the user acted.  Staff see their panel (queue
tools, decisions, remedies) from :mod:`fapiao.recovery.views.staff`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, may, require
from fapiao.accounts.requests import acting_user
from fapiao.audit.services import display_name
from fapiao.core.cases import CaseState
from fapiao.core.errors import FapiaoError, ValidationFailed
from fapiao.core.evidence import EvidenceType
from fapiao.platform.errors import friendly
from fapiao.platform.forms import FormState
from fapiao.recovery import evidence as evidence_services
from fapiao.recovery import review, selectors, services
from fapiao.recovery.checks import check_message
from fapiao.recovery.models import Case, CaseMessage
from fapiao.recovery.presenters import case_representation
from fapiao.recovery.receipt import EVIDENCE_TYPES, submission_receipt_pdf
from fapiao.recovery.storage import open_blob
from fapiao.recovery.views import staff
from fapiao.recovery.views.progress import state_label, steps, waiting_for

MERCHANT_ACTIONS = ("submit", "resubmit", "withdraw", "confirm", "reopen")
STAFF_ACTIONS = ("claim", "release", "approve", "reject", "request-info")


def _version(request: HttpRequest) -> int:
    text = request.POST.get("version", "")
    return int(text) if text.isdigit() else -1


def type_choices() -> list[tuple[str, str]]:
    return [(kind.value, gettext(EVIDENCE_TYPES[kind.value])) for kind in EvidenceType]


def case_page_context(request: HttpRequest, case: Case, **extra: Any) -> dict[str, Any]:
    user = acting_user(request)
    body = case_representation(case, user=user)
    merchant_view = user.is_merchant_user
    context: dict[str, Any] = {
        "case": case,
        "body": body,
        "steps": steps(case),
        "state_label": state_label(case.state),
        "waiting": waiting_for(case, merchant_view=merchant_view),
        "merchant_view": merchant_view,
        "actions": set(body["actions"]),
        "may_upload": "evidence" in body["actions"],
        "may_message": "messages" in body["actions"],
        "type_choices": type_choices(),
        "max_file_mb": evidence_services.max_file_bytes() // evidence_services.MB,
        "upload_form": extra.pop("upload_form", FormState()),
        "message_form": extra.pop("message_form", FormState()),
        "action_form": extra.pop("action_form", FormState()),
        "requested": _requested_items(case),
        "files": [(e, check_message(e)) for e in case.evidence.order_by("uploaded_at", "pk")],
        "message_rows": _message_rows(case),
        "events": case.events.order_by("at", "pk"),
        "receipt_url": reverse("recovery:receipt", args=[case.uid]) if case.acceptance_no else None,
        "invoice_url": _invoice_url(case, user),
    }
    if not merchant_view:
        context.update(staff.panel_context(request, case))
    context.update(extra)
    return context


def _message_rows(case: Case) -> list[CaseMessage]:
    rows = list(
        case.messages.select_related("author").prefetch_related("attachments").order_by("created_at", "pk")
    )
    for row in rows:
        row.author_name = display_name(row.author)  # type: ignore[attr-defined]
    return rows


def _requested_items(case: Case) -> list[str]:
    if case.state != CaseState.NEEDS_INFO:
        return []
    last = case.messages.exclude(requested_items=[]).order_by("-created_at").first()
    return list(last.requested_items) if last else []


def _invoice_url(case: Case, user: User) -> str | None:
    if not case.resolved_invoice_id or not may(user, Action.READ_INVOICES):
        return None
    url = reverse("invoices:invoice", args=[case.resolved_invoice.number])  # type: ignore[union-attr]
    return url if user.is_merchant_user else f"{url}?merchant={case.merchant.uscc}"


def _render_case(request: HttpRequest, case: Case, **extra: Any) -> HttpResponse:
    case.refresh_from_db()
    return render(request, "recovery/case.html", case_page_context(request, case, **extra))


@login_required
@require_GET
@friendly
def case_page(request: HttpRequest, case_id: str) -> HttpResponse:
    user = acting_user(request)
    case = selectors.case_get(user=user, case_id=case_id)
    services.mark_read(user=user, case=case)
    return _render_case(request, case)


@login_required
@require_GET
@friendly
def case_list(request: HttpRequest) -> HttpResponse:
    """我的申请 for merchants; for staff the queue with filters, counts and overdue marks."""
    user = acting_user(request)
    require(user, Action.READ_CASES)
    form = FormState(data=request.GET.dict())
    try:
        filters = selectors.parse_filters(request.GET.dict())
    except ValidationFailed as failed:
        form.add_failure(failed, lambda path: path)
        filters = selectors.CaseFilters()
    page = Paginator(selectors.case_list(user=user, filters=filters), selectors.PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    counts = selectors.state_counts(user=user)
    context = {
        "form": form,
        "page": page,
        "rows": [_row(case) for case in page],
        "query": query.urlencode(),
        "merchant_view": user.is_merchant_user,
        "may_open": may(user, Action.OPEN_CASES),
        "counts": [
            (state.value, state_label(state), counts.get(state, 0))
            for state in CaseState
            if counts.get(state)
        ],
        "state_choices": [("", gettext("All"))] + [(s.value, state_label(s)) for s in CaseState],
    }
    context.update(staff.list_context(request) if not user.is_merchant_user else {})
    return render(request, "recovery/list.html", context)


def _row(case: Case) -> dict[str, Any]:
    return {
        "case": case,
        "url": reverse("recovery:case", args=[case.uid]),
        "state_label": state_label(case.state),
        "due": selectors.due_at(case),
        "overdue": selectors.is_overdue(case),
    }


@login_required
@require_POST
@friendly
def upload_evidence(request: HttpRequest, case_id: str) -> HttpResponse:
    """One or more files of one type; with ``Accept: application/json`` (the drag-and-drop script)
    the answer is JSON, else the case page."""
    user = acting_user(request)
    case = selectors.case_get(user=user, case_id=case_id)
    require(user, Action.ADD_EVIDENCE)
    files = request.FILES.getlist("file")
    kind = request.POST.get("type", "")
    form = FormState(data={"type": kind})
    added = []
    if not files:
        form.add("file", gettext("Choose a file to upload."))
    for upload in files:
        try:
            if upload.size is not None and upload.size > evidence_services.max_file_bytes():
                limit = evidence_services.max_file_bytes() // evidence_services.MB
                raise ValidationFailed([evidence_services.too_large_error(limit).at("file")])
            added.append(
                evidence_services.add_evidence(
                    user=user, case=case, evidence_type=kind, filename=upload.name, data=upload.read()
                )
            )
        except FapiaoError as failure:
            if failure.status == 403:
                raise
            form.add_failure(failure, lambda path: "file" if path in ("file", "filename", "") else path)
    wants_json = "application/json" in request.headers.get("Accept", "")
    if wants_json:
        status = 201 if added and not form.invalid else 422
        return JsonResponse(
            {"added": [e.filename for e in added], "errors": form.errors},
            status=status,
            json_dumps_params={"ensure_ascii": False},
        )
    if form.invalid:
        return _render_case(request, case, upload_form=form)
    messages.success(
        request, gettext("Uploaded: {files}.").format(files="、".join(e.filename for e in added))
    )
    return redirect("recovery:case", case_id=case.uid)


@login_required
@require_GET
@friendly
def download_evidence(request: HttpRequest, case_id: str, evidence_id: str) -> HttpResponse:
    case = selectors.case_get(user=acting_user(request), case_id=case_id)
    evidence = selectors.evidence_get(case=case, evidence_id=evidence_id)
    response = HttpResponse(open_blob(evidence.sha256), content_type="application/octet-stream")
    from urllib.parse import quote

    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(evidence.filename, safe='')}"
    return response


@login_required
@require_GET
@friendly
def receipt_pdf(request: HttpRequest, case_id: str) -> HttpResponse:
    case = selectors.case_get(user=acting_user(request), case_id=case_id)
    try:
        data = submission_receipt_pdf(case)
    except FapiaoError as failure:
        messages.error(request, failure.render(gettext))
        return redirect("recovery:case", case_id=case.uid)
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{case.acceptance_no}.pdf"'
    return response


@login_required
@require_POST
@friendly
def post_message(request: HttpRequest, case_id: str) -> HttpResponse:
    user = acting_user(request)
    case = selectors.case_get(user=user, case_id=case_id)
    form = FormState(data={"body": request.POST.get("body", "")})
    try:
        services.post_message(
            user=user, case=case, body=form.data["body"], on_behalf=request.POST.get("on_behalf") == "on"
        )
    except FapiaoError as failure:
        if failure.status == 403:
            raise
        form.add_failure(failure, lambda path: "body")
        return _render_case(request, case, message_form=form)
    messages.success(request, gettext("Message sent."))
    return redirect("recovery:case", case_id=case.uid)


def _run(action: str, user: User, case: Case, request: HttpRequest) -> Any:
    version = _version(request)
    reason = request.POST.get("reason", "")
    template = request.POST.get("reason_template", "") or None
    calls = {
        "submit": lambda: services.submit_case(user=user, case=case, version=version),
        "resubmit": lambda: services.resubmit_case(user=user, case=case, version=version),
        "withdraw": lambda: services.withdraw_case(user=user, case=case, version=version, reason=reason),
        "confirm": lambda: services.confirm_case(user=user, case=case, version=version),
        "reopen": lambda: services.reopen_case(user=user, case=case, version=version, reason=reason),
        "claim": lambda: review.claim_case(user=user, case=case, version=version),
        "release": lambda: review.release_case(user=user, case=case),
        "approve": lambda: review.approve_case(
            user=user, case=case, version=version, reason=reason, template=template
        ),
        "reject": lambda: review.reject_case(
            user=user, case=case, version=version, reason=reason, template=template
        ),
        "request-info": lambda: services.request_info(
            user=user, case=case, version=version, body=request.POST.get("body", ""),
            items=[item for item in request.POST.getlist("items") if item.strip()],
        ),
    }  # fmt: skip
    return calls[action]()


DONE = {
    "submit": _("Submitted. Keep the receipt: it lists every file you handed in."),
    "resubmit": _("Submitted again."),
    "withdraw": _("The case was withdrawn."),
    "confirm": _("Thank you: the case is closed."),
    "reopen": _("The case was reopened and goes back to review."),
    "claim": _("You now hold this case."),
    "release": _("You gave the case back."),
    "approve": _("Approved."),
    "reject": _("Rejected."),
    "request-info": _("The merchant was asked for more."),
}


@login_required
@require_POST
@friendly
def act(request: HttpRequest, case_id: str, action: str) -> HttpResponse:
    user = acting_user(request)
    case = selectors.case_get(user=user, case_id=case_id)
    if action not in DONE:
        raise Http404(gettext("No such action."))
    form = FormState(data={"reason": request.POST.get("reason", ""), "body": request.POST.get("body", "")})
    try:
        _run(action, user, case, request)
    except FapiaoError as failure:
        if failure.status == 403:
            raise
        form.add_failure(failure, lambda path: path if path in ("reason", "body", "items") else "")
        return _render_case(request, case, action_form=form, failed_action=action)
    messages.success(request, str(DONE[action]))
    if action == "submit":
        return redirect(f"{reverse('recovery:case', args=[case.uid])}?submitted=1")
    return redirect("recovery:case", case_id=case.uid)
