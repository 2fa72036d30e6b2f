"""The operators' pages (运维概览, 备份与演练) and the per-hour count of refusals and 503s behind them.

Who may see the pages is also in the authorisation matrix (authz_table.py, /operations/…); here:
what they show is what the database holds — the health checks, the latest verifications, the open
incidents, the overdue cases, and 24 hourly buckets of invoices issued, refusals and 503s.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.test import Client
from django.utils import timezone

from fapiao.audit.models import AuditVerifyRun
from fapiao.core.choices import IncidentKind
from fapiao.invoices.models import Invoice
from fapiao.invoices.services import issue_invoice
from fapiao.ledger.incidents import open_incident
from fapiao.ledger.models import VerifyRun
from fapiao.ops import overview as ops_overview
from fapiao.ops.models import BackupVerification
from fapiao.platform import hourly
from fapiao.platform.models import HourlyCount
from fapiao.recovery import evidence as case_evidence
from fapiao.recovery import services as case_services
from fapiao.recovery.models import Case
from tests.conftest import VALID_INVOICE
from tests.integration.case_helpers import claim_for, pdf_named
from tests.integration.group_commit_helpers import batching, hold_writer
from tests.integration.test_web_translations import english_words

pytestmark = pytest.mark.django_db
__all__ = ["batching"]  # the fixture, used by name

BAR = re.compile(r'<rect class="bar" data-hour="(\d\d):00" data-count="(\d+)"')


@pytest.fixture(autouse=True)
def fresh_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no pending counts and no flush queued in this process."""
    monkeypatch.setattr(hourly, "_pending", hourly.Counter())
    monkeypatch.setattr(hourly, "_scheduled_at", None)


@pytest.fixture
def operator(demo: dict[str, Any], settings: Any) -> Client:
    settings.FAPIAO_OPERATOR_TOTP = False  # the second factor has its own tests
    client = Client()
    client.force_login(demo["operator"])
    return client


def signed_in(demo: dict[str, Any], username: str) -> Client:
    client = Client()
    client.force_login(demo[username])
    return client


def chart(html: str, key: str) -> list[tuple[str, int]]:
    """The (hour, count) bars of one chart on the page."""
    start = html.index(f'id="chart-{key}"')
    end = html.index("</figure>", start)
    return [(hour, int(count)) for hour, count in BAR.findall(html[start:end])]


def count_of(kind: str) -> int:
    return sum(HourlyCount.objects.filter(kind=kind).values_list("count", flat=True))


# --- who sees the pages -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/operations/", "/operations/backups/"])
def test_only_operators_see_the_pages(demo, operator, path):
    anonymous = Client().get(path)
    assert anonymous.status_code == 302  # to the sign-in page
    assert anonymous["Location"].startswith("/login/")
    for username in ("clerk", "madmin", "support", "reviewer", "auditor"):
        answer = signed_in(demo, username).get(path)
        assert answer.status_code == 403, username
        assert "只有系统管理员可以查看运维页面" in answer.content.decode()
        assert "data-check" not in answer.content.decode() and "backup-list" not in answer.content.decode()
    answer = operator.get(path)
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/html")


def test_the_menu_shows_the_pages_to_operators_only(demo, operator):
    assert 'href="/operations/"' in operator.get("/").content.decode()
    assert 'href="/operations/backups/"' in operator.get("/").content.decode()
    for username in ("clerk", "auditor", "support"):
        page = signed_in(demo, username).get("/").content.decode()
        assert 'href="/operations/"' not in page, username


# --- what the overview shows ---------------------------------------------------------------------------


def test_every_readiness_check_is_on_the_overview(operator):
    html = operator.get("/operations/").content.decode()
    ready = operator.get("/readyz").json()["checks"]
    shown = re.findall(r'<tr data-check="([a-z_]+)">', html)
    assert shown == list(ready)
    assert {"database", "disk", "signing_key", "incidents", "ledger_verify", "backup"} <= set(shown)


def test_failed_verifications_and_open_incidents_are_shown(demo, operator):
    now = timezone.now()
    VerifyRun.objects.create(finished_at=now, ok=False, errors=3, source="cli")
    AuditVerifyRun.objects.create(finished_at=now, ok=True, source="cli")
    BackupVerification.objects.create(
        backup_id="20261205T010000Z-abcdef", started_at=now, finished_at=now, ok=False, problems=["x"]
    )
    open_incident(
        kind=IncidentKind.VERIFY_FAILED, merchant=None, identity={"log": "t1"}, details={"log": "t1"}
    )
    html = operator.get("/operations/").content.decode()
    ledger = html[html.index('id="last-ledger-verify"') :][:600]
    assert "failed" in ledger and "3" in ledger
    audit = html[html.index('id="last-audit-verify"') :][:600]
    assert 'class="passed"' in audit
    backup = html[html.index('id="last-backup"') :][:600]
    assert "20261205T010000Z-abcdef" in backup and 'class="failed"' in backup
    assert re.search(r'<tr data-check="ledger_verify"><td>[^<]+</td><td class="failed">', html)
    assert re.search(r'<tr data-check="incidents"><td>[^<]+</td><td class="failed">', html)
    assert "有 1 个完整性事件未解决" in html
    incidents = html[html.index('id="incidents"') :]
    assert "账本核验未通过" in incidents and "待处理" in incidents  # named, not shown as codes
    assert "<code>verify_failed</code>" not in incidents
    assert 'id="no-incidents"' not in html
    assert english_words(html) == []  # with every red item showing, still all Chinese


def test_cases_past_their_due_time_are_counted(demo, operator, settings):
    settings.FAPIAO_CASE_DUE_HOURS = {"submitted": 24}
    clerk = demo["clerk"]
    today = timezone.localdate()
    for serial in (1, 2):
        number = f"{today.year % 100:02d}110{serial:015d}"
        case = case_services.open_case(user=clerk, payload=claim_for(number, today.isoformat()))
        case_evidence.add_evidence(
            user=clerk, case=case, evidence_type="contract", filename="合同.pdf", data=pdf_named(number)
        )
        case_services.submit_case(user=clerk, case=case, version=case.version)
    first = Case.objects.order_by("pk").first()
    assert first is not None
    Case.objects.filter(pk=first.pk).update(state_changed_at=timezone.now() - timedelta(hours=30))
    html = operator.get("/operations/").content.decode()
    row = re.search(r'<tr data-state="submitted"><td>[^<]+</td><td>(\d+)</td><td[^>]*>(\d+)</td>', html)
    assert row is not None and row.groups() == ("2", "1")
    assert re.search(r'id="overdue-total">\s*1 ', html)


@pytest.mark.parametrize("portable", [False, True], ids=["database-functions", "django-trunchour"])
def test_the_chart_counts_invoices_refusals_and_503s_per_hour(demo, operator, portable, monkeypatch):
    if portable:  # the path for a database without an entry in HOUR_TEXT
        monkeypatch.setattr(ops_overview, "HOUR_TEXT", {})
    now = timezone.now()
    numbers = [
        issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE)).body["number"]
        for _ in range(4)
    ]
    # Ids follow issue times: the oldest is outside the 24 hours, the next five hours ago.
    Invoice.objects.filter(number=numbers[0]).update(issued_at=now - timedelta(hours=30))
    Invoice.objects.filter(number=numbers[1]).update(issued_at=now - timedelta(hours=5))
    for _ in range(3):
        hourly.note(403)
    hourly.note(503, now=(now - timedelta(hours=2)).timestamp())
    hourly.note(503, now=(now - timedelta(hours=26)).timestamp())  # outside the window
    hourly.note(404)  # neither a refusal nor a 503: not counted
    hourly.note(429)  # throttled: must cost no write (test_anonymous_refusals.py)

    html = operator.get("/operations/").content.decode()  # an operator's 200: not counted either
    issued, refused, unavailable = (chart(html, key) for key in ("issued", "refused", "unavailable"))
    for bars in (issued, refused, unavailable):
        assert len(bars) == 24
    beijing = now.astimezone(ops_overview.BEIJING)
    hours = [(beijing - timedelta(hours=23 - n)).strftime("%H") for n in range(24)]
    assert [hour for hour, _count in issued] == hours  # Beijing hours, the current one last
    assert [count for _hour, count in issued] == [0] * 18 + [1] + [0] * 4 + [2]
    assert [count for _hour, count in refused] == [0] * 23 + [3]
    assert [count for _hour, count in unavailable] == [0] * 21 + [1, 0, 0]
    table = html[html.index('id="hours"') :]
    assert f"<td>{beijing.strftime('%Y-%m-%d %H')}:00</td><td>2</td><td>3</td><td>0</td>" in table


@pytest.mark.parametrize(
    "ages",
    [
        (50, 40, 30, 20, 10, 5, 1),  # ids follow issue times
        (50, 40, 30, 70, 10, 5, 1),  # a restored invoice (its original, older time) among new ones
        (50, 40, 30, 20, 10, 5, 90),  # ... or the newest row
    ],
    ids=["in-order", "restored-in-the-middle", "restored-last"],
)
def test_the_first_invoice_of_the_window_is_found_by_bisection(demo, monkeypatch, ages):
    monkeypatch.setattr(ops_overview, "PROBE", 2)  # runs shorter than the rows, so the search bisects
    now = timezone.now()
    numbers = [
        issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE)).body["number"]
        for _ in range(len(ages))
    ]
    for age, number in zip(ages, numbers, strict=True):
        Invoice.objects.filter(number=number).update(issued_at=now - timedelta(hours=age))
    ids = list(Invoice.objects.order_by("pk").values_list("pk", "issued_at"))
    for hours_back in (100, 60, 45, 35, 25, 15, 7, 3, 0.5):
        moment = now - timedelta(hours=hours_back)
        found = ops_overview._first_invoice_since(moment)
        since = {pk for pk, at in ids if at >= moment}
        if not since:
            assert found is None, hours_back
            continue
        assert found is not None, hours_back
        assert since <= {pk for pk, _at in ids if pk >= found}, hours_back  # no new invoice is missed


# --- the hourly counter ----------------------------------------------------------------------------


def test_a_refusal_and_a_503_each_raise_the_count(demo):
    clerk = signed_in(demo, "clerk")
    assert clerk.get("/operations/").status_code == 403
    assert count_of(hourly.REFUSED) == 1
    assert Client(headers={"Authorization": "Bearer nope"}).get("/api/v1/invoices").status_code == 401
    assert count_of(hourly.REFUSED) == 2

    def database_down(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.strip() == "SELECT 1":
            raise DatabaseError("simulated: the database is down")
        return execute(sql, params, many, context)

    queries: list[str] = []

    def recorded(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(database_down), connection.execute_wrapper(recorded):
        answer = Client().get("/readyz")
    assert answer.status_code == 503
    # The database did not answer: counting tried nothing (no connection attempt to wait for) ...
    assert not [sql for sql in queries if HourlyCount._meta.db_table in sql]
    assert count_of(hourly.UNAVAILABLE) == 0
    # ... and the 503 is written with the next answer that is counted.
    assert clerk.get("/operations/").status_code == 403
    assert count_of(hourly.UNAVAILABLE) == 1
    assert count_of(hourly.REFUSED) == 3
    row = HourlyCount.objects.get(kind=hourly.UNAVAILABLE)
    assert row.hour_start == hourly.hour_of(datetime.now(UTC).timestamp())


def test_a_count_that_fails_never_breaks_the_answer(demo, monkeypatch):
    # A real failing statement (an unknown table): on PostgreSQL it aborts only its savepoint.
    monkeypatch.setattr(
        hourly, "_statements", lambda: {"upsert": "INSERT INTO no_such_table VALUES (%s, %s, %s)"}
    )
    clerk = signed_in(demo, "clerk")
    answer = clerk.get("/operations/")
    assert answer.status_code == 403
    assert "运维" in answer.content.decode() or "operators" in answer.content.decode()
    assert HourlyCount.objects.count() == 0  # the connection still works: this query runs

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated: anything at all")

    monkeypatch.setattr(hourly, "_count", broken)
    assert clerk.get("/operations/").status_code == 403
    assert clerk.get("/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_in_the_server_a_burst_of_refusals_is_one_queued_flush(batching):
    release, thread = hold_writer(batching)
    try:
        for _ in range(5):
            hourly.note(401)
        for _ in range(2):
            hourly.note(503)
        assert batching.jobs.qsize() == 1  # one flush queued for the seven answers
    finally:
        release.set()
        thread.join(10)
    batching.submit(lambda unit: None)  # the flush ran before this
    assert count_of(hourly.REFUSED) == 5
    assert count_of(hourly.UNAVAILABLE) == 2
    hourly.note(403)
    batching.submit(lambda unit: None)
    assert count_of(hourly.REFUSED) == 6
    assert HourlyCount.objects.count() == 2  # one row per kind and hour


def test_old_hours_are_purged(demo):
    now = datetime.now(UTC).timestamp()
    hourly.note(503, now=now - (hourly.KEEP_DAYS + 2) * 86400)
    assert HourlyCount.objects.count() == 1
    hourly._purged_hour = 0
    hourly.note(503, now=now)
    assert list(HourlyCount.objects.values_list("hour_start", flat=True)) == [hourly.hour_of(now)]


# --- backups and drills --------------------------------------------------------------------------


def test_the_backups_page_lists_drill_reports(operator, settings, tmp_path: Path):
    settings.VAR_DIR = tmp_path
    drills = tmp_path / "drills"
    drills.mkdir()
    (drills / "20261205T030000Z-database-lost.json").write_text(
        json.dumps(
            {
                "scenario": "database-lost",
                "started_at": "2026-12-05T03:00:00Z",
                "finished_at": "2026-12-05T03:04:12Z",
                "ok": True,
                "rto_seconds": 252.4,
                "rpo": {"t1": 0, "t2": 2},
                "report_md": "# 演练报告\n恢复成功。",
            }
        )
    )
    (drills / "broken.json").write_text("{not json")
    html = operator.get("/operations/backups/").content.decode()
    row = html[html.index('data-drill="20261205T030000Z-database-lost.json"') :].split("</section>")[0]
    assert "database-lost" in row and "2026-12-05 11:00" in row  # Beijing time
    assert "252.4" in row and '<dd class="lost">2</dd>' in row and 'class="passed"' in row
    assert "恢复成功。" in html
    broken = html[html.index('data-drill="broken.json"') :].split("</section>")[0]
    assert 'class="failed"' in broken and "不是可读的 JSON" in broken
    assert english_words(html) == []
    assert 'id="no-backups"' in html  # no backup in this var dir


def test_without_drills_the_page_says_so(operator, settings, tmp_path: Path):
    settings.VAR_DIR = tmp_path
    html = operator.get("/operations/backups/").content.decode()
    assert 'id="no-drills"' in html


def test_the_backups_page_lists_each_backup_with_its_latest_verification(operator, settings, tmp_path: Path):
    settings.FAPIAO_BACKUP_DIR = tmp_path / "backups"
    made = timezone.now() - timedelta(hours=30)
    for backup_id, stamp in (
        ("20261201T000000Z-aaaaaa", made - timedelta(days=1)),
        ("20261202T000000Z-bbbbbb", made),
    ):
        (settings.FAPIAO_BACKUP_DIR / backup_id).mkdir(parents=True)
        index = {
            "format": "fapiao-backup/1",
            "id": backup_id,
            "created_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "engine": "sqlite",
            "backup_key_id": "k-test",
            "files": 3,
        }
        (settings.FAPIAO_BACKUP_DIR / backup_id / "backup.json").write_text(json.dumps(index))
    (settings.FAPIAO_BACKUP_DIR / ".partial-20261203T000000Z-cccccc").mkdir()  # unfinished: not listed
    now = timezone.now()
    BackupVerification.objects.create(
        backup_id="20261202T000000Z-bbbbbb", started_at=now, finished_at=now - timedelta(hours=1), ok=False
    )
    BackupVerification.objects.create(
        backup_id="20261202T000000Z-bbbbbb", started_at=now, finished_at=now, ok=True
    )
    html = operator.get("/operations/backups/").content.decode()
    listed = re.findall(r'<section class="card" data-backup="([^"]+)">', html)
    assert listed == ["20261202T000000Z-bbbbbb", "20261201T000000Z-aaaaaa"]  # newest first
    newest = html[html.index('data-backup="20261202T000000Z-bbbbbb"') :].split("</section>")[0]
    assert "30.0 小时" in newest  # its age
    assert 'class="passed"' in newest  # the latest of its two verifications
    assert "k-test" in newest
    assert "没有可读取的备份密钥" in newest  # no key here: the key versions are unknown
    oldest = html[html.index('data-backup="20261201T000000Z-aaaaaa"') :].split("</section>")[0]
    assert "从未验证" in oldest
    assert english_words(html) == []

    settings.FAPIAO_BACKUP_KEY = base64.b64encode(bytes(range(32))).decode()  # not the backups' key
    html = operator.get("/operations/backups/").content.decode()
    newest = html[html.index('data-backup="20261202T000000Z-bbbbbb"') :].split("</section>")[0]
    assert "打不开这个备份的清单" in newest and "fapiao backup verify 20261202T000000Z-bbbbbb" in newest
    assert english_words(html) == []


def test_counts_a_lost_flush_did_not_write_wait_for_the_next(demo, settings, monkeypatch):
    """A batch that fails before running its jobs (the database down) drops the flush unrun: the
    counts stay pending and the next answer, a few seconds on, queues another flush."""

    class DroppingWriter:
        def __init__(self) -> None:
            self.jobs: list[Any] = []

        def enqueue(self, job: Any) -> None:
            self.jobs.append(job)

    dropping = DroppingWriter()
    settings.FAPIAO_WRITE_BATCHING = True
    monkeypatch.setattr(hourly, "writer", lambda: dropping)
    monkeypatch.setattr(hourly, "RESCHEDULE_SECONDS", 3600.0)
    hourly.note(503)
    hourly.note(503)
    assert len(dropping.jobs) == 1  # one flush queued; the batch "fails" and never runs it
    assert count_of(hourly.UNAVAILABLE) == 0
    monkeypatch.setattr(hourly, "RESCHEDULE_SECONDS", 0.0)  # time passes
    hourly.note(401)
    assert len(dropping.jobs) == 2
    dropping.jobs[-1]()  # this batch runs
    assert count_of(hourly.UNAVAILABLE) == 2
    assert count_of(hourly.REFUSED) == 1
