"""/api/v1/cases — recovery cases (docs/api.md, docs/spec/recovery.md).  Thin handlers: parse, call, render.

Every action is ``POST /cases/{case_id}/<action>`` with the case's ``version``; the answer is the
case as it is now.  Errors are problem documents: 404 for a case the caller can't see, 403 for
a role or four-eyes refusal, 409 for a stale version or an action the state doesn't allow.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import quote

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from ninja import Router

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.core.errors import FieldError, ValidationFailed, _
from fapiao.core.evidence import EvidenceTooLargeError, megabytes
from fapiao.invoices.presenters import invoice_representation
from fapiao.platform.openapi import documented
from fapiao.platform.requests import json_body, page_param
from fapiao.recovery import actions, conversation, remedies, schemas, selectors, services
from fapiao.recovery import evidence as evidence_services
from fapiao.recovery.models import Case
from fapiao.recovery.presenters import case_representation, case_summary, evidence_representation
from fapiao.recovery.reasons import APPROVE_REASONS, REJECT_REASONS, REQUEST_ITEMS
from fapiao.recovery.receipt import submission_receipt_pdf
from fapiao.recovery.storage import open_blob

router = Router(tags=["cases"])
MAX_PAGE = 10_000
NOT_ALLOWED = _("This field is not allowed here.")
REMEDY_CONTENT = _(
    "A remedy writes the ledger's entry or the claim as reviewed, never content sent with it: "
    "ask the merchant to complete or correct the claim instead."
)


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _json(body: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def _case(request: HttpRequest, case: Case, status: int = 200) -> JsonResponse:
    case.refresh_from_db()
    return _json(case_representation(case, user=_user(request)), status)


def _object(request: HttpRequest) -> dict[str, Any]:
    body = json_body(request)
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "not_an_object", _("Send a JSON object."))])
    return body


def _version(body: dict[str, Any]) -> int:
    value = body.get("version")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(
            [FieldError("version", "required", _("Send the case's version as you last read it."))]
        )
    return value


@router.post(
    "",
    response={201: schemas.CaseOut},
    openapi_extra=documented(
        409, 413, links={201: schemas.CASE_LINKS}, extra=schemas.request_body(schemas.CaseIn, idempotent=True)
    ),
    summary="Open a draft case",
)
def open_case(request: HttpRequest) -> JsonResponse:
    case = services.open_case(
        user=_user(request),
        payload=json_body(request),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return _case(request, case, 201)


@router.get(
    "",
    response={200: schemas.CasePage},
    openapi_extra=documented(extra={"parameters": schemas.FILTERS}),
    summary="List cases",
)
def list_cases(request: HttpRequest) -> dict[str, Any]:
    """Filters: ``state`` (comma-separated), ``merchant`` (USCC), ``overdue``, ``older_than_days``,
    ``amount_min``/``amount_max``, ``assignee`` (``me``, ``none`` or a username), ``q``
    (受理编号 or invoice number), ``unread`` (merchant messages no staff member has read)."""
    user = _user(request)
    filters = selectors.parse_filters(request.GET.dict())
    page_number = page_param(request, maximum=MAX_PAGE)
    paginator = Paginator(selectors.case_list(user=user, filters=filters), selectors.PAGE_SIZE)
    page = paginator.get_page(page_number) if page_number <= max(paginator.num_pages, 1) else []
    return {
        "items": [case_summary(case) for case in page],
        "total": paginator.count,
        "page": page_number,
        "counts": selectors.state_counts(user=user),
    }


@router.get(
    "/reasons",
    response={200: dict[str, Any]},
    openapi_extra=documented(),
    summary="Reason and request templates",
)
def reasons(request: HttpRequest) -> dict[str, Any]:
    def translated(templates: dict[str, str]) -> list[dict[str, str]]:
        return [{"code": code, "text": gettext(text)} for code, text in templates.items()]

    return {
        "approve": translated(APPROVE_REASONS),
        "reject": translated(REJECT_REASONS),
        "request_items": translated(REQUEST_ITEMS),
    }


@router.get(
    "/{case_id}",
    response={200: schemas.CaseOut},
    openapi_extra=documented(404, links={200: schemas.CASE_LINKS}),
    summary="Fetch one case",
)
def detail(request: HttpRequest, case_id: str) -> JsonResponse:
    return _case(request, selectors.case_get(user=_user(request), case_id=case_id))


@router.patch(
    "/{case_id}",
    response={200: schemas.CaseOut},
    openapi_extra=documented(
        404, 409, 413, links={200: schemas.CASE_LINKS}, extra=schemas.request_body(schemas.CaseEditIn)
    ),
    summary="Edit the claim of a draft or rejected case",
)
def edit(request: HttpRequest, case_id: str) -> JsonResponse:
    user = _user(request)
    case = selectors.case_get(user=user, case_id=case_id)
    body = _object(request)
    version = _version(body)
    claim = {key: value for key, value in body.items() if key != "version"}
    return _case(request, services.update_claim(user=user, case=case, payload=claim, version=version))


def _given(body: dict[str, Any]) -> actions.ActionInput:
    return actions.ActionInput(
        version=_version(body),
        reason=body.get("reason"),
        reason_template=body.get("reason_template"),
        body=body.get("body"),
        items=body.get("items"),
    )


def _action(name: str, summary: str, schema: type) -> None:
    """``POST /{case_id}/<name>``: the action of :data:`fapiao.recovery.actions.ACTIONS` by that name."""

    def handler(request: HttpRequest, case_id: str) -> JsonResponse:
        user = _user(request)
        case = selectors.case_get(user=user, case_id=case_id)
        return _case(request, actions.run(name, user=user, case=case, given=_given(_object(request))))

    handler.__name__ = name.replace("-", "_")
    router.post(
        f"/{{case_id}}/{name}",
        response={200: schemas.CaseOut},
        openapi_extra=documented(
            404, 409, 413, links={200: schemas.CASE_LINKS}, extra=schemas.request_body(schema)
        ),
        summary=summary,
    )(handler)


for _name, _summary, _schema in (
    ("submit", "Submit a draft", schemas.VersionIn),
    ("resubmit", "Submit a rejected case again", schemas.VersionIn),
    ("confirm", "Confirm the result and close the case", schemas.VersionIn),
    ("reopen", "Reopen a resolved case within the window", schemas.ReasonIn),
    ("withdraw", "Withdraw a case", schemas.ReasonIn),
    ("claim", "Claim a case for review", schemas.VersionIn),
    ("request-info", "Ask the merchant for more (补正通知)", schemas.RequestInfoIn),
    ("approve", "Approve (or give the first of two approvals)", schemas.DecisionIn),
    ("reject", "Reject, with a reason", schemas.DecisionIn),
):
    _action(_name, _summary, _schema)


@router.post(
    "/{case_id}/release",
    response={200: schemas.CaseOut},
    openapi_extra=documented(404, 409, links={200: schemas.CASE_LINKS}),
    summary="Give a claimed case back",
)
def release(request: HttpRequest, case_id: str) -> JsonResponse:
    user = _user(request)
    case = selectors.case_get(user=user, case_id=case_id)
    return _case(request, actions.run("release", user=user, case=case, given=actions.ActionInput()))


@router.post(
    "/{case_id}/assign",
    response={200: schemas.CaseOut},
    openapi_extra=documented(
        404, 409, 413, links={200: schemas.CASE_LINKS}, extra=schemas.request_body(schemas.AssignIn)
    ),
    summary="Assign a case to a reviewer (lead reviewers)",
)
def assign(request: HttpRequest, case_id: str) -> JsonResponse:
    user = _user(request)
    case = selectors.case_get(user=user, case_id=case_id)
    given = actions.ActionInput(assignee=_object(request).get("assignee"))
    return _case(request, actions.run("assign", user=user, case=case, given=given))


RESOLVE_KEYS = frozenset({"version", "remedy", "note"})


@router.post(
    "/{case_id}/resolve",
    response={200: schemas.ResolveOut},
    openapi_extra=documented(
        404, 409, 413, links={200: schemas.RESOLVE_LINKS}, extra=schemas.request_body(schemas.ResolveIn)
    ),
    summary="Restore or re-issue the invoice of an approved case",
)
def resolve(request: HttpRequest, case_id: str) -> JsonResponse:
    """The remedy writes the merchant's ledger entry of the number or the claim as reviewed: the
    body chooses the remedy and may add a note, and carries no invoice content."""
    user = _user(request)
    case = selectors.case_get(user=user, case_id=case_id)
    require(user, Action.REVIEW_CASES)  # before the body: only a reviewer learns what it may hold
    body = _object(request)
    unknown = sorted(str(key) for key in body if key not in RESOLVE_KEYS)
    if unknown:
        raise ValidationFailed(
            [
                FieldError(key, "unknown_field", REMEDY_CONTENT if key == "invoice" else NOT_ALLOWED)
                for key in unknown
            ]
        )
    resolved, invoice, receipt = remedies.resolve_case(
        user=user, case=case, version=_version(body), remedy=body.get("remedy"), note=body.get("note")
    )
    resolved.refresh_from_db()
    return _json(
        {
            "case": case_representation(resolved, user=user),
            "invoice": invoice_representation(invoice),
            "receipt": receipt,
        }
    )


@router.post(
    "/{case_id}/messages",
    response={201: schemas.CaseOut},
    openapi_extra=documented(
        404, 409, 413, links={201: schemas.CASE_LINKS}, extra=schemas.request_body(schemas.MessageIn)
    ),
    summary="Write a message on a case",
)
def message(request: HttpRequest, case_id: str) -> JsonResponse:
    user = _user(request)
    case = selectors.case_get(user=user, case_id=case_id)
    body = _object(request)
    conversation.post_message(
        user=user, case=case, body=body.get("body"), on_behalf=body.get("on_behalf") is True
    )
    return _case(request, case, 201)


@router.post(
    "/{case_id}/evidence",
    response={201: schemas.EvidenceOut},
    openapi_extra=documented(404, 409, 413, extra=schemas.EVIDENCE_UPLOAD),
    summary="Attach a file (multipart: file, type)",
)
def add_evidence(request: HttpRequest, case_id: str) -> JsonResponse:
    user = _user(request)
    case = selectors.case_get(user=user, case_id=case_id)
    upload = request.FILES.get("file")
    if upload is None:
        raise ValidationFailed(
            [FieldError("file", "required", _("Attach a file as the multipart field 'file'."))]
        )
    limit = evidence_services.max_file_bytes()
    if upload.size is not None and upload.size > limit:
        raise evidence_services.too_large(
            EvidenceTooLargeError(limit_mb=megabytes(limit), filename=upload.name or "").at("file")
        )
    evidence = evidence_services.add_evidence(
        user=user, case=case, evidence_type=request.POST.get("type"), filename=upload.name, data=upload.read()
    )
    return _json(evidence_representation(evidence), 201)


@router.get(
    "/{case_id}/evidence/{evidence_id}",
    response={200: None},
    openapi_extra=documented(404, content={200: "application/octet-stream"}),
    summary="Download a file",
)
def download_evidence(request: HttpRequest, case_id: str, evidence_id: str) -> HttpResponse:
    case = selectors.case_get(user=_user(request), case_id=case_id)
    evidence = selectors.evidence_get(case=case, evidence_id=evidence_id)
    response = HttpResponse(open_blob(evidence.sha256), content_type="application/octet-stream")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quote(evidence.filename)}"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@router.get(
    "/{case_id}/receipt.pdf",
    response={200: None},
    openapi_extra=documented(404, 409, content={200: "application/pdf"}),
    summary="The submission receipt (PDF)",
)
def receipt_pdf(request: HttpRequest, case_id: str) -> HttpResponse:
    case = selectors.case_get(user=_user(request), case_id=case_id)
    response = HttpResponse(submission_receipt_pdf(case), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{case.acceptance_no}.pdf"'
    return response


def _quote(name: str) -> str:
    return quote(name, safe="")
