"""The recovery case (补救申请) state machine of docs/spec/recovery.md, as pure data plus one function.

``TABLE`` maps ``(state, action)`` to the state the action leads to and the role values that
may take it.  Role values are plain strings (the values of ``fapiao.accounts.choices.Role``) so
this module stays free of Django.  :func:`decide` adds the rules a table can't hold:

- **closed cases**: nothing may be done to a confirmed or withdrawn case;
- **four eyes**: a reviewer may not approve, reject or resolve a case they opened, submitted or
  messaged on the merchant's behalf;
- **second reviewer**: approving an ``in_review`` case whose amount is *strictly above*
  ``second_review_above_fen`` leads to ``awaiting_second``; an amount equal to the threshold
  needs no second review.  The approval in ``awaiting_second`` must come from another reviewer
  than the first approver;
- **reopen window**: a resolved case may be reopened only while ``now`` is strictly before
  ``reopen_deadline``; with no deadline the window is closed.

The order of the checks is fixed, so the reason given is predictable: closed case, impossible
action, role, four eyes, second reviewer, reopen window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from fapiao.core.errors import ConflictError, PermissionDeniedError


class CaseState(StrEnum):
    DRAFT = "draft"  # 草稿
    SUBMITTED = "submitted"  # 已提交
    IN_REVIEW = "in_review"  # 审核中
    NEEDS_INFO = "needs_info"  # 待补充材料
    AWAITING_SECOND = "awaiting_second"  # 待复核
    APPROVED = "approved"  # 已批准
    REJECTED = "rejected"  # 已驳回
    RESOLVED = "resolved"  # 已处理
    CONFIRMED = "confirmed"  # 已确认（结案）
    WITHDRAWN = "withdrawn"  # 已撤回


class CaseAction(StrEnum):
    SUBMIT = "submit"  # merchant submits a draft
    REQUEST_INFO = "request_info"  # support or reviewer asks for more: in_review → needs_info
    ANSWER = "answer"  # merchant adds evidence or a message: needs_info → in_review
    CLAIM = "claim"  # a reviewer takes a case: submitted → in_review; later states stay as they are
    APPROVE = "approve"
    REJECT = "reject"
    RESUBMIT = "resubmit"  # merchant edits a rejected case and submits it again
    RESOLVE = "resolve"  # reviewer restores or re-issues the invoice
    CONFIRM = "confirm"  # merchant closes the case
    REOPEN = "reopen"  # merchant reopens a resolved case within the window
    WITHDRAW = "withdraw"


#: Case states from which no action is possible.
CLOSED_STATES: Final = frozenset({CaseState.CONFIRMED, CaseState.WITHDRAWN})

# Role values (``fapiao.accounts.choices.Role``), spelled out to keep the core free of Django.
CLERK: Final = "clerk"
MERCHANT_ADMIN: Final = "merchant_admin"
SUPPORT: Final = "support"
REVIEWER: Final = "reviewer"

MERCHANT: Final = frozenset({CLERK, MERCHANT_ADMIN})
REVIEWERS: Final = frozenset({REVIEWER})
ASKERS: Final = frozenset({SUPPORT, REVIEWER})

#: Actions subject to the four-eyes rule.
DECISIONS: Final = frozenset({CaseAction.APPROVE, CaseAction.REJECT, CaseAction.RESOLVE})


@dataclass(frozen=True)
class Transition:
    target: CaseState
    roles: frozenset[str]


S, A = CaseState, CaseAction

#: (state, action) → where it leads and who may take it.  ``approve`` in ``in_review`` lists
#: ``approved``; :func:`decide` turns it into ``awaiting_second`` above the threshold.
TABLE: Final[dict[tuple[CaseState, CaseAction], Transition]] = {
    (S.DRAFT, A.SUBMIT): Transition(S.SUBMITTED, MERCHANT),
    (S.DRAFT, A.WITHDRAW): Transition(S.WITHDRAWN, MERCHANT),
    (S.SUBMITTED, A.CLAIM): Transition(S.IN_REVIEW, REVIEWERS),
    (S.SUBMITTED, A.WITHDRAW): Transition(S.WITHDRAWN, MERCHANT),
    # Support often sees a new case first and asks for what is missing before a reviewer claims it.
    (S.SUBMITTED, A.REQUEST_INFO): Transition(S.NEEDS_INFO, ASKERS),
    # Claiming a case that is already under review only takes it over (an expired or released claim).
    (S.IN_REVIEW, A.CLAIM): Transition(S.IN_REVIEW, REVIEWERS),
    (S.NEEDS_INFO, A.CLAIM): Transition(S.NEEDS_INFO, REVIEWERS),
    (S.AWAITING_SECOND, A.CLAIM): Transition(S.AWAITING_SECOND, REVIEWERS),
    (S.APPROVED, A.CLAIM): Transition(S.APPROVED, REVIEWERS),
    (S.IN_REVIEW, A.REQUEST_INFO): Transition(S.NEEDS_INFO, ASKERS),
    (S.IN_REVIEW, A.APPROVE): Transition(S.APPROVED, REVIEWERS),
    (S.IN_REVIEW, A.REJECT): Transition(S.REJECTED, REVIEWERS),
    (S.IN_REVIEW, A.WITHDRAW): Transition(S.WITHDRAWN, MERCHANT),
    # The merchant answers; support too, when the answer came by e-mail or by post (on their behalf).
    (S.NEEDS_INFO, A.ANSWER): Transition(S.IN_REVIEW, MERCHANT | {SUPPORT}),
    (S.NEEDS_INFO, A.WITHDRAW): Transition(S.WITHDRAWN, MERCHANT),
    (S.AWAITING_SECOND, A.APPROVE): Transition(S.APPROVED, REVIEWERS),
    (S.AWAITING_SECOND, A.REJECT): Transition(S.REJECTED, REVIEWERS),
    (S.REJECTED, A.RESUBMIT): Transition(S.SUBMITTED, MERCHANT),
    (S.APPROVED, A.RESOLVE): Transition(S.RESOLVED, REVIEWERS),
    # The claim lacks what the remedy must write: the merchant completes it (补正), and the
    # completed claim is reviewed again (the approvals lapse).
    (S.APPROVED, A.REQUEST_INFO): Transition(S.NEEDS_INFO, ASKERS),
    (S.RESOLVED, A.CONFIRM): Transition(S.CONFIRMED, MERCHANT),
    (S.RESOLVED, A.REOPEN): Transition(S.IN_REVIEW, MERCHANT),
}

del S, A


@dataclass(frozen=True)
class CaseFacts:
    """What :func:`decide` needs to know about a case beyond its state."""

    opened_by: int | None
    submitted_by: int | None
    now: datetime
    messaged_on_behalf_by: frozenset[int] = field(default_factory=frozenset)
    first_approver: int | None = None
    amount_fen: int = 0
    reopen_deadline: datetime | None = None

    def involved(self) -> frozenset[int]:
        """Users who acted for the merchant on this case (the four-eyes exclusion set)."""
        ids = {self.opened_by, self.submitted_by, *self.messaged_on_behalf_by}
        return frozenset(i for i in ids if i is not None)


class CaseActionNotAllowedError(ConflictError):
    """The action "{action}" is not possible while the case is "{state}"."""

    code = "case_action_not_allowed"


class CaseClosedError(ConflictError):
    """The case is closed ("{state}"); nothing more can be done to it."""

    code = "case_closed"


class ReopenWindowClosedError(ConflictError):
    """The time to reopen this case has passed."""

    code = "reopen_window_closed"


class CaseRoleForbiddenError(PermissionDeniedError):
    """Your role may not "{action}" a case that is "{state}"."""

    code = "case_role_forbidden"


class FourEyesError(PermissionDeniedError):
    """You may not decide a case you opened, submitted or messaged on the merchant's behalf."""

    code = "four_eyes"


class SecondReviewerMustDifferError(PermissionDeniedError):
    """The second approval must come from a different reviewer."""

    code = "second_reviewer_must_differ"


def decide(
    state: CaseState,
    action: CaseAction,
    *,
    role: str,
    actor_id: int,
    facts: CaseFacts,
    second_review_above_fen: int | None,
) -> CaseState:
    """The state ``action`` by ``actor_id`` (in ``role``) leads to, or a specific refusal.

    ``second_review_above_fen`` of ``None`` turns the second review off.
    """
    state, action = CaseState(state), CaseAction(action)
    if state in CLOSED_STATES:
        raise CaseClosedError(state=state.value, action=action.value)
    transition = TABLE.get((state, action))
    if transition is None:
        raise CaseActionNotAllowedError(state=state.value, action=action.value)
    if str(role) not in transition.roles:
        raise CaseRoleForbiddenError(state=state.value, action=action.value, role=str(role))
    if action in DECISIONS and actor_id in facts.involved():
        raise FourEyesError()
    if action is CaseAction.APPROVE:
        if state is CaseState.AWAITING_SECOND:
            if actor_id == facts.first_approver:
                raise SecondReviewerMustDifferError()
        elif second_review_above_fen is not None and facts.amount_fen > second_review_above_fen:
            return CaseState.AWAITING_SECOND
    if action is CaseAction.REOPEN and (
        facts.reopen_deadline is None or not facts.now < facts.reopen_deadline
    ):
        raise ReopenWindowClosedError()
    return transition.target
