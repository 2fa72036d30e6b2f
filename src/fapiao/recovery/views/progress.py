"""Where a case stands, in the merchant's five steps, and who must act next.

The source document walks a merchant through 确认 → 申请 → 补正/沟通 → 审核 → 核对; the progress
bar shows those five steps whatever the internal state, and one sentence says what is being
waited for, from whom, and by when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from fapiao.audit.services import display_name
from fapiao.core.cases import CaseState
from fapiao.recovery import selectors
from fapiao.recovery.labels import state_label
from fapiao.recovery.models import Case

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
    status: str  # done, current, problem, todo


def steps(case: Case) -> list[Step]:
    current, problem = CURRENT_STEP.get(case.state, (1, False))
    found = []
    for index, label in enumerate(STEPS):
        if index < current:
            status = "done"
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


def waiting_for(case: Case, *, merchant_view: bool) -> Waiting | None:
    """One sentence: what happens next and who must do it."""
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
        S.AWAITING_SECOND: gettext("Waiting for a second reviewer's approval."),
        S.APPROVED: gettext("Approved: the reviewer is restoring or re-issuing the invoice."),
    }
    if state in merchant_turn:
        text, on_merchant = merchant_turn[state], True
    elif state in staff_turn:
        text, on_merchant = staff_turn[state], False
    else:
        return None
    return Waiting(
        text=text,
        on_you=on_merchant == merchant_view,
        due=selectors.due_at(case),
        overdue=selectors.is_overdue(case),
    )
