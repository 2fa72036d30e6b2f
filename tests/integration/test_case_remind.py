"""``fapiao cases remind``: who is reminded of an overdue case, once per case and Beijing day, with a
frozen clock walking across the due times and across Beijing midnight (16:00 UTC)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from fapiao.recovery import conversation, review, services
from fapiao.recovery.models import Case, CaseEvent, Notification
from fapiao.recovery.reminders import send_reminders
from tests.integration.case_helpers import claim_for

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Beijing


def _submitted(demo: dict[str, Any], number: str = "26110100000000007777") -> Case:
    clerk = demo["clerk"]
    case = services.open_case(user=clerk, payload=claim_for(number, "2026-02-01"))
    return services.submit_case(user=clerk, case=case, version=case.version)


def _remind(demo: dict[str, Any], at: datetime, **options: Any) -> Any:
    with time_machine.travel(at, tick=False):
        return send_reminders(actor=demo["support"], **options)


def _reminded(case: Case) -> list[str]:
    return [
        event.details["day"] for event in CaseEvent.objects.filter(case=case, action="remind").order_by("pk")
    ]


def test_a_new_case_nobody_took_up_is_reminded_once_per_beijing_day(demo):
    with time_machine.travel(START, tick=False):
        case = _submitted(demo)
    mail.outbox.clear()
    assert not _remind(demo, START + timedelta(hours=23)).sent  # submitted=24h: not yet due

    late_evening = datetime(2026, 3, 3, 15, 30, tzinfo=UTC)  # 23:30 on 3 March in Beijing
    run = _remind(demo, late_evening)
    assert [r.case.pk for r in run.sent] == [case.pk]
    assert {user.username for user in run.sent[0].people} == {"reviewer", "support"}  # the lead and support
    assert _reminded(case) == ["2026-03-03"]
    assert sorted(m.to[0] for m in mail.outbox) == ["reviewer@example.com", "support@example.com"]
    assert all(case.acceptance_no in m.body for m in mail.outbox)
    assert Notification.objects.filter(case=case, message__contains="waiting for you").count() == 2

    again = _remind(demo, late_evening + timedelta(minutes=15))
    assert not again.sent and [c.pk for c in again.already] == [case.pk]
    assert len(mail.outbox) == 2

    after_midnight = datetime(2026, 3, 3, 16, 30, tzinfo=UTC)  # the same UTC day, but 4 March in Beijing
    assert _remind(demo, after_midnight).sent
    assert not _remind(demo, datetime(2026, 3, 3, 23, 0, tzinfo=UTC)).sent  # 07:00 on 4 March
    assert _reminded(case) == ["2026-03-03", "2026-03-04"]
    assert len(mail.outbox) == 4


def test_a_case_waiting_for_the_merchant_reminds_the_merchant(demo):
    with time_machine.travel(START, tick=False):
        case = _submitted(demo)
        case = conversation.request_info(
            user=demo["support"], case=case, version=case.version, body="请补充合同。"
        )
    mail.outbox.clear()
    assert not _remind(demo, START + timedelta(days=6)).sent  # needs_info=168h
    run = _remind(demo, START + timedelta(days=8))
    assert [user.username for user in run.sent[0].people] == ["clerk"]
    assert [m.to for m in mail.outbox] == [["clerk@example.com"]]


def test_the_holder_is_reminded_and_the_first_approver_is_not_asked_twice(demo, settings):
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = 100  # 1.00 yuan: every approval needs a second reviewer
    with time_machine.travel(START, tick=False):
        held = _submitted(demo, "26110100000000007771")
        held = review.claim_case(user=demo["reviewer2"], case=held, version=held.version)
        second = _submitted(demo, "26110100000000007772")
        second = review.claim_case(user=demo["reviewer"], case=second, version=second.version)
        second = review.approve_case(user=demo["reviewer"], case=second, version=second.version)
    assert second.state == "awaiting_second"
    mail.outbox.clear()
    run = _remind(demo, START + timedelta(days=4))  # in_review=72h, awaiting_second=48h
    people = {r.case.pk: sorted(u.username for u in r.people) for r in run.sent}
    assert people == {held.pk: ["reviewer2"], second.pk: ["reviewer2"]}
    digests = [m for m in mail.outbox if m.to == ["reviewer2@example.com"]]
    assert len(mail.outbox) == 1 and len(digests) == 1  # one mail listing both cases
    assert held.acceptance_no in digests[0].body and second.acceptance_no in digests[0].body


def test_dry_run_and_closed_cases(demo):
    with time_machine.travel(START, tick=False):
        case = _submitted(demo)
        withdrawn = _submitted(demo, "26110100000000007773")
        services.withdraw_case(user=demo["clerk"], case=withdrawn, version=withdrawn.version)
    mail.outbox.clear()
    run = _remind(demo, START + timedelta(days=2), dry_run=True)
    assert [r.case.pk for r in run.sent] == [case.pk]  # never the withdrawn case
    assert not CaseEvent.objects.filter(action="remind").exists()
    assert not mail.outbox and not Notification.objects.filter(message__contains="waiting for you").exists()


def test_the_command_prints_what_it_did_and_needs_a_desk_user(demo):
    with time_machine.travel(START, tick=False):
        case = _submitted(demo)
    out = io.StringIO()
    with time_machine.travel(START + timedelta(days=2), tick=False):
        call_command("cases", "remind", "--dry-run", "--user", "support", stdout=out)
        assert "would remind" in out.getvalue() and case.acceptance_no in out.getvalue()
        assert not CaseEvent.objects.filter(action="remind").exists()
        call_command("cases", "remind", "--user", "support", stdout=out)
        call_command("cases", "remind", "--user", "support", stdout=out)
    text = out.getvalue()
    assert "reminded 1 case(s), 2 person(s)" in text and "1 already reminded today" in text
    assert _reminded(case) == ["2026-03-04"]
    for name in ("clerk", "operator", "auditor"):
        with pytest.raises(CommandError):
            call_command("cases", "remind", "--user", name, stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("cases", "remind", "--user", "", stdout=io.StringIO())
