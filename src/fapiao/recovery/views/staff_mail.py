"""Support registers evidence that came by e-mail (a ``.eml``) or by post (scans), for the merchant.

An e-mail is imported in two steps: support uploads the ``.eml`` and sees what it holds — the
sender matched to a user of the merchant (or a list to choose from), the text, and each
attachment with the evidence type it seems to be — then imports it.  Between the steps the mail
waits in the content-addressed store, named by a signed token bound to this case
(:func:`fapiao.recovery.mail_preview.hold_mail`), so the second step imports exactly the file that was
shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from fapiao.accounts.permissions import Action, RoleForbiddenError, require
from fapiao.accounts.requests import acting_user
from fapiao.audit.services import display_name
from fapiao.core.cases import CaseState
from fapiao.core.errors import FapiaoError, FieldError, ValidationFailed, _
from fapiao.formats.eml import MailMessage, MailProblem
from fapiao.formats.sniff import sniff
from fapiao.platform.errors import friendly
from fapiao.platform.forms import FormState
from fapiao.recovery import mail_preview, mailin, selectors
from fapiao.recovery.evidence import OPEN_FOR_EVIDENCE, max_file_bytes
from fapiao.recovery.labels import evidence_type_choices, state_label
from fapiao.recovery.models import Case

BODY_PREVIEW = 3000


def _desk_case(request: HttpRequest, case_id: str) -> Case:
    user = acting_user(request)
    require(user, Action.ADD_EVIDENCE)
    if user.is_merchant_user:
        raise RoleForbiddenError(_("Your role does not allow this action."))
    return selectors.case_get(user=user, case_id=case_id)


def _closed(request: HttpRequest, case: Case) -> HttpResponse | None:
    """Back to the case, with the reason, when it takes no more files."""
    if case.state in OPEN_FOR_EVIDENCE and case.state != CaseState.DRAFT:
        return None
    text = gettext("Files can't be added to a case that is {state}.")
    messages.error(request, text.format(state=state_label(case.state)))
    return redirect("recovery:case", case_id=case.uid)


def _add_problems(form: FormState, problems: list[FieldError], names: list[str]) -> None:
    """Problems of files (``files.N`` paths) go beside the file input, each with its file's name."""
    for problem in problems:
        text = problem.render(gettext)
        head, _dot, index = problem.field.partition(".")
        if head == "files" and index.isdigit() and int(index) < len(names):
            form.add("file", f"{names[int(index)]}: {text}")
        else:
            form.add(problem.field if problem.field in ("sender", "received_on", "note") else "file", text)


def _preview(
    request: HttpRequest,
    case: Case,
    *,
    token: str,
    mail: MailMessage,
    problems: list[MailProblem],
    form: FormState,
) -> HttpResponse:
    chosen = form.data.get("sender", "")
    posted = "token" in form.data  # shown again after a refusal: keep what support ticked
    matched = mail_preview.match_sender(case, mail.sender_address)
    attachments = [
        {
            "index": index,
            "file": attachment,
            "kind": sniff(attachment.data),
            "type": form.data.get(f"type-{index}")
            or mail_preview.guess_type(attachment.filename, attachment.data),
            "take": form.data.get(f"take-{index}") == "on" or not posted,
        }
        for index, attachment in enumerate(mail.attachments)
    ]
    context = {
        "case": case,
        "token": token,
        "mail": mail,
        "body": mail.body_text[:BODY_PREVIEW],
        "cut": len(mail.body_text) > BODY_PREVIEW,
        "problems": [problem.render(gettext) for problem in problems],
        "matched": matched,
        "senders": [("", gettext("— choose —"))]
        + [(u.username, f"{display_name(u)} · {u.email or '—'}") for u in mail_preview.merchant_users(case)],
        "sender": chosen or (matched.username if matched else ""),
        "attachments": attachments,
        "type_choices": evidence_type_choices(),
        "form": form,
        "record_text": form.data.get("record_text") == "on" or not posted,
    }
    return render(request, "recovery/staff/email.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@friendly
def email_page(request: HttpRequest, case_id: str) -> HttpResponse:
    case = _desk_case(request, case_id)
    closed = _closed(request, case)
    if closed is not None:
        return closed
    form = FormState(data=request.POST.dict() if request.method == "POST" else {})
    if request.method == "GET":
        return render(request, "recovery/staff/email.html", {"case": case, "form": form})
    if "token" in request.POST:
        return _import(request, case, form)
    upload = request.FILES.get("file")
    data = upload.read(max_file_bytes() + 1) if upload is not None else b""
    mail, problems = mail_preview.read_mail(data) if data else (None, [])
    if mail is None:
        if not data:
            form.add("file", gettext("Choose an e-mail file (.eml) to upload."))
        for problem in problems:
            form.add("file", problem.render(gettext))
        return render(request, "recovery/staff/email.html", {"case": case, "form": form})
    try:
        # before the mail is held for the preview: a bomb is never stored
        mail_preview.refuse_unsafe(problems)
    except ValidationFailed as refused:
        form.add_failure(refused, lambda path: "file")
        return render(request, "recovery/staff/email.html", {"case": case, "form": form})
    name = upload.name if upload is not None and upload.name else "mail.eml"
    token = mail_preview.hold_mail(case, data, name)
    return _preview(request, case, token=token, mail=mail, problems=problems, form=form)


def _import(request: HttpRequest, case: Case, form: FormState) -> HttpResponse:
    token = form.data.get("token", "")
    held = mail_preview.held_mail(case, token)
    if held is None:
        form.add("file", gettext("The uploaded e-mail has expired; upload it again."))
        return render(
            request, "recovery/staff/email.html", {"case": case, "form": FormState(errors=form.errors)}
        )
    mail, problems = mail_preview.read_mail(held.data)
    assert mail is not None  # it was read before it was stored
    count = len(mail.attachments)
    username = form.data.get("sender", "")
    sender = selectors.user_by_username(username) if username else None
    try:
        result = mailin.import_email(
            user=acting_user(request),
            case=case,
            filename=held.name,
            data=held.data,
            sender=sender,
            types={i: form.data.get(f"type-{i}", "") for i in range(count)},
            leave_out={i for i in range(count) if form.data.get(f"take-{i}") != "on"},
            record_text=form.data.get("record_text") == "on",
        )
    except FapiaoError as failure:
        if failure.status == 403:
            raise
        _add_problems(form, mailin.problems_of(failure), [])
        return _preview(request, case, token=token, mail=mail, problems=problems, form=form)
    text = gettext("The e-mail from {sender} was imported with {count} attachment(s).")
    messages.success(request, text.format(sender=display_name(result.sender), count=len(result.added)))
    for name, why in result.left_out:
        reason = "; ".join(problem.render(gettext) for problem in why)
        messages.warning(request, gettext("{file} was left out: {reason}").format(file=name, reason=reason))
    return redirect("recovery:case", case_id=case.uid)


def _mail_in_form(request: HttpRequest, case: Case, form: FormState) -> HttpResponse:
    context: dict[str, Any] = {"case": case, "form": form, "type_choices": evidence_type_choices()}
    return render(request, "recovery/staff/mail_in.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@friendly
def mail_in_page(request: HttpRequest, case_id: str) -> HttpResponse:
    """Scans of papers the merchant posted, registered on their behalf and marked as mailed in."""
    case = _desk_case(request, case_id)
    closed = _closed(request, case)
    if closed is not None:
        return closed
    if request.method == "GET":
        today = timezone.localdate().isoformat()
        return _mail_in_form(request, case, FormState(data={"received_on": today, "type": "stub_copy"}))
    names = ("type", "received_on", "note")
    form = FormState(data={name: request.POST.get(name, "") for name in names})
    uploads = request.FILES.getlist("file")
    files = [(upload.name or "", upload.read(max_file_bytes() + 1)) for upload in uploads]
    try:
        added = mailin.register_mail_in(
            user=acting_user(request),
            case=case,
            files=files,
            evidence_type=form.data["type"],
            received_on=form.data["received_on"],
            note=form.data["note"],
        )
    except ValidationFailed as failed:
        _add_problems(form, failed.errors, [name for name, _data in files])
        return _mail_in_form(request, case, form)
    except FapiaoError as failure:
        if failure.status == 403:
            raise
        form.add("", failure.render(gettext))
        return _mail_in_form(request, case, form)
    text = gettext("Registered {count} mailed-in file(s) for the merchant.")
    messages.success(request, text.format(count=len(added)))
    return redirect("recovery:case", case_id=case.uid)
