"""The one table of case actions: ``POST /api/v1/cases/{id}/<action>`` and the case page's buttons.

Both read what the caller sent (JSON on the API, a form on the page) into an :class:`ActionInput`
and call :func:`run`; the table says which service each action is and which of the inputs it
takes, so an action behaves the same whichever way it came.  Restoring or re-issuing an
invoice (``resolve``) is not here: it answers with the invoice and its receipt, not the case
(:func:`fapiao.recovery.remedies.resolve_case`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fapiao.accounts.models import User
from fapiao.core.errors import InvalidValueError, ValidationFailed, _
from fapiao.recovery import conversation, review, selectors, services
from fapiao.recovery.models import Case


@dataclass(frozen=True)
class ActionInput:
    """What came with an action, as sent: each service checks its own (and says what is wrong)."""

    version: int | None = None
    reason: object = None
    reason_template: object = None
    body: object = None
    items: object = None
    assignee: object = None


def _assign(user: User, case: Case, given: ActionInput) -> Case:
    if not isinstance(given.assignee, str):
        raise ValidationFailed([InvalidValueError(_("Enter text here."), code="not_a_string").at("assignee")])
    assignee = selectors.user_by_username(given.assignee)
    if assignee is None:
        raise ValidationFailed([review.AssigneeNotReviewerError().at("assignee")])
    return review.assign_case(user=user, case=case, assignee=assignee)


Action = Callable[[User, Case, ActionInput], Case]
ACTIONS: dict[str, Action] = {
    "submit": lambda user, case, given: services.submit_case(user=user, case=case, version=given.version),
    "resubmit": lambda user, case, given: services.resubmit_case(user=user, case=case, version=given.version),
    "withdraw": lambda user, case, given: services.withdraw_case(
        user=user, case=case, version=given.version, reason=given.reason
    ),
    "confirm": lambda user, case, given: services.confirm_case(user=user, case=case, version=given.version),
    "reopen": lambda user, case, given: services.reopen_case(
        user=user,
        case=case,
        version=given.version,
        reason=given.reason,
    ),
    "claim": lambda user, case, given: review.claim_case(user=user, case=case, version=given.version),
    "release": lambda user, case, given: review.release_case(user=user, case=case),
    "request-info": lambda user, case, given: conversation.request_info(
        user=user, case=case, version=given.version, body=given.body, items=given.items
    ),
    "approve": lambda user, case, given: review.approve_case(
        user=user,
        case=case,
        version=given.version,
        reason=given.reason,
        template=given.reason_template,
    ),
    "reject": lambda user, case, given: review.reject_case(
        user=user,
        case=case,
        version=given.version,
        reason=given.reason,
        template=given.reason_template,
    ),
    "return-to-review": lambda user, case, given: review.return_to_review(
        user=user, case=case, version=given.version, reason=given.reason
    ),
    "assign": _assign,
}


def run(action: str, *, user: User, case: Case, given: ActionInput) -> Case:
    """Take ``action`` (a key of :data:`ACTIONS`) on ``case``: the case as it is now."""
    return ACTIONS[action](user, case, given)
