"""Cases as the API shows them (and the pages reuse): claim, files, messages, timeline, next steps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, may
from fapiao.audit.services import display_name
from fapiao.core.cases import TABLE, CaseAction, CaseState
from fapiao.core.money import format_money
from fapiao.invoices.presenters import summary_representation
from fapiao.invoices.sensitive import masked_buyer
from fapiao.recovery import case_replay, selectors
from fapiao.recovery.checks import check_message
from fapiao.recovery.models import Case, CaseEvent, CaseMessage, Evidence
from fapiao.recovery.remedies import never_issued
from fapiao.recovery.review import held_by_other


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _money(fen: int | None) -> str | None:
    return format_money(fen) if fen is not None else None


def claim_representation(case: Case) -> dict[str, Any]:
    return {
        "number": case.claimed_number,
        "issued_on": case.claimed_issued_on.isoformat(),
        "kind": case.claimed_kind or None,
        "buyer": {
            "name": case.claimed_buyer_name,
            "tax_id": case.claimed_buyer_tax_id or case.claimed_buyer_tax_id_masked or None,
        },
        "total_with_tax": _money(case.claimed_total_with_tax),
        "total_amount": _money(case.claimed_total_amount),
        "total_tax": _money(case.claimed_total_tax),
        "tax_rate": case.claimed_tax_rate or None,
        "lines": list(case.claimed_lines or []),
        "narrative": case.narrative,
    }


def written_beside_claimed(case: Case) -> list[dict[str, Any]]:
    """What the remedy wrote beside what was claimed, field by field, for the merchant's check.

    ``same`` is None where the claim did not say, and where a re-issue differs by design (its
    own number and date).
    """
    invoice = case.resolved_invoice
    if invoice is None:
        return []
    claim = claim_representation(case)
    reissued = case.remedy == "reissue"
    rows = [
        ("number", claim["number"], invoice.number, not reissued),
        ("issued_on", claim["issued_on"], invoice.issued_on.isoformat(), not reissued),
        ("kind", claim["kind"], invoice.kind, True),
        ("buyer", claim["buyer"]["name"], invoice.buyer_name, True),
        ("buyer_tax_id", claim["buyer"]["tax_id"], masked_buyer(invoice)["tax_id"], True),
        ("total_amount", claim["total_amount"], _money(invoice.total_amount), True),
        ("total_tax", claim["total_tax"], _money(invoice.total_tax), True),
        ("total_with_tax", claim["total_with_tax"], _money(invoice.total_with_tax), True),
    ]
    return [
        {
            "field": field,
            "claimed": claimed,
            "written": written,
            "same": (claimed == written) if compared and claimed is not None else None,
        }
        for field, claimed, written, compared in rows
    ]


def written_rows(case: Case) -> list[dict[str, Any]]:
    """:func:`written_beside_claimed` for the case page: both values in order, money marked."""
    return [
        {**row, "values": (row["claimed"], row["written"]), "money": row["field"].startswith("total_")}
        for row in written_beside_claimed(case)
    ]


def evidence_representation(evidence: Evidence) -> dict[str, Any]:
    return {
        "id": str(evidence.uid),
        "type": evidence.evidence_type,
        "filename": evidence.filename,
        "content_kind": evidence.content_kind,
        "size": evidence.size,
        "sha256": evidence.sha256,
        "channel": evidence.channel,
        "on_behalf": evidence.on_behalf,
        "uploaded_at": _time(evidence.uploaded_at),
        "check": {"status": evidence.check_status, "message": check_message(evidence) or None},
    }


def message_representation(message: CaseMessage) -> dict[str, Any]:
    return {
        "id": message.pk,
        "author": display_name(message.author),
        "author_role": message.author_role,
        "body": message.body,
        "requested_items": message.requested_items,
        "on_behalf": message.on_behalf,
        "at": _time(message.created_at),
    }


def event_representation(event: CaseEvent) -> dict[str, Any]:
    return {
        "action": event.action,
        "from": event.from_state or None,
        "to": event.to_state or None,
        "actor": event.actor_name,
        "actor_role": event.actor_role,
        "reason": event.reason or None,
        "at": _time(event.at),
    }


# API actions beside the core's: who may try them (the service has the last word).
_EXTRA = {
    "evidence": Action.ADD_EVIDENCE,
    "messages": Action.MESSAGE_CASES,
}
_ACTION_NAMES = {action: action.value.replace("_", "-") for action in CaseAction}


def next_actions(case: Case, user: User) -> list[str]:
    """The actions this user could take now, by the state machine's table (a hint for clients)."""
    state = CaseState(case.state)
    found = [
        _ACTION_NAMES[action]
        for (from_state, action), transition in TABLE.items()
        if from_state == state
        and user.role in transition.roles
        and action not in (CaseAction.ANSWER, CaseAction.REGISTER)  # an answer is a message; register opens
    ]
    if state not in (CaseState.DRAFT, CaseState.CONFIRMED, CaseState.WITHDRAWN):
        found += [name for name, permission in _EXTRA.items() if may(user, permission)]
    elif state == CaseState.DRAFT and user.is_merchant_user:
        found.append("evidence")
    if held_by_other(case, user, timezone.now()):
        found = [name for name in found if name not in ("approve", "reject", "resolve", "claim")]
    return sorted(set(found))


def case_summary(case: Case) -> dict[str, Any]:
    due = selectors.due_at(case)
    return {
        "case_id": str(case.uid),
        "acceptance_no": case.acceptance_no or None,
        "merchant": {"uscc": case.merchant.uscc, "name": case.merchant.name},
        "state": case.state,
        "version": case.version,
        "claimed_number": case.claimed_number,
        "claimed_total_with_tax": _money(case.claimed_total_with_tax),
        "assignee": case.assignee.username if case.assignee_id and case.assignee else None,
        "submitted_at": _time(case.submitted_at),
        "state_changed_at": _time(case.state_changed_at),
        "due_at": _time(due),
        "overdue": selectors.is_overdue(case),
    }


def case_representation(case: Case, *, user: User) -> dict[str, Any]:
    body = {
        **case_summary(case),
        "channel": case.channel,
        "claim": claim_representation(case),
        "opened_at": _time(case.opened_at),
        "claim_expires_at": _time(case.claim_expires_at),
        "first_approver": case.first_approver.username if case.first_approver else None,
        "second_approver": case.second_approver.username if case.second_approver else None,
        "decision_reason": case.decision_reason or None,
        "remedy": case.remedy or None,
        "resolved_invoice": case.resolved_invoice.number if case.resolved_invoice else None,
        "resolved_at": _time(case.resolved_at),
        "written": written_beside_claimed(case),
        "reopen_deadline": _time(case.reopen_deadline),
        "evidence": [evidence_representation(e) for e in case.evidence.order_by("uploaded_at", "pk")],
        "messages": [
            message_representation(m)
            for m in case.messages.select_related("author").order_by("created_at", "pk")
        ],
        "timeline": [event_representation(e) for e in case.events.order_by("at", "pk")],
        "actions": next_actions(case, user),
    }
    if may(user, Action.REVIEW_CASES) or (may(user, Action.MESSAGE_CASES) and not user.is_merchant_user):
        body["system_view"] = {
            "ledger_history": [
                {**entry, "at": _time(entry["at"])} for entry in selectors.ledger_history(case)
            ],
            "similar_invoices": [summary_representation(i) for i in selectors.similar_invoices(case)],
            # The automatic check of the number: no segment ever handed it out (restore impossible).
            "number_never_issued": never_issued(case),
            # A receipt of the case proves an entry a restore lost: remedy "replay" is offered.
            "replayable": case_replay.offered(case),
        }
    return body
