"""Two people acting on one case at the same moment, on PostgreSQL (row locks, separate connections).

Each contender runs in its own thread, so in its own database connection and transaction; a
barrier starts them together and a pause inside the transaction (after the case row is locked)
makes sure they overlap.  Exactly one decision may win; the other gets a specific refusal and
the case carries one decision event.  The same race without the row lock lets both win — the
last test shows the test would notice.  Concurrent submissions get distinct, gap-free 受理编号.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.audit.models import AuditRecord
from fapiao.core.errors import FapiaoError
from fapiao.recovery import acceptance, review, services, transitions
from fapiao.recovery.models import AcceptanceCounter, Case, CaseEvent, Notification
from tests.integration.case_helpers import claim_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PAUSE = 0.3  # seconds a contender holds the case inside its transaction
DECISIONS = ("approve", "reject", "awaiting_second")


@pytest.fixture(autouse=True)
def _private_witness(settings: Any, tmp_path: Path) -> None:
    """This test's signed heads go to its own witness file, not the session's shared one."""
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"


def race(calls: list[Callable[[], Any]]) -> list[tuple[str, str]]:
    """Run ``calls`` at the same moment, one thread (and connection) each: ``("won", …)`` or
    ``("refused", code)`` per call, in order."""
    outcomes: list[tuple[str, str]] = [("missing", "")] * len(calls)
    start = threading.Barrier(len(calls))

    def contender(index: int) -> None:
        try:
            start.wait(timeout=30)
            result = calls[index]()
            outcomes[index] = ("won", getattr(result, "state", str(result)))
        except FapiaoError as error:
            outcomes[index] = ("refused", error.code)
        except Exception as error:  # anything else is a failure of the test, reported as such
            outcomes[index] = ("error", repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a contender hung"
    return outcomes


@pytest.fixture
def slow_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pause inside every transition, after the row is locked and before the decision is written."""
    real = transitions.facts_of

    def facts_of(case: Case, now: Any) -> Any:
        time.sleep(PAUSE)
        return real(case, now)

    monkeypatch.setattr(transitions, "facts_of", facts_of)


@pytest.fixture
def unclaimed_case(demo: dict[str, User], settings: Any) -> Case:
    """A submitted case in review that nobody holds (claimed, then released)."""
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    number = f"{timezone.localdate().year % 100:02d}110{999_999_999_997_000:015d}"
    case = services.open_case(user=demo["clerk"], payload=claim_for(number, timezone.localdate().isoformat()))
    case = services.submit_case(user=demo["clerk"], case=case, version=case.version)
    case = review.claim_case(user=demo["reviewer"], case=case, version=case.version)
    case = review.release_case(user=demo["reviewer"], case=case)
    assert (case.state, case.assignee_id) == ("in_review", None)
    return case


def fresh(case: Case) -> Case:
    return Case.objects.get(pk=case.pk)


def decisions(case: Case) -> list[str]:
    return list(CaseEvent.objects.filter(case=case, action__in=DECISIONS).values_list("action", flat=True))


def test_two_reviewers_decide_at_the_same_moment(unclaimed_case, demo, slow_decisions):
    case, version = unclaimed_case, unclaimed_case.version
    outcomes = race(
        [
            lambda: review.approve_case(user=demo["reviewer"], case=fresh(case), version=version),
            lambda: review.reject_case(
                user=demo["reviewer2"], case=fresh(case), version=version, reason="证据不足。"
            ),
        ]
    )
    won = [n for n, outcome in enumerate(outcomes) if outcome[0] == "won"]
    assert len(won) == 1, outcomes
    loser = outcomes[1 - won[0]]
    assert loser in {("refused", "stale_version"), ("refused", "case_action_not_allowed")}, outcomes

    after = fresh(case)
    assert after.version == version + 1
    assert after.state == ("approved" if won == [0] else "rejected")
    assert decisions(case) == (["approve"] if won == [0] else ["reject"])
    assert AuditRecord.objects.filter(action__in=["case.approve", "case.reject"]).count() == 1
    assert Notification.objects.filter(case=case, message__contains=after.state).count() == 1


def test_the_same_approval_sent_twice(unclaimed_case, demo, slow_decisions):
    """A double click, or a retry after a timeout: one approval, one refusal."""
    case, version = unclaimed_case, unclaimed_case.version
    approve = lambda: review.approve_case(user=demo["reviewer"], case=fresh(case), version=version)  # noqa: E731
    outcomes = race([approve, approve])
    assert sorted(outcomes) == [("refused", "stale_version"), ("won", "approved")], outcomes
    assert decisions(case) == ["approve"]
    assert fresh(case).version == version + 1


def test_a_later_reader_loses_to_a_holder_of_the_claim(unclaimed_case, demo, slow_decisions):
    """The version is fresh for both, but one claims first: the other may not decide over the claim."""
    case = unclaimed_case
    outcomes = race(
        [
            lambda: review.claim_case(user=demo["reviewer2"], case=fresh(case), version=None),
            lambda: (
                time.sleep(PAUSE / 3),
                review.approve_case(user=demo["reviewer"], case=fresh(case), version=None),
            )[1],
        ]
    )
    assert outcomes[0] == ("won", "in_review"), outcomes
    assert outcomes[1] == ("refused", "claim_held"), outcomes
    assert decisions(case) == []
    assert fresh(case).assignee.username == "reviewer2"


def test_concurrent_submissions_get_distinct_sequential_numbers(demo, monkeypatch):
    real = acceptance.next_acceptance_no

    def slow(now: Any) -> str:
        number = real(now)
        time.sleep(0.05)  # hold the counter's lock a while
        return number

    monkeypatch.setattr(services, "next_acceptance_no", slow)
    today = timezone.localdate()
    drafts = [
        services.open_case(
            user=demo["clerk"] if n % 2 else demo["clerk2"],
            payload=claim_for(f"{today.year % 100:02d}110{999_999_999_996_000 + n:015d}", today.isoformat()),
        )
        for n in range(8)
    ]
    clerks = {draft.pk: User.objects.get(pk=draft.opened_by_id) for draft in drafts}
    assert not AcceptanceCounter.objects.exists()  # the year's row is created in the race too
    outcomes = race(
        [
            (lambda d=draft: services.submit_case(user=clerks[d.pk], case=fresh(d), version=d.version))
            for draft in drafts
        ]
    )
    assert outcomes == [("won", "submitted")] * len(drafts), outcomes
    year = timezone.localdate().year
    numbers = sorted(Case.objects.values_list("acceptance_no", flat=True))
    assert numbers == [f"BJ-{year}-{n:06d}" for n in range(1, len(drafts) + 1)]
    assert AcceptanceCounter.objects.get(year=year).last == len(drafts)


def test_the_race_test_would_catch_a_missing_lock(unclaimed_case, demo, slow_decisions, monkeypatch):
    """Without ``SELECT … FOR UPDATE`` the version check alone lets both decisions through."""

    def unlocked(case: Case, version: int | None) -> Case:
        current = Case.objects.get(pk=case.pk)
        if version is not None and current.version != version:
            raise transitions.StaleCaseError(current=current.version)
        return current

    monkeypatch.setattr(transitions, "lock", unlocked)
    case, version = unclaimed_case, unclaimed_case.version
    outcomes = race(
        [
            lambda: review.approve_case(user=demo["reviewer"], case=fresh(case), version=version),
            lambda: review.reject_case(
                user=demo["reviewer2"], case=fresh(case), version=version, reason="不同意。"
            ),
        ]
    )
    assert [outcome[0] for outcome in outcomes] == ["won", "won"], outcomes
    assert sorted(decisions(case)) == ["approve", "reject"]
