"""Issue 13 finding 5: strangers cannot grow the audit trail for ever.

Anonymous refusals are counted per client address per hour by the shared rate limiter: the first
20 are recorded one by one, the rest summed up in one record when the hour has closed, and beyond
the limit the answer is 429 with ``Retry-After``, before any work.  A signed-in user's refusals
stay recorded one by one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fapiao.audit.models import AuditRecord
from fapiao.audit.refusals import client_key
from fapiao.audit.store import witness_path
from fapiao.audit.verify import verify_audit
from fapiao.platform import ratelimit
from fapiao.platform.ratelimit import purge

pytestmark = pytest.mark.django_db(transaction=True)

TEN_PAST = datetime(2026, 11, 24, 2, 10, tzinfo=UTC)  # 10:10 in Beijing: the hour has 50 minutes left
REFUSALS = ("access.unauthenticated", "access.forbidden", "auth.login_failed", "auth.locked_out")


@pytest.fixture(autouse=True)
def _own_witness(settings: Any, tmp_path: Path) -> None:
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(TEN_PAST, tick=True) as traveller:
        yield traveller


def refusal_records() -> int:
    return AuditRecord.objects.filter(action__in=REFUSALS).count()


def witnessed() -> int:
    path = witness_path()
    return len(path.read_text().splitlines()) if path.exists() else 0


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]


def test_200_anonymous_401s_make_at_most_21_records_and_429_after_the_limit(
    clock: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(ratelimit, "_next_purge", float("inf"))  # no purge but the one this test runs
    stranger = Client(REMOTE_ADDR="203.0.113.50")
    statuses = [stranger.get("/api/v1/invoices").status_code for _ in range(200)]
    assert statuses == [401] * 100 + [429] * 100  # FAPIAO_ANON_REFUSALS_PER_HOUR
    assert AuditRecord.objects.filter(action="access.unauthenticated").count() == 20
    assert witnessed() == 20

    throttled = stranger.get("/api/v1/invoices")
    assert throttled.status_code == 429
    assert throttled["Content-Type"] == "application/problem+json"
    assert throttled.json()["type"].endswith("too_many_requests")
    assert 0 < int(throttled["Retry-After"]) <= 50 * 60
    with CaptureQueriesContext(connection) as queries:
        assert stranger.get("/api/v1/invoices").status_code == 429
    assert writes(queries) == [] and len(queries) == 1  # one read of the counter: no record, no count
    with CaptureQueriesContext(connection) as queries:  # a guessed token: its look-up, then the same
        assert stranger.get("/api/v1/invoices", HTTP_AUTHORIZATION="Bearer fpv_guess").status_code == 429
    assert writes(queries) == []

    clock.move_to(TEN_PAST + timedelta(hours=1))
    assert purge() >= 1
    (summary,) = AuditRecord.objects.filter(action="access.anonymous_summary")
    assert summary.actor_id is None and summary.log.name == "audit:staff"
    assert summary.client_address == summary.target_id == "203.0.113.50"
    assert summary.after == {
        "client": "203.0.113.50",
        "from": "2026-11-24T02:00:00+00:00",
        "to": "2026-11-24T03:00:00+00:00",
        "refusals": 100,  # past the limit nothing is counted: a 429 costs one read
        "recorded": 20,
        "counted_only": 80,
        "limit": 100,
    }
    assert AuditRecord.objects.count() - AuditRecord.objects.filter(actor_id__isnull=False).count() <= 21
    assert witnessed() == 21
    assert purge() == 0  # written once
    assert verify_audit().ok
    assert stranger.get("/api/v1/invoices").status_code == 401  # a new hour


def test_each_address_is_counted_apart_and_an_ipv6_network_as_one(clock: Any) -> None:
    for address in ("203.0.113.1", "203.0.113.2"):
        for _ in range(25):
            Client(REMOTE_ADDR=address).get("/api/v1/invoices")
    assert AuditRecord.objects.filter(action="access.unauthenticated").count() == 40
    for host in range(25):  # one subscriber's /64, a new address each time
        Client(REMOTE_ADDR=f"2001:db8:1:2::{host + 1:x}").get("/api/v1/invoices")
    assert AuditRecord.objects.filter(action="access.unauthenticated").count() == 60
    assert client_key("2001:db8:1:2::7") == "2001:db8:1:2::/64"
    assert client_key("::ffff:203.0.113.9") == "203.0.113.9"
    assert client_key("") == "unknown"


def test_failed_sign_ins_are_sampled_and_429_comes_before_the_password_is_checked(
    demo: Any, clock: Any, settings: Any
) -> None:
    settings.FAPIAO_ANON_REFUSALS_PER_HOUR = 30
    guesser = Client(REMOTE_ADDR="198.51.100.77")
    for attempt in range(30):
        response = guesser.post("/login/", {"username": f"guess{attempt}", "password": "wrong-password"})
        assert response.status_code == 200
    assert AuditRecord.objects.filter(action="auth.login_failed").count() == 20
    with CaptureQueriesContext(connection) as queries:
        refused = guesser.post("/login/", {"username": "clerk", "password": "fapiao-demo-2026"})
    assert refused.status_code == 429 and "Retry-After" in refused
    assert "_auth_user_id" not in guesser.session  # not signed in, though the password was right
    assert writes(queries) == [] and len(queries) == 1  # one SELECT of the counter, nothing else
    assert AuditRecord.objects.filter(action__in=REFUSALS).count() == 20
    assert guesser.get("/login/").status_code == 200  # the page itself is still served
    admin = guesser.post("/admin/login/", {"username": "operator", "password": "fapiao-demo-2026"})
    assert admin.status_code == 429

    colleague = Client(REMOTE_ADDR="198.51.100.78")  # another address signs in as usual
    assert colleague.post("/login/", {"username": "clerk", "password": "fapiao-demo-2026"}).status_code == 302


def test_a_signed_in_users_refusals_are_all_recorded(client_for: Any, clock: Any) -> None:
    auditor = client_for("auditor")
    for _ in range(30):
        assert auditor.post("/api/v1/invoices", {}, content_type="application/json").status_code == 403
    forbidden = AuditRecord.objects.filter(action="access.forbidden", actor_username="auditor")
    assert forbidden.count() == 30
