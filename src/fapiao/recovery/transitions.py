"""The one way a case changes: lock, check the version, ask the core, record, notify.

Every change of a case goes through :func:`transition`: the moves of the state machine
(submit, claim, approve, …: :class:`fapiao.core.cases.CaseAction`) and the changes beside it
that leave the state as it is (an edit of the claim, a release or an assignment, and the
additions — a message, a file, an imported delivery, a reminder: :class:`Change`).  It locks the
case row (``SELECT … FOR UPDATE``), refuses a stale ``version``, asks
:func:`fapiao.core.cases.decide` whether this actor may take this action now, and then in the
same transaction bumps the version, writes the timeline event and the audit record.  Two
reviewers approving at the same moment: one wins, the other gets a specific refusal (stale
version, or the action no longer possible), never a double decision.  A new case's first event
and audit record are written by :func:`opened`, beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.audit.services import display_name, record
from fapiao.core.cases import CaseAction, CaseFacts, CaseState, decide
from fapiao.core.errors import ConflictError, NotFoundError
from fapiao.recovery.models import Case, CaseEvent, CaseMessage, Evidence


class CaseNotFoundError(NotFoundError):
    """No such case."""

    code = "case_not_found"


class StaleCaseError(ConflictError):
    """The case changed since you loaded it (now version {current}); reload it and try again."""

    code = "stale_version"


class Change(StrEnum):
    """The changes of a case beside the state machine's moves: the state stays as it is."""

    EDIT = "edit"  # the claim of a draft or a rejected case
    RELEASE = "release"  # a reviewer gives the claim back
    ASSIGN = "assign"  # a lead reviewer gives the case to a reviewer
    MESSAGE = "message"
    EVIDENCE = "evidence"
    EMAIL = "email"  # an imported e-mail
    MAIL_IN = "mail_in"  # scans of papers the merchant posted
    REMIND = "remind"  # an overdue case's reminder


#: Additions to a case (a message, a file, a delivery, a reminder) leave its fields as they were,
#: so its ``version`` stays too: a reviewer who loaded the case may still decide it.  Their audit
#: record holds the ``details`` rather than the case before and after.
ADDITIONS = frozenset({Change.MESSAGE, Change.EVIDENCE, Change.EMAIL, Change.MAIL_IN, Change.REMIND})


def second_review_threshold() -> int | None:
    value = settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN
    return None if value < 0 else int(value)


def lock(case: Case, version: int | None) -> Case:
    """The case row, locked for this transaction; ``version`` (when given) must be current."""
    locked = Case.objects.select_for_update().filter(pk=case.pk).first()
    if locked is None:
        raise CaseNotFoundError()
    if version is not None and locked.version != version:
        raise StaleCaseError(current=locked.version)
    return locked


def facts_of(case: Case, now: datetime) -> CaseFacts:
    on_behalf = set(
        CaseMessage.objects.filter(case=case, on_behalf=True).values_list("author_id", flat=True)
    ) | set(Evidence.objects.filter(case=case, on_behalf=True).values_list("uploaded_by_id", flat=True))
    return CaseFacts(
        opened_by=case.opened_by_id,
        submitted_by=case.submitted_by_id,
        now=now,
        messaged_on_behalf_by=frozenset(on_behalf),
        first_approver=case.first_approver_id,
        amount_fen=abs(case.claimed_total_with_tax),  # a red invoice's is negative; its size counts
        reopen_deadline=case.reopen_deadline,
    )


def clear_decision(case: Case) -> None:
    """Approvals and the reason given count for the claim they were given on, and no other (an
    ``apply`` step of a transition that leaves the decided claim: resubmit, reopen, an amended or
    incomplete claim)."""
    case.first_approver = case.second_approver = None
    case.decision_reason = ""


def snapshot(case: Case) -> dict[str, Any]:
    """The case as the audit trail records it (no buyer tax ID)."""
    return {
        "acceptance_no": case.acceptance_no,
        "state": case.state,
        "version": case.version,
        "claimed_number": case.claimed_number,
        "claimed_total_with_tax": case.claimed_total_with_tax,
        "assignee": case.assignee_id,
        "remedy": case.remedy,
        "resolved_invoice": case.resolved_invoice.number if case.resolved_invoice else None,
    }


@dataclass
class Step:
    """What a transition did: the case after it and the state it came from."""

    case: Case
    before: CaseState
    now: datetime


def add_event(
    case: Case,
    *,
    actor: User,
    action: str,
    before: str = "",
    after: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> CaseEvent:
    return CaseEvent.objects.create(
        merchant_id=case.merchant_id,
        case=case,
        action=action,
        from_state=before,
        to_state=after,
        actor=actor,
        actor_name=display_name(actor)[:150],
        actor_role=actor.role,
        reason=reason,
        details=details or {},
        at=at or timezone.now(),
    )


def _target(case: Case, action: CaseAction | Change, actor: User, now: datetime) -> CaseState:
    """Where ``action`` takes the case: the core's decision for a move, the same state for a change."""
    state = CaseState(case.state)
    if isinstance(action, Change):
        return state
    return decide(
        state,
        action,
        role=actor.role,
        actor_id=actor.pk,
        facts=facts_of(case, now),
        second_review_above_fen=second_review_threshold(),
    )


def transition(
    case: Case,
    action: CaseAction | Change,
    *,
    actor: User,
    version: int | None,
    reason: str = "",
    details: dict[str, Any] | None = None,
    apply: Callable[[Case, CaseState, datetime], None] | None = None,
    check: Callable[[Case], None] | None = None,
    note: Callable[[], str] | None = None,
    at: datetime | None = None,
) -> Step:
    """Take ``action`` on ``case`` (inside the caller's transaction).

    ``check`` runs on the locked row before the core decides (e.g. the claim rule, or whether
    the case takes files now); ``apply`` sets the fields the action changes besides the state,
    or writes what an addition adds.  ``details`` go on the timeline event; they are read after
    ``apply``, which may fill them in (what a file's check found).  ``note`` gives the audit
    record's note once ``apply`` ran (default: the reason); ``at`` is the time of the change
    (default: now).
    """
    now = at or timezone.now()
    locked = lock(case, version)
    if check is not None:
        check(locked)
    before_state = CaseState(locked.state)
    addition = action in ADDITIONS
    before = None if addition else snapshot(locked)
    target = _target(locked, action, actor, now)
    if not addition:
        locked.state = target
        if target != before_state:
            locked.state_changed_at = now
        locked.version += 1
    if apply is not None:
        apply(locked, target, now)
    if not addition:
        locked.save()
    add_event(
        locked,
        actor=actor,
        action=action.value,
        before=before_state.value,
        after=target.value,
        reason=reason,
        details=details,
        at=now,
    )
    record(
        actor=actor,
        action=f"case.{action.value}",
        target=locked,
        merchant=locked.merchant,
        before=before,
        after=details if addition else snapshot(locked),
        note=note() if note is not None else reason[:200],
    )
    return Step(locked, before_state, now)


def opened(case: Case, *, actor: User, at: datetime) -> None:
    """A new case's first timeline event and audit record (inside the caller's transaction)."""
    add_event(case, actor=actor, action="open", after=CaseState.DRAFT.value, at=at)
    record(actor=actor, action="case.open", target=case, merchant=case.merchant, after=snapshot(case))
