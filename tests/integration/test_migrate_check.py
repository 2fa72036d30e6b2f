"""`fapiao migrate` checks that the migrations changed no merchant's records (SQLite and PostgreSQL).

A test-only app (tests/lossy_migration_app, installed here only) brings two migrations after the
latest invoices migration: ``0001`` reads and writes nothing, ``0002`` botches the first merchant's
line amounts.  The check must pass the first, fail the second naming the merchant and what changed,
and open an integrity incident; nothing is checked when nothing is pending or on an empty database.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from fapiao.core.choices import IncidentKind
from fapiao.invoices.models import InvoiceLine
from fapiao.invoices.services import issue_invoice
from fapiao.ledger.models import IntegrityIncident
from fapiao.ops import migration_measures
from fapiao.ops.management.commands import migrate as fapiao_migrate
from tests.conftest import VALID_INVOICE

pytestmark = pytest.mark.django_db(transaction=True)
APP = "lossy_migration_app"
FAPIAO = Path(sys.executable).parent / "fapiao"


@pytest.fixture
def lossy_app(settings: Any):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.lossy_migration_app"]
    yield
    call_command("migrate", APP, "zero", "--no-data-check", verbosity=0)


@pytest.fixture
def invoices(demo: dict[str, Any]) -> dict[str, Any]:
    for username in ("clerk", "clerk", "clerk2"):
        payload = copy.deepcopy(VALID_INVOICE)
        payload["lines"].append({**payload["lines"][0], "tax_rate": "0.13", "unit_price": "250.00"})
        issue_invoice(user=demo[username], payload=payload)
    return demo


def migrate(*args: str, **options: Any) -> str:
    from io import StringIO

    out = StringIO()
    call_command("migrate", *args, stdout=out, verbosity=1, **options)
    return out.getvalue()


def test_fapiao_migrate_is_ours_not_djangos():
    assert get_commands()["migrate"] == "fapiao.ops"


def test_a_migration_that_changes_nothing_passes_the_check(lossy_app, invoices):
    output = migrate(APP, "0001")
    assert "迁移前后数据一致：核对了 2 个商户迁移前已有的" in output
    assert not IntegrityIncident.objects.exists()


def test_a_lossy_migration_fails_names_the_merchant_and_opens_an_incident(lossy_app, invoices):
    merchant = invoices["clerk"].merchant
    lines_before = sorted(InvoiceLine.objects.filter(merchant=merchant).values_list("amount", flat=True))
    migrate(APP, "0001")
    with pytest.raises(CommandError) as failed:
        migrate(APP, "0002")
    message = str(failed.value)
    assert f"商户 {merchant.name}（{merchant.uscc}）" in message
    assert "lossy_migration_app.0002_fen_to_yuan" in message
    assert "税率 0.06 金额：迁移前 200000，迁移后 2000" in message  # two lines of 1000.00 each
    assert invoices["clerk2"].merchant.uscc not in message  # the other merchant's records are intact
    # The data really changed (the check reports, it does not invent), and an incident is open.
    lines_after = sorted(InvoiceLine.objects.filter(merchant=merchant).values_list("amount", flat=True))
    assert lines_after == [amount // 100 for amount in lines_before]
    (incident,) = IntegrityIncident.objects.all()
    assert incident.kind == IncidentKind.MIGRATION_CHANGED_DATA
    assert incident.merchant_id == merchant.pk and incident.state == "open"
    assert incident.details["migrations"] == ["lossy_migration_app.0002_fen_to_yuan"]
    measures = {change["measure"] for change in incident.details["changes"]}
    assert {measure.split(" 税率 ")[1] for measure in measures} == {"0.06 金额", "0.13 金额"}
    assert all(measure.startswith("明细 ") for measure in measures)  # only the lines changed


def test_nothing_pending_takes_no_snapshot(invoices, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(fapiao_migrate, "take_snapshot", lambda using, bound: calls.append(using))
    output = migrate()
    assert calls == [] and "No migrations to apply" in output


def test_the_check_costs_a_few_aggregate_queries(lossy_app, invoices, monkeypatch, capsys):
    spent: list[tuple[int, float]] = []

    def measured(using: str, bound: Any) -> Any:
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            snapshot = migration_measures.take_snapshot(using, bound=bound)
            spent.append((len(queries.captured_queries), time.perf_counter() - started))
        return snapshot

    monkeypatch.setattr(fapiao_migrate, "take_snapshot", measured)
    migrate(APP, "0001")
    assert len(spent) == 2  # before and after
    with capsys.disabled():
        print(f"\nmigration check: {[q for q, _ in spent]} queries, {sum(s for _, s in spent):.3f} s")
    assert all(queries <= 12 for queries, _ in spent)


def test_a_snapshot_that_cannot_be_taken_stops_before_any_migration(lossy_app, invoices, monkeypatch):
    def broken(using: str, bound: Any) -> Any:
        raise DatabaseError("no such column: invoices_invoiceline.tax_rate")

    monkeypatch.setattr(fapiao_migrate, "take_snapshot", broken)
    with pytest.raises(CommandError, match=r"无法在迁移前核对商户数据.*--no-data-check"):
        migrate(APP, "0002")
    from django.db.migrations.recorder import MigrationRecorder

    assert not MigrationRecorder(connection).migration_qs.filter(app=APP).exists()


def test_no_data_check_skips_the_check(lossy_app, invoices):
    migrate(APP, "0001")
    output = migrate(APP, "0002", no_data_check=True)
    assert "迁移前后数据一致" not in output
    assert not IntegrityIncident.objects.exists()


@pytest.mark.skipif(os.environ.get("FAPIAO_TEST_BACKEND") == "postgres", reason="a fresh SQLite file")
def test_an_empty_database_is_migrated_without_a_check(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAPIAO_", "DJANGO_"))}
    env["FAPIAO_VAR_DIR"] = str(var)
    command = [str(FAPIAO), "migrate", "--noinput", "-v", "2"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "Applying invoices.0001_initial... OK" in result.stdout
    assert "迁移前后数据一致" not in result.stdout  # no merchant table before: nothing to compare
    # What the check adds to a new database (and to the test database's setup): one look at the tables.
    spent = re.search(r"迁移前快照：0 个商户，用时 ([0-9.]+) 秒", result.stdout)
    assert spent is not None and float(spent.group(1)) < 0.05, result.stdout[-2000:]
    assert "迁移后快照" not in result.stdout


def test_writes_by_other_servers_during_the_migrations_are_not_changes(lossy_app, invoices):
    """A rolling upgrade: another server issues and voids while this one migrates."""
    from django.db.models.signals import post_migrate

    def another_server(**kwargs: Any) -> None:
        if not kwargs.get("plan") or another_server.done:  # type: ignore[attr-defined]
            return
        another_server.done = True  # type: ignore[attr-defined]
        issue_invoice(user=invoices["clerk"], payload=copy.deepcopy(VALID_INVOICE))
        issue_invoice(user=invoices["clerk2"], payload=copy.deepcopy(VALID_INVOICE))

    another_server.done = False  # type: ignore[attr-defined]
    post_migrate.connect(another_server, weak=False, dispatch_uid="test.another_server")
    try:
        output = migrate(APP, "0001")
    finally:
        post_migrate.disconnect(dispatch_uid="test.another_server")
    assert another_server.done  # type: ignore[attr-defined]
    assert "迁移前后数据一致" in output
    assert not IntegrityIncident.objects.exists()


def test_a_shortened_log_or_a_deleted_line_is_a_change(invoices):
    from django.db.models import F

    from fapiao.ledger.models import Log, LogEntry
    from fapiao.ops.migration_check import compare

    merchant = invoices["clerk"].merchant
    before = migration_measures.take_snapshot()
    assert before is not None
    issue_invoice(user=invoices["clerk2"], payload=copy.deepcopy(VALID_INVOICE))  # growth is no change
    LogEntry.objects.filter(merchant=merchant).order_by("-seq")[:1].get().delete()
    Log.objects.filter(merchant=merchant).update(size=F("size") - 1)
    InvoiceLine.objects.filter(merchant=merchant).order_by("-pk")[:1].get().delete()
    after = migration_measures.take_snapshot(bound=before.bound)
    assert after is not None
    changes = compare(before.figures, after.figures)
    assert {change.owner for change in changes} == {merchant.uscc}
    changed = {change.measure: (change.before, change.after) for change in changes}
    assert changed["账本 长度"] == (2, 1) and changed["账本 条目数"] == (2, 1)
    assert any(measure.endswith("行数") for measure in changed)


def test_the_incident_page_shows_what_changed(lossy_app, invoices, settings):
    from django.test import Client

    from tests.integration.test_web_translations import english_words

    migrate(APP, "0001")
    with pytest.raises(CommandError):
        migrate(APP, "0002")
    incident = IntegrityIncident.objects.get()
    settings.FAPIAO_OPERATOR_TOTP = False
    operator = Client()
    operator.force_login(invoices["operator"])
    html = operator.get(f"/incidents/{incident.pk}/").content.decode()
    assert "数据库迁移改变了商户的记录" in html and "执行的迁移" in html
    table = html[html.index('id="migration-changes"') :]
    assert "税率 0.06 金额" in table and "200000" in table and "2000" in table
    assert english_words(html) == []


def test_incidents_show_lists_what_changed(lossy_app, invoices):
    from io import StringIO

    migrate(APP, "0001")
    with pytest.raises(CommandError):
        migrate(APP, "0002")
    incident = IntegrityIncident.objects.get()
    out = StringIO()
    call_command("incidents", "show", str(incident.pk), stdout=out)
    shown = out.getvalue()
    assert "lossy_migration_app.0002_fen_to_yuan" in shown
    assert "税率 0.06 金额" in shown and "200000 → 2000" in shown
    assert invoices["clerk"].merchant.uscc in shown


def test_when_no_incident_can_be_written_the_command_still_names_the_changes(
    lossy_app, invoices, monkeypatch
):
    from fapiao.ops.management.commands import migrate as command

    def unwritable(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("no such table: ledger_integrityincident")

    monkeypatch.setattr(command, "report_changes", unwritable)
    migrate(APP, "0001")
    with pytest.raises(CommandError) as failed:
        migrate(APP, "0002")
    message = str(failed.value)
    assert "迁移改变了数据" in message and "已为每个商户登记" not in message
    assert "无法登记数据完整性事件" in message and "税率 0.06 金额" in message


@pytest.mark.slow  # five `fapiao` processes, a whole migration from scratch among them
@pytest.mark.skipif(os.environ.get("FAPIAO_TEST_BACKEND") == "postgres", reason="a fresh SQLite file")
def test_the_real_command_exits_1_with_the_message_and_no_traceback(tmp_path):
    root = Path(__file__).resolve().parents[2]
    var = tmp_path / "var"
    var.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAPIAO_", "DJANGO_"))}
    env.update(FAPIAO_VAR_DIR=str(var), PYTHONPATH=str(root))
    invoice = tmp_path / "invoice.json"
    invoice.write_text(json.dumps(VALID_INVOICE, ensure_ascii=False), encoding="utf-8")

    def fapiao(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FAPIAO), *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=300,
            check=False,
        )

    for step in (["migrate", "--noinput"], ["demo"], ["issue", str(invoice), "--user", "clerk"]):
        done = fapiao(*step)
        assert done.returncode == 0, done.stdout + done.stderr
    lossy_settings = "tests.lossy_migration_app.settings"
    lossy = fapiao("migrate", APP, "0002", "--noinput", DJANGO_SETTINGS_MODULE=lossy_settings)
    assert lossy.returncode == 1, lossy.stdout + lossy.stderr
    assert "迁移改变了数据" in lossy.stderr and "北京示例科技有限公司（91110108MA01ABCD84）" in lossy.stderr
    assert "Traceback" not in lossy.stderr
    listed = fapiao("incidents", "list")
    assert listed.returncode == 0 and "migration_changed_data" in listed.stdout, listed.stderr


def test_a_migration_that_fails_after_a_lossy_one_still_reports_the_loss(lossy_app, invoices):
    from io import StringIO

    migrate(APP, "0002", no_data_check=True)
    err = StringIO()
    with pytest.raises(CommandError, match="迁移失败：RuntimeError: this migration fails on purpose"):
        call_command("migrate", APP, "0004", stdout=StringIO(), stderr=err, verbosity=1)
    second = invoices["clerk2"].merchant
    assert f"商户 {second.name}（{second.uscc}）" in err.getvalue()
    assert "lossy_migration_app.0003_second_merchant_loses_a_line" in err.getvalue()
    (incident,) = IntegrityIncident.objects.all()
    assert incident.merchant_id == second.pk
    measures = {change["measure"].split()[-1] for change in incident.details["changes"]}
    assert measures == {"行数", "金额", "税额"}
