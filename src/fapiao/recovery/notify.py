"""Who hears about a case event, in the app and by e-mail.

Every transition notifies the people who must act next or who are waiting on it: the
merchant's users who opened or submitted the case hear about staff decisions; the reviewer
holding the case (or, when nobody does, the lead reviewers; support for messages) hears
about the merchant's moves.  Notifications are rows written in the transition's transaction;
mails go out only after it commits, and a mail server that fails never undoes a transition.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from fapiao.accounts.choices import Role
from fapiao.accounts.models import User
from fapiao.recovery.models import Case, Notification

log = logging.getLogger(__name__)

# What each event says, as English msgids translated for the reader.
MESSAGES: dict[str, str] = {
    "submit": gettext_noop("Case {case} was submitted."),
    "resubmit": gettext_noop("Case {case} was edited and submitted again."),
    "claim": gettext_noop("Case {case} is being reviewed."),
    "assign": gettext_noop("Case {case} was assigned to you."),
    "request_info": gettext_noop("Case {case} needs more information from you."),
    "answer": gettext_noop("The merchant answered on case {case}."),
    "message": gettext_noop("New message on case {case}."),
    "evidence": gettext_noop("New evidence on case {case}."),
    "approve": gettext_noop("Case {case} was approved."),
    "awaiting_second": gettext_noop("Case {case} awaits a second reviewer's approval."),
    "reject": gettext_noop("Case {case} was rejected. Reason: {reason}"),
    "return_to_review": gettext_noop(
        "Case {case} went back to review: the approved remedy cannot be carried out. Reason: {reason}"
    ),
    "register": gettext_noop(
        "Support registered case {case} for you ({channel}): check the claim and add your evidence."
    ),
    "resolve": gettext_noop(
        "Case {case} was resolved: invoice {invoice} is back. Please check it and confirm."
    ),
    "confirm": gettext_noop("The merchant confirmed case {case}."),
    "reopen": gettext_noop("The merchant reopened case {case}."),
    "withdraw": gettext_noop("Case {case} was withdrawn."),
    "reminder": gettext_noop("Case {case} is waiting for you."),
}


#: The longest subject line; the whole text (a rejection's full reason) is in the body.
SUBJECT_MAX = 60


def case_url(case: Case) -> str:
    return f"{settings.FAPIAO_PUBLIC_URL}/cases/{case.uid}/"


def merchant_people(case: Case) -> list[User]:
    """The merchant's users who opened or submitted the case; for a case support registered on
    the merchant's behalf (代商户登记), every active user of the merchant."""
    ids = {case.opened_by_id, case.submitted_by_id}
    people = list(
        User.objects.filter(
            pk__in=[i for i in ids if i], is_active=True, role__in=(Role.CLERK, Role.MERCHANT_ADMIN)
        )
    )
    if people:
        return people
    return list(
        User.objects.filter(
            merchant_id=case.merchant_id, is_active=True, role__in=(Role.CLERK, Role.MERCHANT_ADMIN)
        )
    )


def staff_people(case: Case, *, role: Role = Role.REVIEWER) -> list[User]:
    """The reviewer holding the case, else the lead reviewers (or, for ``SUPPORT``, every support agent)."""
    if case.assignee_id is not None:
        return list(User.objects.filter(pk=case.assignee_id, is_active=True))
    people = User.objects.filter(role=role, is_active=True)
    if role == Role.REVIEWER:
        people = people.filter(is_lead=True)
    return list(people)


def reviewers() -> list[User]:
    """Every active reviewer: who may give a second approval (the first approver is the actor)."""
    return list(User.objects.filter(role=Role.REVIEWER, is_active=True))


def askers(case: Case) -> list[User]:
    """Who asked for more on this case the last time (support or a reviewer): they wait for the answer."""
    event = case.events.filter(action="request_info").order_by("-at", "-pk").select_related("actor").first()
    return [event.actor] if event is not None and event.actor.is_active else []


def notify(
    case: Case,
    event: str,
    recipients: Iterable[User],
    *,
    actor: User | None,
    mail_details: str = "",
    **params: Any,
) -> None:
    """Write one notification per recipient (not the actor) and mail them after commit.

    ``mail_details`` (in the site's language) goes into the mail below the notification's text:
    a 补正通知's checklist and deadline, for instance."""
    people = {user.pk: user for user in recipients if actor is None or user.pk != actor.pk}
    send(
        people.values(),
        merchant_id=case.merchant_id,
        message=MESSAGES[event],
        params={"case": case.acceptance_no or str(case.uid)[:8], **params},
        url=case_url(case),
        case=case,
        mail_details=mail_details,
    )


def send(
    recipients: Iterable[User],
    *,
    merchant_id: int | None,
    message: str,
    params: dict[str, Any],
    url: str,
    case: Case | None = None,
    mail_details: str = "",
) -> int:
    """One notification per recipient, and after commit one mail to those with an address (the
    message in the site's language, ``mail_details`` below it, then ``url``); returns how many."""
    people = list(recipients)
    now = timezone.now()
    Notification.objects.bulk_create(
        [
            Notification(
                user=user, merchant_id=merchant_id, case=case, message=message, params=params, created_at=now
            )
            for user in people
        ]
    )
    addresses = [user.email for user in people if user.email]
    if addresses:
        transaction.on_commit(lambda: _mail(addresses, message, params, url, mail_details))
    return len(people)


def _mail(addresses: list[str], message: str, params: dict[str, Any], url: str, details: str = "") -> None:
    with translation.override(settings.LANGUAGE_CODE):
        text = gettext(message).format(**params)
        product = gettext("Fapiao Vault")
        body = (
            f"{text}\n\n{details}\n\n{url}\n\n— {product}" if details else f"{text}\n\n{url}\n\n— {product}"
        )
        headline = text.splitlines()[0] if text else ""
        subject = f"[{product}] {headline if len(headline) <= SUBJECT_MAX else headline[:SUBJECT_MAX] + '…'}"
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, addresses, fail_silently=False)
    except Exception:
        log.exception("notification mail to %d recipients failed", len(addresses))


def render(notification: Notification) -> str:
    """The notification in the active language."""
    try:
        return gettext(notification.message).format(**notification.params)
    except (KeyError, IndexError):
        return gettext(notification.message)


def mark_read(*, user: User, notifications: Iterable[Notification]) -> int:
    """Mark these of ``user``'s notifications read (the ones they were just shown); returns how many."""
    shown = [notification.pk for notification in notifications]
    unread = Notification.objects.filter(user=user, read_at__isnull=True, pk__in=shown)
    return unread.update(read_at=timezone.now())
