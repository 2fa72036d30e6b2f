"""The staff's part of the case page and of the case list: what they see and which steps they may take.

The panel (``recovery/staff/_panel.html``) shows who holds the case, the claim beside the
system's view of the number (ledger history, similar invoices, automatic checks), how the
files came in, and the forms of every step the user may take now.  The list tools
(``recovery/staff/_list_tools.html``) are the quick queues with their counts.  Read only: the
forms post to the views of :mod:`fapiao.recovery.views.case` and :mod:`fapiao.recovery.views.staff`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, may
from fapiao.accounts.requests import acting_user
from fapiao.audit.services import display_name
from fapiao.core.cases import CLOSED_STATES, CaseState
from fapiao.core.errors import _
from fapiao.recovery import case_replay, remedies, selectors
from fapiao.recovery.checks import check_message
from fapiao.recovery.evidence import OPEN_FOR_EVIDENCE
from fapiao.recovery.history import ledger_rows
from fapiao.recovery.labels import evidence_type_choices
from fapiao.recovery.models import Case, Evidence
from fapiao.recovery.presenters import next_actions
from fapiao.recovery.reasons import APPROVE_REASONS, REJECT_REASONS, REQUEST_ITEMS
from fapiao.recovery.templatetags.recovery_tags import channel as channel_label
from fapiao.recovery.transitions import facts_of, second_review_threshold

REQUEST_BODY = _(
    "To decide case {case} we need more from you. Please add what is listed below on the case page, "
    "or answer with a message."
)
ASSIGNABLE = frozenset(CaseState) - CLOSED_STATES - {CaseState.DRAFT}
DIFFERENCE_LABELS = {  # the claim fields an automatic check compares (fapiao.core.claims)
    "number": gettext_lazy("Invoice number"),
    "issued_on": gettext_lazy("Invoice date"),
    "buyer_name": gettext_lazy("Buyer"),
    "buyer_tax_id": gettext_lazy("Buyer's taxpayer number"),
    "total_with_tax_fen": gettext_lazy("Total with tax"),
    "total_amount_fen": gettext_lazy("Amount without tax"),
    "total_tax_fen": gettext_lazy("Tax"),
}


def is_desk(user: User) -> bool:
    """Support agents and reviewers: the people who work cases (auditors only read them)."""
    return may(user, Action.MESSAGE_CASES) and not user.is_merchant_user


def _templates(templates: dict[str, str]) -> list[tuple[str, str]]:
    return [("", gettext("— write your own —"))] + [(key, gettext(text)) for key, text in templates.items()]


def _request_items() -> list[tuple[str, str]]:
    """(the text the merchant will read, in the site's language; its label for this user)."""
    with translation.override(settings.LANGUAGE_CODE):
        for_merchant = {key: gettext(text) for key, text in REQUEST_ITEMS.items()}
    return [(for_merchant[key], gettext(text)) for key, text in REQUEST_ITEMS.items()]


def _request_body(case: Case) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return gettext(REQUEST_BODY).format(case=case.acceptance_no or "")


def _differences(evidence: Evidence) -> list[dict[str, str]]:
    found = (evidence.check_details or {}).get("differences") or []
    return [{**d, "label": str(DIFFERENCE_LABELS.get(d.get("field"), d.get("field")))} for d in found]


def _system_view(case: Case) -> dict[str, Any]:
    similar = selectors.similar_invoices(case)
    invoice_url = reverse("invoices:invoice", args=["NUMBER"])
    return {
        "ledger": ledger_rows(case),
        "similar": [
            {
                "invoice": invoice,
                "url": invoice_url.replace("NUMBER", invoice.number) + f"?merchant={case.merchant.uscc}",
                "same_amount": invoice.total_with_tax == case.claimed_total_with_tax,
                "same_buyer": invoice.buyer_name == case.claimed_buyer_name,
            }
            for invoice in similar
        ],
        "checks": [
            {"file": e, "message": check_message(e), "differences": _differences(e)}
            for e in case.evidence.exclude(check_status="not_checked").order_by("uploaded_at", "pk")
        ],
    }


def _channels(case: Case) -> dict[str, Any]:
    counts = selectors.evidence_channels(case)
    imports = selectors.deliveries(case)
    return {"counts": [(channel_label(name), n) for name, n in sorted(counts.items())], "imports": imports}


def panel_context(request: HttpRequest, case: Case) -> dict[str, Any]:
    """What the staff panel of the case page (``recovery/staff/_panel.html``) needs."""
    user = acting_user(request)
    now = timezone.now()
    actions = set(next_actions(case, user))
    claim_live = bool(case.assignee_id and case.claim_expires_at and case.claim_expires_at > now)
    held_by_me = claim_live and case.assignee_id == user.pk
    threshold = second_review_threshold()
    open_for_files = case.state in OPEN_FOR_EVIDENCE and case.state != CaseState.DRAFT
    four_eyes = may(user, Action.REVIEW_CASES) and user.pk in facts_of(case, now).involved()
    # Decisions the core would refuse this user anyway are not offered (it still has the last word).
    may_decide = not four_eyes and not (
        case.state == CaseState.AWAITING_SECOND and case.first_approver_id == user.pk
    )
    may_add_files = is_desk(user) and may(user, Action.ADD_EVIDENCE) and open_for_files
    # The automatic check of the number, before anyone approves: never handed out by any segment?
    never_issued = case.state not in CLOSED_STATES and remedies.never_issued(case)
    staff = {
        "holder": display_name(case.assignee) if claim_live and case.assignee else "",
        "held_by_me": held_by_me,
        "held_by_other": claim_live and not held_by_me,
        "claim_expires_at": case.claim_expires_at if claim_live else None,
        "may_claim": "claim" in actions and not held_by_me,
        "may_release": bool(case.assignee_id)
        and (held_by_me or user.is_lead)
        and may(user, Action.REVIEW_CASES),
        "may_approve": may_decide and "approve" in actions,
        "may_reject": may_decide and "reject" in actions,
        "may_request": "request-info" in actions,
        "may_resolve": not four_eyes and "resolve" in actions,
        "may_return": not four_eyes and "return-to-review" in actions,
        "never_issued": never_issued,
        # A receipt of the case proves an entry a restore lost: it can come back from the receipt.
        "replayable": case.state not in CLOSED_STATES and case_replay.offered(case),
        "may_assign": user.is_lead and may(user, Action.ASSIGN_CASES) and case.state in ASSIGNABLE,
        # Replying with files is support's (the shared message form serves plain replies).
        "may_add_files": may_add_files,
        "may_reply": may_add_files and "messages" in actions,
        "four_eyes": four_eyes,
        "first_approver": display_name(case.first_approver) if case.first_approver_id else "",
        "i_approved_first": case.first_approver_id == user.pk,
        "second_needed": threshold is not None and abs(case.claimed_total_with_tax) > threshold,
        "threshold": threshold,
        "approve_reasons": _templates(APPROVE_REASONS),
        "reject_reasons": _templates(REJECT_REASONS),
        "reject_default": "never_issued" if never_issued else "",
        "request_items": _request_items(),
        "request_body": _request_body(case),
        "reviewers": [(u.username, display_name(u)) for u in selectors.active_reviewers()],
        "type_choices": evidence_type_choices(),
        **_system_view(case),
        "channels": _channels(case),
    }
    return {"staff": staff}


def list_context(request: HttpRequest) -> dict[str, Any]:
    """What the staff's part of the case list (``recovery/staff/_list_tools.html``) needs."""
    user = acting_user(request)
    # Counted with the very filters the links apply, so a count and its list always agree.
    queues = (
        ("assignee=me", gettext("Held by me"), selectors.CaseFilters(assignee="me")),
        ("assignee=none", gettext("Nobody holds"), selectors.CaseFilters(assignee="none")),
        ("unread=1", gettext("Unread messages"), selectors.CaseFilters(unread=True)),
        ("overdue=1", gettext("Overdue"), selectors.CaseFilters(overdue=True)),
    )
    quick = [(query, text, selectors.case_list(user=user, filters=f).count()) for query, text, f in queues]
    assignees = [("", gettext("Anyone")), ("me", gettext("Me")), ("none", gettext("Nobody"))]
    assignees += [(u.username, display_name(u)) for u in selectors.active_reviewers()]
    return {
        "staff_tools": {
            "assignee_choices": assignees,
            "assignee": request.GET.get("assignee", ""),
            "unread": request.GET.get("unread", "") in ("1", "on", "true", "yes"),
            "quick": quick,
            "inbox": is_desk(user),
        }
    }
