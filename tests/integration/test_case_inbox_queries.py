"""Support's inbox costs the same number of queries for one waiting case as for twenty: the last
unread message of every row comes in one query, not one query per row (issue 12)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fapiao.recovery.models import Case, CaseMessage

pytestmark = pytest.mark.django_db


def _waiting_cases(demo: dict[str, Any], first: int, count: int) -> list[Case]:
    """``count`` more cases in review, each with merchant messages no staff member has read."""
    clerk = demo["clerk"]
    now = timezone.now()
    cases = []
    for n in range(first, first + count):
        case = Case.objects.create(
            merchant=clerk.merchant,
            acceptance_no=f"BJ-2026-{n + 1:06d}",
            state="in_review",
            claimed_number=f"2611200010000000{n:04d}",
            claimed_issued_on=date(2026, 11, 3),
            claimed_buyer_name="北京买方贸易有限公司",
            claimed_total_with_tax=106_000,
            narrative="上传中断。",
            opened_by=clerk,
            opened_at=now,
            submitted_by=clerk,
            submitted_at=now,
            state_changed_at=now,
        )
        for minutes, body in ((2, f"第一条 {n}"), (1, f"最新一条 {n}")):
            CaseMessage.objects.create(
                merchant=clerk.merchant,
                case=case,
                author=clerk,
                author_role=clerk.role,
                body=body,
                created_at=now - timedelta(minutes=minutes),
                read_by_merchant_at=now,
            )
        cases.append(case)
    return cases


def _inbox(demo: dict[str, Any]) -> tuple[int, str]:
    support = Client()
    support.force_login(demo["support"])
    support.get("/cases/inbox/")  # the session and the menu's first reads are not the inbox's
    with CaptureQueriesContext(connection) as queries:
        response = support.get("/cases/inbox/")
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_the_inbox_reads_its_rows_in_a_fixed_number_of_queries(demo):
    _waiting_cases(demo, 0, 1)
    one, page = _inbox(demo)
    assert "最新一条 0" in page and "第一条 0" not in page  # the row shows the latest message
    _waiting_cases(demo, 1, 19)
    twenty, page = _inbox(demo)
    assert all(f"最新一条 {n}" in page for n in range(20)), page
    assert twenty == one, f"{one} queries for 1 row, {twenty} for 20"
