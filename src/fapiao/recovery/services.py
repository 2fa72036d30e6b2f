"""The merchant's side of a recovery case (spec/recovery.md): open, edit, submit, withdraw, confirm, reopen.

The conversation (messages, asking for more, the answer) is :mod:`fapiao.recovery.conversation`,
the reviewer's side (claim, assign, approve, reject) :mod:`fapiao.recovery.review`, evidence
:mod:`fapiao.recovery.evidence`, and the remedies (restore, re-issue)
:mod:`fapiao.recovery.remedies`; :mod:`fapiao.recovery.actions` is the one table of case actions
the API and the pages both call.  Each function is one transaction; every change of a case goes
through :func:`fapiao.recovery.transitions.transition`.  The case passed in comes from a scoped
selector, so a user never reaches another merchant's case.  Each first asks whether the role may
take the action at all (403 whatever the state), then the state machine whether it may now (409).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.core.case_claim import parse_claim
from fapiao.core.cases import CaseAction, CaseState
from fapiao.core.errors import ConflictError, _
from fapiao.core.text import free_text
from fapiao.platform import idempotency
from fapiao.recovery import notify
from fapiao.recovery.acceptance import next_acceptance_no
from fapiao.recovery.claim import apply_claim
from fapiao.recovery.conversation import answer, required_text
from fapiao.recovery.models import Case
from fapiao.recovery.reasons import REASON_MAX
from fapiao.recovery.transitions import Change, clear_decision, opened, transition

EDITABLE_STATES = frozenset({CaseState.DRAFT, CaseState.REJECTED, CaseState.NEEDS_INFO})


class CaseNotEditableError(ConflictError):
    """Only a draft, a rejected case or one awaiting your answer can be edited; this one is "{state}"."""

    code = "case_not_editable"


class ClaimWrittenError(ConflictError):
    """An invoice was already written from this claim; the claim can no longer change."""

    code = "claim_written"


def open_case(*, user: User, payload: object, idempotency_key: str | None = None) -> Case:
    """A draft case for the user's merchant, with its claim checked field by field.

    With an ``Idempotency-Key`` a retried request returns the draft the first one opened
    (the same key with a different claim is refused), so a clerk's double submit or a client's
    retry after a lost answer never leaves two drafts.
    """
    require(user, Action.OPEN_CASES)
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    claim = parse_claim(payload, today=timezone.localdate())
    now = timezone.now()
    with transaction.atomic():
        record_id = None
        if key is not None:
            claimed = idempotency.claim(
                user=user, key=key, fingerprint=idempotency.request_fingerprint("case:open", payload)
            )
            if isinstance(claimed, idempotency.Replay):
                return Case.objects.get(merchant=user.merchant, uid=claimed.body["case"])
            record_id = claimed
        case = Case(merchant=user.merchant, opened_by=user, opened_at=now, state_changed_at=now)
        apply_claim(case, claim)
        case.save()
        opened(case, actor=user, at=now)
        if record_id is not None:
            idempotency.remember(record_id=record_id, status=201, body={"case": str(case.uid)})
    return case


def update_claim(*, user: User, case: Case, payload: object, version: int | None) -> Case:
    """Edit the claim of a draft or rejected case, or complete it when asked (补正, needs_info).

    An amended claim is a new claim: approvals given to the old one no longer count, and a case
    waiting for the merchant goes back to review.  A case that already wrote its invoice keeps
    the claim that invoice was written from.
    """
    require(user, Action.OPEN_CASES)
    claim = parse_claim(payload, today=timezone.localdate())

    def editable(locked: Case) -> None:
        if locked.state not in EDITABLE_STATES:
            raise CaseNotEditableError(state=locked.state)
        if locked.resolved_invoice_id is not None:
            raise ClaimWrittenError()

    def apply(locked: Case, _target: CaseState, _now: datetime) -> None:
        apply_claim(locked, claim)
        clear_decision(locked)

    with transaction.atomic():
        step = transition(case, Change.EDIT, actor=user, version=version, check=editable, apply=apply)
        if step.case.state == CaseState.NEEDS_INFO:  # the completed claim is the answer (补正)
            return answer(user=user, case=step.case, note=_("Answered by completing the claim."))
    return step.case


def submit_case(*, user: User, case: Case, version: int | None) -> Case:
    """Submit a draft: it gets its 受理编号 and goes to support and the reviewers."""
    require(user, Action.OPEN_CASES)

    def apply(locked: Case, _target: CaseState, now: datetime) -> None:
        locked.acceptance_no = next_acceptance_no(now)
        locked.submitted_by = user
        locked.submitted_at = now

    with transaction.atomic():
        step = transition(case, CaseAction.SUBMIT, actor=user, version=version, apply=apply)
        notify.notify(step.case, "submit", notify.staff_people(step.case), actor=user)
    return step.case


def resubmit_case(*, user: User, case: Case, version: int | None) -> Case:
    """Submit a rejected case again after editing it; earlier approvals and claims no longer count."""
    require(user, Action.OPEN_CASES)

    def apply(locked: Case, _target: CaseState, now: datetime) -> None:
        locked.submitted_by = user
        locked.submitted_at = now
        clear_decision(locked)
        locked.assignee = None
        locked.claim_expires_at = None

    with transaction.atomic():
        step = transition(case, CaseAction.RESUBMIT, actor=user, version=version, apply=apply)
        notify.notify(step.case, "resubmit", notify.staff_people(step.case), actor=user)
    return step.case


def withdraw_case(*, user: User, case: Case, version: int | None, reason: object = "") -> Case:
    require(user, Action.OPEN_CASES)
    text = free_text(reason, "reason", max_len=REASON_MAX)

    def apply(locked: Case, _target: CaseState, now: datetime) -> None:
        locked.closed_at = now

    with transaction.atomic():
        step = transition(case, CaseAction.WITHDRAW, actor=user, version=version, reason=text, apply=apply)
        if step.before != CaseState.DRAFT:
            notify.notify(step.case, "withdraw", notify.staff_people(step.case), actor=user)
    return step.case


def confirm_case(*, user: User, case: Case, version: int | None) -> Case:
    """The merchant checked the restored or re-issued invoice: the case is closed."""
    require(user, Action.OPEN_CASES)

    def apply(locked: Case, _target: CaseState, now: datetime) -> None:
        locked.closed_at = now

    with transaction.atomic():
        step = transition(case, CaseAction.CONFIRM, actor=user, version=version, apply=apply)
        notify.notify(step.case, "confirm", notify.staff_people(step.case), actor=user)
    return step.case


def reopen_case(*, user: User, case: Case, version: int | None, reason: object) -> Case:
    """The result is wrong: back to review, within the reopen window, with the reason."""
    require(user, Action.OPEN_CASES)
    text = required_text(reason, "reason", REASON_MAX)

    def apply(locked: Case, _target: CaseState, _now: datetime) -> None:
        clear_decision(locked)  # a new decision follows: the earlier approvals must not count

    with transaction.atomic():
        step = transition(case, CaseAction.REOPEN, actor=user, version=version, reason=text, apply=apply)
        notify.notify(step.case, "reopen", notify.staff_people(step.case), actor=user)
    return step.case
