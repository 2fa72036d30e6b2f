"""The case page everyone shares (steps 2–5), 我的申请 / the staff's list, files, messages and actions.

Every write is a POST that calls one service and comes back to the case page: on success with a
message, on a refusal with the reason shown where the user acted.  The page itself is
:mod:`fapiao.recovery.views.case_context` (staff also see their panel and list tools,
:mod:`fapiao.recovery.views.staff_panel`); the actions' buttons go through the same table as the
API's (:mod:`fapiao.recovery.actions`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from fapiao.accounts.permissions import Action, may, require
from fapiao.accounts.requests import acting_user
from fapiao.core.cases import CaseState
from fapiao.core.errors import FapiaoError, ValidationFailed
from fapiao.core.strict import whole_number_or_none
from fapiao.platform.errors import friendly
from fapiao.platform.forms import FormState
from fapiao.recovery import actions, conversation, selectors
from fapiao.recovery.evidence import MB, add_evidence, max_file_bytes, too_large_error
from fapiao.recovery.labels import state_label
from fapiao.recovery.models import Case
from fapiao.recovery.receipt import submission_receipt_pdf
from fapiao.recovery.storage import open_blob
from fapiao.recovery.views.case_context import render_case
from fapiao.recovery.views.staff_panel import list_context


def _version(request: HttpRequest) -> int:
    version = whole_number_or_none(request.POST.get("version", ""))
    return -1 if version is None else version


@login_required
@require_GET
@friendly
def case_page(request: HttpRequest, case_id: str) -> HttpResponse:
    user = acting_user(request)
    case = selectors.case_get(user=user, case_id=case_id)
    conversation.mark_read(user=user, case=case)
    return render_case(request, case)


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
        "may_register": may(user, Action.REGISTER_CASES),
        "counts": [
            (state.value, state_label(state), counts.get(state, 0))
            for state in CaseState
            if counts.get(state)
        ],
        "state_choices": [("", gettext("All"))] + [(s.value, state_label(s)) for s in CaseState],
    }
    context.update(list_context(request) if not user.is_merchant_user else {})
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
            if upload.size is not None and upload.size > max_file_bytes():
                raise ValidationFailed([too_large_error(max_file_bytes() // MB).at("file")])
            added.append(
                add_evidence(
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
        return render_case(request, case, upload_form=form)
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
        conversation.post_message(
            user=user, case=case, body=form.data["body"], on_behalf=request.POST.get("on_behalf") == "on"
        )
    except FapiaoError as failure:
        if failure.status == 403:
            raise
        form.add_failure(failure, lambda path: "body")
        return render_case(request, case, message_form=form)
    messages.success(request, gettext("Message sent."))
    return redirect("recovery:case", case_id=case.uid)


def _given(request: HttpRequest) -> actions.ActionInput:
    return actions.ActionInput(
        version=_version(request),
        reason=request.POST.get("reason", ""),
        reason_template=request.POST.get("reason_template", "") or None,
        body=request.POST.get("body", ""),
        items=[item for item in request.POST.getlist("items") if item.strip()],
    )


DONE = {
    "submit": _("Submitted. Keep the receipt: it lists every file you handed in."),
    "resubmit": _("Submitted again."),
    "withdraw": _("The case was withdrawn."),
    "confirm": _("Thank you: the case is closed."),
    "reopen": _("The case was reopened and goes back to review."),
    "claim": _("You now hold this case."),
    "release": _("You gave the case back."),
    "approve": _("Approved."),
    "return-to-review": _("The case is back in review: its approvals no longer count."),
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
        after = actions.run(action, user=user, case=case, given=_given(request))
    except FapiaoError as failure:
        if failure.status == 403:
            raise
        form.add_failure(failure, lambda path: path if path in ("reason", "body", "items") else "")
        return render_case(request, case, action_form=form, failed_action=action)
    if action == "approve" and after.state == CaseState.AWAITING_SECOND:
        messages.success(
            request, gettext("First approval given. A second reviewer must approve the case too.")
        )
    else:
        messages.success(request, str(DONE[action]))
    if action == "submit":
        return redirect(f"{reverse('recovery:case', args=[case.uid])}?submitted=1")
    return redirect("recovery:case", case_id=case.uid)
