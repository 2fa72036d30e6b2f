"""The case page (steps 2–5) as every view that shows it renders it: after a GET, or again with a
refused form beside the place the user acted.  Merchants see their steps; staff also see their
panel (:mod:`fapiao.recovery.views.staff_panel`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, may
from fapiao.accounts.requests import acting_user
from fapiao.audit.services import display_name
from fapiao.invoices import findings
from fapiao.platform.forms import FormState
from fapiao.recovery import selectors
from fapiao.recovery.checks import check_message
from fapiao.recovery.evidence import MB, max_file_bytes
from fapiao.recovery.labels import evidence_type_choices, state_label
from fapiao.recovery.models import Case, CaseMessage
from fapiao.recovery.presenters import case_representation, written_rows
from fapiao.recovery.views.progress import steps, waiting_for
from fapiao.recovery.views.staff_panel import panel_context


def case_page_context(request: HttpRequest, case: Case, **extra: Any) -> dict[str, Any]:
    user = acting_user(request)
    body = case_representation(case, user=user)
    merchant_view = user.is_merchant_user
    # A case about an invoice whose row differs from its ledger entry speaks of a repair, not a loss.
    repairing = case.remedy == "repair" or findings.about_altered(
        case.merchant_id, case.claimed_number, case.acceptance_no
    )
    context: dict[str, Any] = {
        "case": case,
        "body": body,
        "steps": steps(case),
        "state_label": state_label(case.state),
        "waiting": waiting_for(case, merchant_view=merchant_view, user=user, repairing=repairing),
        "merchant_view": merchant_view,
        "repairing": repairing,
        "actions": set(body["actions"]),
        "may_upload": "evidence" in body["actions"],
        "may_message": "messages" in body["actions"],
        "type_choices": evidence_type_choices(),
        "max_file_mb": max_file_bytes() // MB,
        "upload_form": extra.pop("upload_form", FormState()),
        "message_form": extra.pop("message_form", FormState()),
        "action_form": extra.pop("action_form", FormState()),
        "requested": selectors.requested_items(case),
        "files": [(e, check_message(e)) for e in case.evidence.order_by("uploaded_at", "pk")],
        "message_rows": _message_rows(case),
        "events": case.events.order_by("at", "pk"),
        "receipt_url": reverse("recovery:receipt", args=[case.uid]) if case.acceptance_no else None,
        "invoice_url": _invoice_url(case, user),
        "written": written_rows(case),  # the merchant's check: what was written beside the claim
    }
    if not merchant_view:
        context.update(panel_context(request, case))
    context.update(extra)
    return context


def _message_rows(case: Case) -> list[CaseMessage]:
    rows = list(
        case.messages.select_related("author").prefetch_related("attachments").order_by("created_at", "pk")
    )
    for row in rows:
        row.author_name = display_name(row.author)  # type: ignore[attr-defined]
    return rows


def _invoice_url(case: Case, user: User) -> str | None:
    if not case.resolved_invoice_id or not may(user, Action.READ_INVOICES):
        return None
    url = reverse("invoices:invoice", args=[case.resolved_invoice.number])  # type: ignore[union-attr]
    return url if user.is_merchant_user else f"{url}?merchant={case.merchant.uscc}"


def render_case(request: HttpRequest, case: Case, **extra: Any) -> HttpResponse:
    """The case page as it is now, with ``extra`` (a refused form, the action that failed)."""
    case.refresh_from_db()
    return render(request, "recovery/case.html", case_page_context(request, case, **extra))
