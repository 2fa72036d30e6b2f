"""Reminders of overdue cases, sent by ``fapiao cases remind`` from cron: once per case and Beijing day.

A case is overdue when it has stayed in its state longer than ``FAPIAO_CASE_DUE_HOURS`` allows
(:func:`fapiao.recovery.selectors.is_overdue`).  Whoever must act hears about it: the merchant's
users when the case waits for the merchant (information asked for, a rejection, a result to
confirm), else the reviewer holding it, the lead reviewers when nobody does, and support too
for a new case nobody has taken up.  The reminder is a ``remind`` event on the case's timeline
with the Beijing day in its details, written under the case's row lock, so running the command
twice a day — or twice at once — reminds once.  Each person gets one mail listing all their
cases, after the events are committed; a failing mail server never undoes a reminder.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext

from fapiao.accounts.choices import Role
from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, RoleForbiddenError, may
from fapiao.core.cases import CaseState
from fapiao.core.errors import _
from fapiao.recovery import notify, selectors
from fapiao.recovery.labels import state_label
from fapiao.recovery.models import Case, CaseEvent, Notification
from fapiao.recovery.transitions import Change, lock, transition

log = logging.getLogger(__name__)
BEIJING = ZoneInfo("Asia/Shanghai")
MERCHANT_TURN = frozenset({CaseState.DRAFT, CaseState.NEEDS_INFO, CaseState.REJECTED, CaseState.RESOLVED})
ACTION = Change.REMIND.value


def beijing_day(now: datetime) -> date:
    return now.astimezone(BEIJING).date()


def who_must_act(case: Case) -> list[User]:
    """The people a reminder of ``case`` goes to (active users with the role to act)."""
    if case.state in MERCHANT_TURN:
        return notify.merchant_people(case)
    people = notify.staff_people(case)
    if case.state == CaseState.SUBMITTED:
        people += notify.staff_people(case, role=Role.SUPPORT)
    if case.state == CaseState.AWAITING_SECOND:
        # The second approval must come from someone else than the first approver.
        people = [user for user in people if user.pk != case.first_approver_id]
        if not people:
            reviewers = User.objects.filter(role=Role.REVIEWER, is_active=True)
            people = [user for user in reviewers if user.pk != case.first_approver_id]
    return list({user.pk: user for user in people}.values())


def overdue_filter(now: datetime) -> Q:
    """Cases past their state's due time at ``now`` (the same rule as ``selectors.is_overdue``)."""
    overdue = Q(pk__in=[])
    for state, hours in selectors.due_hours().items():
        overdue |= Q(state=state, state_changed_at__lt=now - timedelta(hours=hours))
    return overdue


def overdue_cases(now: datetime) -> list[Case]:
    """Every case past its state's due time, oldest first."""
    cases = Case.objects.filter(overdue_filter(now)).select_related("merchant")
    return list(cases.order_by("state_changed_at", "pk"))


@dataclass(frozen=True)
class Reminder:
    case: Case
    people: list[User]
    due: datetime | None


@dataclass
class ReminderRun:
    """What a run did (or, with ``dry_run``, would do)."""

    day: date
    dry_run: bool
    sent: list[Reminder] = field(default_factory=list)
    already: list[Case] = field(default_factory=list)  # reminded earlier the same day
    nobody: list[Case] = field(default_factory=list)  # no active user can act on it

    @property
    def people(self) -> set[int]:
        return {user.pk for reminder in self.sent for user in reminder.people}


def _reminded(case: Case, day: date) -> bool:
    return CaseEvent.objects.filter(case=case, action=ACTION, details__day=day.isoformat()).exists()


def send_reminders(*, actor: User, now: datetime | None = None, dry_run: bool = False) -> ReminderRun:
    """Remind whoever must act on each overdue case, at most once per case and Beijing day.

    ``actor`` is the support agent or reviewer the reminders are sent in the name of (the
    timeline says who); ``dry_run`` writes and sends nothing.
    """
    if not may(actor, Action.MESSAGE_CASES) or actor.is_merchant_user:
        raise RoleForbiddenError(_("Your role does not allow this action."))
    now = now or timezone.now()
    run = ReminderRun(day=beijing_day(now), dry_run=dry_run)
    for case in overdue_cases(now):
        if dry_run:
            _sort(run, case, who_must_act(case), reminded=_reminded(case, run.day))
            continue
        with transaction.atomic():
            locked = lock(case, None)
            if not selectors.is_overdue(locked, now):
                continue  # it moved on since the list was read
            people = who_must_act(locked)
            if _sort(run, locked, people, reminded=_reminded(locked, run.day)):
                _write(actor, locked, people, run.day, now)
    if not dry_run:
        _mail_digests(run)
    return run


def _sort(run: ReminderRun, case: Case, people: list[User], *, reminded: bool) -> bool:
    """File the case under already / nobody / sent; True when a reminder goes out."""
    if reminded:
        run.already.append(case)
    elif not people:
        run.nobody.append(case)
    else:
        run.sent.append(Reminder(case, people, selectors.due_at(case)))
        return True
    return False


def _write(actor: User, case: Case, people: list[User], day: date, now: datetime) -> None:
    due = selectors.due_at(case)
    details = {
        "day": day.isoformat(),
        "to": sorted(user.username for user in people),
        "due": due.isoformat() if due else None,
    }
    params = {"case": case.acceptance_no or str(case.uid)[:8]}

    def notify_people(locked: Case, _target: CaseState, at: datetime) -> None:
        Notification.objects.bulk_create(
            Notification(
                user=user,
                merchant_id=locked.merchant_id,
                case=locked,
                message=notify.MESSAGES["reminder"],
                params=params,
                created_at=at,
            )
            for user in people
        )

    transition(case, Change.REMIND, actor=actor, version=None, details=details, apply=notify_people, at=now)


def _mail_digests(run: ReminderRun) -> None:
    """One mail per person, listing every case of theirs this run reminded about."""
    by_person: dict[int, list[Reminder]] = defaultdict(list)
    people: dict[int, User] = {}
    for reminder in run.sent:
        for user in reminder.people:
            by_person[user.pk].append(reminder)
            people[user.pk] = user
    for pk, reminders in by_person.items():
        address = people[pk].email
        if not address:
            continue
        subject, body = digest_text(reminders)
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)
        except Exception:
            log.exception("reminder mail to user %s failed", pk)


def digest_text(reminders: list[Reminder]) -> tuple[str, str]:
    """The reminder mail's subject and body, in the site's language."""
    with translation.override(settings.LANGUAGE_CODE):
        count = len(reminders)
        title = ngettext(
            "{count} recovery case is waiting for you", "{count} recovery cases are waiting for you", count
        ).format(count=count)
        lines = [gettext("These cases are past their due time:"), ""]
        for reminder in reminders:
            case = reminder.case
            due = timezone.localtime(reminder.due).strftime("%Y-%m-%d %H:%M") if reminder.due else "—"
            overdue_since = gettext("due {time}").format(time=due)
            number = case.acceptance_no or str(case.uid)[:8]
            lines.append(f"· {number} · {state_label(case.state)} · {overdue_since}")
            lines.append(f"  {notify.case_url(case)}")
        product = gettext("Fapiao Vault")
        lines += ["", f"— {product}"]
        return f"[{product}] {title}", "\n".join(lines)
