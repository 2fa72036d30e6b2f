"""The reviewer's side of a case: claim, release, assign, approve, reject, return to review.

A reviewer *claims* a case before deciding it; the claim lasts ``FAPIAO_CASE_CLAIM_MINUTES`` and
keeps other reviewers from deciding it meanwhile (a lead may reassign it).  Approving above
``FAPIAO_SECOND_REVIEW_ABOVE_FEN`` hands the case to a second, different reviewer.  The
four-eyes rule (nobody decides a case they opened, submitted or spoke for the merchant on) is
the core's (:func:`fapiao.core.cases.decide`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from fapiao.accounts.choices import Role
from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.audit.services import display_name
from fapiao.core.cases import CLOSED_STATES, CaseAction, CaseState
from fapiao.core.errors import (
    ConflictError,
    FieldError,
    InvalidValueError,
    PermissionDeniedError,
    ValidationFailed,
    _,
)
from fapiao.core.text import free_text
from fapiao.recovery import notify
from fapiao.recovery.models import Case
from fapiao.recovery.reasons import APPROVE_REASONS, REASON_MAX, REJECT_REASONS
from fapiao.recovery.transitions import Change, clear_decision, transition


class ClaimHeldError(ConflictError):
    """{holder} is working on this case until {until}; ask a lead reviewer to reassign it."""

    code = "claim_held"


class NotLeadError(PermissionDeniedError):
    """Only a lead reviewer may assign cases."""

    code = "not_lead"


class AssigneeNotReviewerError(InvalidValueError):
    """Cases can only be assigned to an active reviewer."""

    code = "assignee_not_reviewer"


class NotClaimHolderError(ConflictError):
    """You don't hold this case's claim."""

    code = "not_claim_holder"


def claim_minutes() -> timedelta:
    return timedelta(minutes=settings.FAPIAO_CASE_CLAIM_MINUTES)


def held_by_other(case: Case, user: User, now: datetime) -> bool:
    return (
        case.assignee_id is not None
        and case.assignee_id != user.pk
        and case.claim_expires_at is not None
        and case.claim_expires_at > now
    )


def claim_check(user: User):  # type: ignore[no-untyped-def]
    def check(locked: Case) -> None:
        now = timezone.now()
        if held_by_other(locked, user, now):
            holder = display_name(locked.assignee) if locked.assignee else ""
            until = timezone.localtime(locked.claim_expires_at).strftime("%H:%M")
            raise ClaimHeldError(holder=holder, until=until)

    return check


def _take(user: User):  # type: ignore[no-untyped-def]
    def apply(locked: Case, _target: CaseState, now: datetime) -> None:
        locked.assignee = user
        locked.claim_expires_at = now + claim_minutes()

    return apply


def claim_case(*, user: User, case: Case, version: int | None) -> Case:
    require(user, Action.REVIEW_CASES)
    with transaction.atomic():
        step = transition(
            case, CaseAction.CLAIM, actor=user, version=version, check=claim_check(user), apply=_take(user)
        )
        if step.before == CaseState.SUBMITTED:
            notify.notify(step.case, "claim", notify.merchant_people(step.case), actor=user)
    return step.case


def release_case(*, user: User, case: Case) -> Case:
    """Give the claim back so another reviewer can take the case."""
    require(user, Action.REVIEW_CASES)

    def holder(locked: Case) -> None:
        if locked.assignee_id != user.pk and not user.is_lead:
            raise NotClaimHolderError()

    def apply(locked: Case, _target: CaseState, _now: datetime) -> None:
        locked.assignee = None
        locked.claim_expires_at = None

    with transaction.atomic():
        step = transition(case, Change.RELEASE, actor=user, version=None, check=holder, apply=apply)
    return step.case


def assign_case(*, user: User, case: Case, assignee: User) -> Case:
    """A lead reviewer gives the case to a reviewer (replacing any claim)."""
    require(user, Action.ASSIGN_CASES)
    if not user.is_lead:
        raise NotLeadError()
    if assignee.role != Role.REVIEWER or not assignee.is_active:
        raise ValidationFailed([AssigneeNotReviewerError().at("assignee")])

    def assignable(locked: Case) -> None:
        if locked.state in CLOSED_STATES or locked.state == CaseState.DRAFT:
            raise ConflictError(_("A case that is {state} can't be assigned."), state=locked.state)

    with transaction.atomic():
        step = transition(
            case,
            Change.ASSIGN,
            actor=user,
            version=None,
            check=assignable,
            apply=_take(assignee),
            details={"assignee": assignee.username},
        )
        notify.notify(step.case, "assign", [assignee], actor=user)
    return step.case


def decision_reason(reason: object, template: object, templates: dict[str, str], *, required: bool) -> str:
    """A written reason, or the template's text — in the site's language (zh-Hans), which is the
    language of the record the merchant reads — followed by what the reviewer wrote.  Both are
    checked before anything else: a reason is text (never a number, list or object, never control
    characters but tab and line breaks), a template one of ``templates``."""
    errors: list[FieldError] = []
    text = ""
    try:
        text = free_text(reason, "reason", max_len=REASON_MAX)
    except ValidationFailed as failed:
        errors.extend(failed.errors)
    code = template if isinstance(template, str) else None
    if template not in (None, "") and code not in templates:
        errors.append(
            InvalidValueError(
                _("Choose one of: {choices}."), code="invalid_choice", choices=", ".join(templates)
            ).at("reason_template")
        )
    if errors:
        raise ValidationFailed(errors)
    if code:
        with translation.override(settings.LANGUAGE_CODE):
            chosen = gettext(templates[code])
        text = f"{chosen} {text}".strip()
    if required and not text:
        raise ValidationFailed([InvalidValueError(_("Give a reason."), code="required").at("reason")])
    if len(text) > REASON_MAX:
        raise ValidationFailed(
            [
                InvalidValueError(_("Use at most {max} characters."), code="too_long", max=REASON_MAX).at(
                    "reason"
                )
            ]
        )
    return text


def approve_case(
    *, user: User, case: Case, version: int | None, reason: object = None, template: object = None
) -> Case:
    require(user, Action.REVIEW_CASES)
    text = decision_reason(reason, template, APPROVE_REASONS, required=False)
    take = _take(user)

    def apply(locked: Case, target: CaseState, now: datetime) -> None:
        if target == CaseState.AWAITING_SECOND:
            locked.first_approver = user
            locked.assignee = None  # free for the second reviewer
            locked.claim_expires_at = None
        else:
            if locked.first_approver_id is None:
                locked.first_approver = user
            else:
                locked.second_approver = user
            take(locked, target, now)
        locked.decision_reason = text

    with transaction.atomic():
        step = transition(
            case,
            CaseAction.APPROVE,
            actor=user,
            version=version,
            reason=text,
            check=claim_check(user),
            apply=apply,
        )
        if step.case.state == CaseState.AWAITING_SECOND:
            notify.notify(step.case, "awaiting_second", notify.reviewers(), actor=user)
        else:
            notify.notify(step.case, "approve", notify.merchant_people(step.case), actor=user)
    return step.case


def reject_case(
    *, user: User, case: Case, version: int | None, reason: object = None, template: object = None
) -> Case:
    require(user, Action.REVIEW_CASES)
    text = decision_reason(reason, template, REJECT_REASONS, required=True)

    def apply(locked: Case, _target: CaseState, _now: datetime) -> None:
        locked.decision_reason = text

    with transaction.atomic():
        step = transition(
            case,
            CaseAction.REJECT,
            actor=user,
            version=version,
            reason=text,
            check=claim_check(user),
            apply=apply,
        )
        notify.notify(step.case, "reject", notify.merchant_people(step.case), actor=user, reason=text)
    return step.case


def return_to_review(*, user: User, case: Case, version: int | None, reason: object = None) -> Case:
    """An approved case whose remedy turns out impossible goes back to review, with the reason.

    Its approvals lapse (a fresh review, and a second approval where the amount needs one); the
    reviewer keeps the case.  The other way out of such a case is :func:`reject_case`.
    """
    require(user, Action.REVIEW_CASES)
    text = decision_reason(reason, None, {}, required=True)
    take = _take(user)

    def apply(locked: Case, target: CaseState, now: datetime) -> None:
        clear_decision(locked)
        take(locked, target, now)

    with transaction.atomic():
        step = transition(
            case,
            CaseAction.RETURN_TO_REVIEW,
            actor=user,
            version=version,
            reason=text,
            check=claim_check(user),
            apply=apply,
        )
        notify.notify(
            step.case, "return_to_review", notify.merchant_people(step.case), actor=user, reason=text
        )
    return step.case
