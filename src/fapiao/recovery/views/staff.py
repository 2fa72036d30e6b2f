"""The staff's pages: support's inbox, assigning a case, a reply with files; the staff's URLs.

The case page shows staff their panel (:mod:`fapiao.recovery.views.staff_panel`); decisions post
to the shared ``act`` view (:mod:`fapiao.recovery.views.case`), restoring and re-issuing to
:mod:`fapiao.recovery.views.staff_resolve`, e-mail and mail-in evidence to
:mod:`fapiao.recovery.views.staff_mail`.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from fapiao.accounts.permissions import Action, RoleForbiddenError, require
from fapiao.accounts.requests import acting_user
from fapiao.audit.services import display_name
from fapiao.core.errors import FapiaoError, _
from fapiao.platform.errors import friendly
from fapiao.platform.forms import FormState
from fapiao.recovery import actions, conversation, selectors
from fapiao.recovery.evidence import max_file_bytes, reply_with_files
from fapiao.recovery.labels import state_label
from fapiao.recovery.views import staff_mail, staff_resolve
from fapiao.recovery.views.case_context import render_case
from fapiao.recovery.views.staff_panel import is_desk


@login_required
@require_GET
@friendly
def inbox(request: HttpRequest) -> HttpResponse:
    """Support's inbox: cases with merchant messages no staff member has read, longest waiting first."""
    user = acting_user(request)
    if not is_desk(user):
        raise RoleForbiddenError(_("Your role does not allow this action."))
    page = Paginator(selectors.inbox(user), selectors.PAGE_SIZE).get_page(request.GET.get("page"))
    last = selectors.last_unread_messages(page)
    now = timezone.now()
    rows = [
        {
            "case": case,
            "url": reverse("recovery:case", args=[case.uid]),
            "state_label": state_label(case.state),
            "last": last.get(case.pk),
            "author": display_name(last[case.pk].author) if case.pk in last else "",
            "due": selectors.due_at(case),
            "overdue": selectors.is_overdue(case, now),
        }
        for case in page
    ]
    return render(request, "recovery/staff/inbox.html", {"page": page, "rows": rows, "query": ""})


@login_required
@require_POST
@friendly
def assign(request: HttpRequest, case_id: str) -> HttpResponse:
    """A lead reviewer gives the case to a reviewer."""
    user = acting_user(request)
    require(user, Action.ASSIGN_CASES)
    case = selectors.case_get(user=user, case_id=case_id)
    form = FormState(data={"assignee": request.POST.get("assignee", "")})
    try:
        assigned = actions.run(
            "assign", user=user, case=case, given=actions.ActionInput(assignee=form.data["assignee"])
        )
    except FapiaoError as failure:
        if failure.status == 403:
            raise
        form.add_failure(failure, lambda path: "assignee")
        return render_case(request, case, action_form=form, failed_action="assign")
    name = display_name(assigned.assignee) if assigned.assignee else ""
    messages.success(request, gettext("The case was assigned to {name}.").format(name=name))
    return redirect("recovery:case", case_id=case.uid)


@login_required
@require_POST
@friendly
def reply(request: HttpRequest, case_id: str) -> HttpResponse:
    """A message from the desk with files attached (all stored, or none)."""
    user = acting_user(request)
    if not is_desk(user):
        raise RoleForbiddenError(_("Your role does not allow this action."))
    case = selectors.case_get(user=user, case_id=case_id)
    form = FormState(data={"body": request.POST.get("body", ""), "type": request.POST.get("type", "other")})
    uploads = request.FILES.getlist("file")
    files = [(upload.name or "", upload.read(max_file_bytes() + 1)) for upload in uploads]
    try:
        reply_with_files(
            user=user, case=case, body=form.data["body"], evidence_type=form.data["type"], files=files
        )
    except FapiaoError as failure:
        if failure.status == 403:
            raise
        form.add_failure(failure, lambda path: "body" if path == "body" else "file")
        return render_case(request, case, action_form=form, failed_action="reply")
    conversation.mark_read(user=user, case=case)
    messages.success(request, gettext("Message sent."))
    return redirect("recovery:case", case_id=case.uid)


urlpatterns: list[URLPattern] = [
    path("inbox/", inbox, name="inbox"),
    path("<uuid:case_id>/assign/", assign, name="assign"),
    path("<uuid:case_id>/reply/", reply, name="reply"),
    path("<uuid:case_id>/resolve/", staff_resolve.resolve_page, name="resolve"),
    path("<uuid:case_id>/email/", staff_mail.email_page, name="email"),
    path("<uuid:case_id>/mail-in/", staff_mail.mail_in_page, name="mail-in"),
]
