"""Where a case stands, in the merchant's five steps, and who must act next.

The source document walks a merchant through 确认 → 申请 → 补正/沟通 → 审核 → 核对; the progress
bar shows those five steps whatever the internal state, and one sentence says what is being
waited for, from whom, and by when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, may
from fapiao.audit.services import display_name
from fapiao.core.cases import CaseState
from fapiao.recovery import selectors
from fapiao.recovery.labels import state_label
from fapiao.recovery.models import Case
from fapiao.recovery.transitions import facts_of

# ``state_label`` is re-exported: the resolve page imports it from here.
__all__ = ["CURRENT_STEP", "STEPS", "Step", "Waiting", "state_label", "steps", "waiting_for"]

STEPS: tuple[Promise, ...] = (_("Confirm"), _("Apply"), _("Add information"), _("Review"), _("Check"))

S = CaseState
# state → (index of the current step, 0-based; whether the step is waiting on a problem)
CURRENT_STEP: dict[str, tuple[int, bool]] = {
    S.DRAFT: (1, False),
    S.SUBMITTED: (3, False),
    S.IN_REVIEW: (3, False),
    S.NEEDS_INFO: (2, True),
    S.AWAITING_SECOND: (3, False),
    S.APPROVED: (3, False),
    S.REJECTED: (3, True),
    S.RESOLVED: (4, False),
    S.CONFIRMED: (5, False),
    S.WITHDRAWN: (1, True),
}


@dataclass(frozen=True)
class Step:
    label: str
    status: str  # done, current, problem, todo, skipped


#: The step "add information" (补正/沟通): done only when someone asked and the merchant answered.
INFO_STEP = 2


def steps(case: Case) -> list[Step]:
    """The five steps, none marked done that wasn't: 补正/沟通 is *skipped* when nobody asked for
    more, and a withdrawn case marks nothing after the step it was withdrawn from as done."""
    current, problem = CURRENT_STEP.get(case.state, (1, False))
    asked = case.pk is not None and case.events.filter(action="request_info").exists()
    if case.state == CaseState.WITHDRAWN and case.pk is not None:
        before = case.events.filter(to_state=CaseState.WITHDRAWN).values_list("from_state", flat=True).first()
        current = CURRENT_STEP.get(before or CaseState.DRAFT, (1, False))[0]
    found = []
    for index, label in enumerate(STEPS):
        if index < current:
            status = "skipped" if index == INFO_STEP and not asked else "done"
        elif index == current:
            status = "problem" if problem else "current"
        else:
            status = "todo"
        found.append(Step(str(label), status))
    return found


@dataclass(frozen=True)
class Waiting:
    text: str
    on_you: bool
    due: datetime | None
    overdue: bool


def _staff_turn(case: Case, user: User | None) -> bool:
    """Is the staff side's next move this user's?  Only someone who can make it: the reviewer
    holding the case (or, when nobody holds it, any reviewer the four-eyes rule lets decide),
    support too while a new case waits to be taken up; never an auditor."""
    if user is None or not may(user, Action.MESSAGE_CASES) or user.is_merchant_user:
        return False
    state = CaseState(case.state)
    if state == S.SUBMITTED:
        return True
    if not may(user, Action.REVIEW_CASES):
        return False
    now = timezone.now()
    if case.assignee_id is not None and case.claim_expires_at is not None and case.claim_expires_at > now:
        return case.assignee_id == user.pk
    if user.pk in facts_of(case, now).involved():
        return False
    return not (state == S.AWAITING_SECOND and case.first_approver_id == user.pk)


def waiting_for(
    case: Case, *, merchant_view: bool, user: User | None = None, repairing: bool = False
) -> Waiting | None:
    """One sentence: what happens next and who must do it ("your turn" only for who can).
    ``repairing``: the case is about an invoice that differs from its ledger entry, not a lost one."""
    state = CaseState(case.state)
    holder = display_name(case.assignee) if case.assignee_id and case.assignee else ""
    merchant_turn = {
        S.DRAFT: gettext("Add your evidence and submit the application."),
        S.NEEDS_INFO: gettext("Support asked for more: add what is listed below, or answer with a message."),
        S.REJECTED: gettext("The application was rejected: edit it and submit it again, or withdraw it."),
        S.RESOLVED: gettext(
            "Check the invoice in My invoices, then confirm — or reopen the case if it is wrong."
        ),
    }
    staff_turn = {
        S.SUBMITTED: gettext("Waiting for support and a reviewer to take up the case."),
        S.IN_REVIEW: gettext("A reviewer is checking the case.")
        if not holder
        else gettext("{name} is reviewing the case.").format(name=holder),
        S.AWAITING_SECOND: gettext(
            "The first approval is given; a second reviewer, other than the first, must approve too."
        ),
        S.APPROVED: gettext("Approved: the reviewer is rewriting the invoice as its ledger entry says.")
        if repairing
        else gettext("Approved: the reviewer is restoring or re-issuing the invoice."),
    }
    if state in merchant_turn:
        text, on_you = merchant_turn[state], merchant_view
    elif state in staff_turn:
        text, on_you = staff_turn[state], not merchant_view and _staff_turn(case, user)
    else:
        return None
    return Waiting(
        text=text,
        on_you=on_you,
        due=selectors.due_at(case),
        overdue=selectors.is_overdue(case),
    )
