"""The conversation on a case: messages, the 补正通知 (asking the merchant for more), the answer.

A merchant's message or file on a case waiting for information is their answer: the case goes
back to review (:func:`answer`, called by the message and evidence services).  ``on_behalf``
marks what support registered for the merchant (said by phone, sent by post or e-mail); whoever
writes one may not decide the case (the core's four-eyes rule).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from fapiao.accounts.choices import Role
from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.core.cases import CaseAction, CaseState
from fapiao.core.errors import ConflictError, InvalidValueError, ValidationFailed, _
from fapiao.core.text import bad_character, free_text
from fapiao.recovery import notify, selectors
from fapiao.recovery.models import Case, CaseMessage
from fapiao.recovery.transitions import Change, clear_decision, transition

MESSAGE_MAX = 4000
REQUESTED_ITEMS_MAX = 20
MESSAGING_CLOSED = frozenset({CaseState.DRAFT, CaseState.CONFIRMED, CaseState.WITHDRAWN})
MERCHANT_SIDE = (Role.CLERK, Role.MERCHANT_ADMIN)


class CaseNotOpenForMessagesError(ConflictError):
    """Messages can't be added to a case that is "{state}"."""

    code = "case_not_open_for_messages"


def required_text(value: object, field: str, max_len: int = 2000) -> str:
    """The text given for ``field``, stripped: refused when missing or blank, not text, holding
    control characters other than tab and line breaks, or longer than ``max_len``."""
    return free_text(value, field, max_len=max_len, required=True)


def _items(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationFailed([InvalidValueError(_("Send a list of texts."), code="not_a_list").at("items")])
    items = [item.strip() for item in value if item.strip()]
    if any(bad_character(item) is not None for item in items):
        raise ValidationFailed(
            [
                InvalidValueError(_("Remove control characters such as tabs."), code="bad_character").at(
                    "items"
                )
            ]
        )
    if len(items) > REQUESTED_ITEMS_MAX or any(len(item) > 200 for item in items):
        raise ValidationFailed(
            [
                InvalidValueError(_("Use at most {max} items."), code="too_many", max=REQUESTED_ITEMS_MAX).at(
                    "items"
                )
            ]
        )
    return items


def _message(
    case: Case, user: User, body: str, *, items: list[str], on_behalf: bool, now: datetime
) -> CaseMessage:
    merchant_side = user.role in MERCHANT_SIDE
    return CaseMessage.objects.create(
        merchant_id=case.merchant_id,
        case=case,
        author=user,
        author_role=user.role,
        body=body,
        requested_items=items,
        on_behalf=on_behalf,
        created_at=now,
        read_by_merchant_at=now if merchant_side else None,
        read_by_staff_at=None if merchant_side else now,
    )


def _open_for_messages(locked: Case) -> None:
    if locked.state in MESSAGING_CLOSED:
        raise CaseNotOpenForMessagesError(state=locked.state)


def post_message(*, user: User, case: Case, body: object, on_behalf: bool = False) -> CaseMessage:
    """A message on the case.  A merchant's message on a case waiting for information is the answer:
    the case goes back to review.  ``on_behalf`` (support only) marks what a merchant said by phone
    or on paper; whoever writes one may not decide the case."""
    require(user, Action.MESSAGE_CASES)
    text = required_text(body, "body", MESSAGE_MAX)
    merchant_side = user.role in MERCHANT_SIDE
    on_behalf = bool(on_behalf) and user.role == Role.SUPPORT
    written: list[CaseMessage] = []

    def write(locked: Case, _target: CaseState, now: datetime) -> None:
        written.append(_message(locked, user, text, items=[], on_behalf=on_behalf, now=now))

    with transaction.atomic():
        step = transition(
            case,
            Change.MESSAGE,
            actor=user,
            version=None,
            check=_open_for_messages,
            apply=write,
            note=lambda: f"message {written[0].pk}",
        )
        locked = step.case
        if merchant_side and locked.state == CaseState.NEEDS_INFO:
            answer(user=user, case=locked, note=_("Answered with a message."))
        elif merchant_side:
            notify.notify(locked, "message", notify.staff_people(locked, role=Role.SUPPORT), actor=user)
        else:
            notify.notify(locked, "message", notify.merchant_people(locked), actor=user)
    return written[0]


def answer(*, user: User, case: Case, note: str) -> Case:
    """needs_info → in_review: the merchant answered (inside the caller's transaction).

    ``note`` is an English msgid, stored in the site's language: the timeline is a record.
    """
    with translation.override(settings.LANGUAGE_CODE):
        reason = gettext(note)
    step = transition(case, CaseAction.ANSWER, actor=user, version=None, reason=reason)
    people = notify.staff_people(step.case) + notify.askers(step.case)
    notify.notify(step.case, "answer", people, actor=user)
    return step.case


def request_info(*, user: User, case: Case, version: int | None, body: object, items: object = None) -> Case:
    """A 补正通知: ask the merchant for more, listing exactly what is missing.

    Asked of an approved case (its claim turned out incomplete), the approvals lapse: the
    completed claim is reviewed again.
    """
    require(user, Action.MESSAGE_CASES)
    text = required_text(body, "body", MESSAGE_MAX)
    wanted = _items(items)

    def apply(locked: Case, _target: CaseState, _now: datetime) -> None:
        clear_decision(locked)

    with transaction.atomic():
        step = transition(
            case, CaseAction.REQUEST_INFO, actor=user, version=version, reason=text, apply=apply
        )
        _message(step.case, user, text, items=wanted, on_behalf=False, now=step.now)
        notify.notify(
            step.case,
            "request_info",
            notify.merchant_people(step.case),
            actor=user,
            mail_details=_request_details(step.case, text, wanted),
        )
    return step.case


def _request_details(case: Case, text: str, items: list[str]) -> str:
    """A 补正通知 as the mail carries it: the notice, the checklist and the deadline (Beijing time)."""
    due = selectors.due_at(case)
    with translation.override(settings.LANGUAGE_CODE):
        lines = [text]
        if items:
            lines += ["", gettext("What to add:"), *(f"☐ {item}" for item in items)]
        if due is not None:
            when = timezone.localtime(due).strftime("%Y-%m-%d %H:%M")
            lines += ["", gettext("Please answer by {when} (Beijing time).").format(when=when)]
    return "\n".join(lines)


def mark_read(*, user: User, case: Case) -> int:
    """Mark the other side's messages read for ``user``; returns how many."""
    now = timezone.now()
    messages = CaseMessage.objects.filter(case=case)
    if user.role in MERCHANT_SIDE:
        return messages.filter(read_by_merchant_at__isnull=True).update(read_by_merchant_at=now)
    if user.role in (Role.SUPPORT, Role.REVIEWER):
        return messages.filter(read_by_staff_at__isnull=True).update(read_by_staff_at=now)
    return 0
