"""What a `ledger verify` run leaves behind: a recorded run for /readyz, and an integrity incident
for each log it found wrong (fapiao.ledger.verify_runs)."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.utils import timezone

from fapiao.ledger.models import IntegrityIncident, LogEntry, VerifyRun

pytestmark = pytest.mark.django_db

USCC = "91110108MA01ABCD84"  # the clerk's merchant


@pytest.fixture(autouse=True)
def _own_witness(settings: Any, tmp_path: Path) -> None:
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"


def issue(client: Any, invoice: dict[str, Any]) -> str:
    response = client.post("/api/v1/invoices", data=json.dumps(invoice), content_type="application/json")
    assert response.status_code == 201, response.content
    number: str = response.json()["number"]
    return number


def verify(*args: str) -> tuple[int, str]:
    """`fapiao ledger verify ARGS`: (exit status, stderr)."""
    err = io.StringIO()
    try:
        call_command("ledger", "verify", *args, stdout=io.StringIO(), stderr=err)
    except CommandError as error:
        return error.returncode, err.getvalue()
    return 0, err.getvalue()


def alter_entry(number: str) -> None:
    """What an intruder with database access would do: change an amount in a signed entry."""
    entry = LogEntry.objects.get(invoice_number=number)
    altered = bytes(entry.body).replace(b'"1000.00"', b'"10.00"', 1)
    assert altered != bytes(entry.body)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {LogEntry._meta.db_table} SET body = %s WHERE id = %s", [altered, entry.pk])  # noqa: S608


def age_everything(hours: int) -> None:
    """Entries and verify runs as if written ``hours`` ago (raw SQL: entries are append-only)."""
    then = timezone.now() - timedelta(hours=hours)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {LogEntry._meta.db_table} SET created_at = %s", [then])  # noqa: S608
        cursor.execute(f"UPDATE {VerifyRun._meta.db_table} SET finished_at = %s", [then])  # noqa: S608


def readyz() -> dict[str, Any]:
    response = Client().get("/readyz")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_a_failed_verify_opens_one_incident_for_the_damaged_log(client_for, valid_invoice):
    clerk, other = client_for("clerk"), client_for("clerk2")
    numbers = [issue(clerk, valid_invoice) for _ in range(3)]
    issue(other, valid_invoice)  # another merchant's log, untouched
    assert verify() == (0, "")
    alter_entry(numbers[1])

    status, err = verify()
    assert status == 1
    (incident,) = IntegrityIncident.objects.all()
    assert (incident.kind, incident.state, incident.merchant.uscc) == ("verify_failed", "open", USCC)
    assert incident.details["log"] == USCC and "altered_entry" in incident.details["summary"]
    assert f"altered_entry.leaf_hash@{USCC}#1" in incident.details["findings"]
    assert f"已为此开立数据完整性事件 {incident.pk}。" in err

    assert verify()[0] == 1  # the same damage found again: the same incident, not a second one
    assert IntegrityIncident.objects.count() == 1
    runs = list(VerifyRun.objects.order_by("pk").values_list("ok", "errors", "source", "merchant_uscc"))
    assert runs[0] == (True, 0, "cli", "") and all(run[0] is False and run[1] > 0 for run in runs[1:])

    body = readyz()
    assert body["status"] == "degraded"
    assert body["checks"]["ledger_verify"] == "failed" and body["checks"]["incidents"] == "open: 1"


def test_incidents_show_explains_a_failed_verify(client_for, valid_invoice):
    number = issue(client_for("clerk"), valid_invoice)
    alter_entry(number)
    verify("--merchant", USCC)
    incident = IntegrityIncident.objects.get()
    out = io.StringIO()
    call_command("incidents", "show", str(incident.pk), stdout=out)
    shown = dict(
        (label.strip(), value.strip())
        for label, _sep, value in (line.partition(":") for line in out.getvalue().splitlines())
    )
    assert shown["类型"] == "verify_failed" and shown["商户（日志）"] == USCC
    assert shown["发现的问题"] == f"账本条目被改动 altered_entry.leaf_hash@{USCC}#0"
    summary = "账本条目被改动（altered_entry）× 1"
    assert shown["原因"] == f"verify_failed: `ledger verify` 在日志 {USCC} 中发现 1 个问题：{summary}。"


def test_readyz_is_overdue_without_a_recent_full_verify(client_for, valid_invoice, settings, demo):
    issue(client_for("clerk"), valid_invoice)
    assert readyz()["checks"]["ledger_verify"] == "ok"  # everything is younger than the limit
    age_everything(hours=settings.FAPIAO_VERIFY_MAX_AGE_HOURS + 1)
    body = readyz()
    assert body["checks"]["ledger_verify"] == "overdue" and body["status"] == "degraded"

    assert verify("--merchant", USCC)[0] == 0  # one merchant's log is not the whole ledger
    assert readyz()["checks"]["ledger_verify"] == "overdue"
    assert verify()[0] == 0
    body = readyz()
    assert body["checks"]["ledger_verify"] == "ok" and body["status"] == "ok"
    auditor = Client()
    auditor.force_login(demo["auditor"])
    assert "执行者 命令行：通过" in auditor.get("/ledger/verify/").content.decode()

    age_everything(hours=settings.FAPIAO_VERIFY_MAX_AGE_HOURS + 1)  # the run itself grows old
    assert readyz()["checks"]["ledger_verify"] == "overdue"


def test_the_verification_page_records_the_run_and_names_the_incident(client_for, valid_invoice, demo):
    number = issue(client_for("clerk"), valid_invoice)
    alter_entry(number)
    auditor = Client()
    auditor.force_login(demo["auditor"])
    assert "尚无全量核验记录" in auditor.get("/ledger/verify/").content.decode()
    page = auditor.post("/ledger/verify/", {"merchant": ""}).content.decode()
    incident = IntegrityIncident.objects.get()
    assert f"数据完整性事件 {incident.pk}" in page
    run = VerifyRun.objects.get()
    assert (run.ok, run.source, run.by_id) == (False, "web", demo["auditor"].pk)
    at = timezone.localtime(run.finished_at).strftime("%Y-%m-%d %H:%M")  # Beijing time on screen
    last = auditor.get("/ledger/verify/").content.decode()
    who = demo["auditor"].display_name
    assert (
        who == "周审计" and f"上次全量核验：{at}（北京时间），执行者 {who}：未通过，发现 1 个问题。" in last
    )
