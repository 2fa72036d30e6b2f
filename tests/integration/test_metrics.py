"""``GET /metrics`` in one process (Django's test client): refused without the token, the series
it promises, counters that move with the work, gauges read from the database, no personal data.

The same across gunicorn's worker processes: ``test_metrics_gunicorn.py``.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import OperationalError
from django.shortcuts import resolve_url
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from fapiao.core.choices import IncidentKind
from fapiao.core.errors import UnavailableError
from fapiao.invoices import selectors as invoice_selectors
from fapiao.ledger import incidents
from fapiao.ledger.models import VerifyRun
from fapiao.ops import gauges
from fapiao.ops.metrics import token_matches
from fapiao.ops.models import BackupVerification
from fapiao.platform.logging import JsonFormatter
from tests.conftest import BACKEND
from tests.integration.case_helpers import claim_for, post
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db
TOKEN = "metrics-test-token-4f1b2a9c7d"
# A party's data the scrape and the log lines must never hold.
PERSONAL = {
    "resident_id": "11010519491231037X",
    "phone": "13812345678",
    "name": "张三丰",
    "bank_account": "6222021234567890128",
}
SENSITIVE_BUYER = {
    "name": PERSONAL["name"],
    "tax_id": PERSONAL["resident_id"],
    "phone": PERSONAL["phone"],
    "bank_account": PERSONAL["bank_account"],
    "address": "北京市朝阳区建国路88号院3号楼",
}

Key = tuple[str, tuple[tuple[str, str], ...]]


class Scrape:
    """One scrape's samples by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[Key, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def get(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for a labelled counter nobody has touched yet."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def names(self) -> set[str]:
        return {name for name, _labels in self.samples}

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for sample_name, labels in self.samples if sample_name == name]


@pytest.fixture
def token(settings: Any) -> str:
    settings.FAPIAO_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape() -> Scrape:
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.content.decode())


# --- the token ------------------------------------------------------------------------------------


def test_without_a_configured_token_metrics_are_switched_off(settings: Any):
    settings.FAPIAO_METRICS_TOKEN = ""
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer anything"}):
        response = Client(headers={"Accept-Language": "en"}).get("/metrics", headers=headers)
        assert response.status_code == 404
        assert "FAPIAO_METRICS_TOKEN" in response.content.decode()
        assert "fapiao_" not in response.content.decode()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer ",
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
    ],
)
def test_metrics_refuse_a_missing_or_wrong_token(token: str, authorization: str | None):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = Client(headers={"Accept-Language": "en"}).get(f"/metrics?token={TOKEN}", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    body = response.content.decode()
    assert "Authorization: Bearer" in body
    assert "fapiao_" not in body


def test_metrics_answer_the_token_from_any_address(token: str):
    """Behind a proxy every request comes from loopback: the address grants nothing, the token does."""
    refused = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")
    assert refused.status_code == 401
    allowed = Client(REMOTE_ADDR="203.0.113.9").get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})
    assert allowed.status_code == 200
    assert allowed["Cache-Control"] == "no-store"


def test_token_matches():
    assert token_matches(f"Bearer {TOKEN}", TOKEN)
    assert token_matches(f"bearer  {TOKEN} ", TOKEN)
    assert not token_matches("Bearer ", "")
    assert not token_matches(f"Token {TOKEN}", TOKEN)
    assert not token_matches(f"Bearer {TOKEN.upper()}", TOKEN)


# --- the series -----------------------------------------------------------------------------------


def test_a_scrape_shows_every_promised_series(token: str, client_for: Any, valid_invoice: dict[str, Any]):
    clerk = client_for("clerk")
    assert post(clerk, "/api/v1/invoices", valid_invoice).status_code == 201
    found = scrape()
    for name in (
        "fapiao_http_requests_total",
        "fapiao_http_request_duration_seconds_bucket",
        "fapiao_http_request_duration_seconds_count",
        "fapiao_invoices_issued_total",
        "fapiao_invoices_red_lettered_total",
        "fapiao_ledger_append_duration_seconds_count",
        "fapiao_ledger_entries_appended_total",
        "fapiao_group_commit_batch_writes_count",
        "fapiao_group_commit_duration_seconds_count",
        "fapiao_signin_failures_total",
        "fapiao_signin_lockouts_total",
        "fapiao_database_up",
        "fapiao_var_dir_free_bytes",
        "fapiao_var_dir_size_bytes",
        "fapiao_ledger_last_verified_timestamp_seconds",
        "fapiao_audit_last_verified_timestamp_seconds",
        "fapiao_integrity_incidents_open",
        "fapiao_recovery_cases",
        "fapiao_recovery_cases_overdue",
        "fapiao_database_standbys_expected",
        "fapiao_metrics_source_failed",
        "fapiao_metrics_scrape_duration_seconds",
    ):
        assert name in found.names(), name
    assert found.get("fapiao_database_up") == 1
    assert found.value("fapiao_var_dir_free_bytes") > 0
    assert found.value("fapiao_var_dir_size_bytes") >= found.value("fapiao_var_dir_free_bytes")
    assert found.get("fapiao_integrity_incidents_open") == 0
    assert found.get("fapiao_database_standbys_expected") == 0
    assert {
        d["source"]: found.get("fapiao_metrics_source_failed", **d)
        for d in found.labels_of("fapiao_metrics_source_failed")
    } == {
        "audit_verification": 0,
        "backup_verification": 0,
        "cases": 0,
        "incidents": 0,
        "ledger_verification": 0,
        "replication": 0,
    }
    # Never verified: the time is 0 (overdue alerts fire) and there is no result yet.
    assert found.get("fapiao_ledger_last_verified_timestamp_seconds") == 0
    assert found.get("fapiao_ledger_last_verify_ok") is None
    assert found.get("fapiao_backup_last_verified_timestamp_seconds") == 0  # no backup verified yet
    assert found.get("fapiao_backup_last_verify_ok") is None
    # Every open state is there, overdue or not; closed states are not counted.
    states = {d["state"] for d in found.labels_of("fapiao_recovery_cases")}
    assert states == {
        "draft",
        "submitted",
        "in_review",
        "needs_info",
        "awaiting_second",
        "approved",
        "rejected",
        "resolved",
    }


def test_counters_move_when_invoices_are_issued(token: str, client_for: Any, valid_invoice: dict[str, Any]):
    clerk = client_for("clerk")
    before = scrape()
    numbers = []
    for n in range(3):
        response = clerk.post(
            "/api/v1/invoices",
            data=json.dumps(valid_invoice),
            content_type="application/json",
            headers={"Idempotency-Key": f"metrics-{n}"},
        )
        assert response.status_code == 201
        numbers.append(response.json()["number"])
    replay = clerk.post(
        "/api/v1/invoices",
        data=json.dumps(valid_invoice),
        content_type="application/json",
        headers={"Idempotency-Key": "metrics-0"},
    )
    assert replay.status_code == 201 and replay.json()["number"] == numbers[0]  # a retry issues nothing
    bad = {**valid_invoice, "lines": []}
    assert post(clerk, "/api/v1/invoices", bad).status_code == 422
    red = post(clerk, f"/api/v1/invoices/{numbers[1]}/red-letter", {"full": True})
    assert red.status_code == 201, red.content
    assert clerk.get(f"/api/v1/invoices/{numbers[2]}").status_code == 200
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("fapiao_invoices_issued_total") == 3
    assert moved("fapiao_invoices_red_lettered_total") == 1
    assert moved("fapiao_ledger_entries_appended_total") == 4
    assert moved("fapiao_ledger_append_duration_seconds_count") == 4  # one per unit of work
    issue = {"route": "/api/v1/invoices", "method": "POST"}
    assert moved("fapiao_http_requests_total", **issue, status="201") == 4
    assert moved("fapiao_http_requests_total", **issue, status="422") == 1
    assert moved("fapiao_http_request_duration_seconds_count", **issue) == 5
    assert moved("fapiao_http_request_duration_seconds_bucket", **issue, le="+Inf") == 5
    red_route = {"route": "/api/v1/invoices/<number>/red-letter", "method": "POST", "status": "201"}
    assert moved("fapiao_http_requests_total", **red_route) == 1
    one = {"route": "/api/v1/invoices/<number>", "method": "GET", "status": "200"}
    assert moved("fapiao_http_requests_total", **one) == 1
    # The scrape before counts itself in the one after.
    assert moved("fapiao_http_requests_total", route="/metrics", method="GET", status="200") == 1


def test_503s_are_counted_by_reason(token: str, client_for: Any, monkeypatch: pytest.MonkeyPatch):
    clerk = client_for("clerk")
    before = scrape()

    def database_down(**kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    def busy(**kwargs: Any) -> Any:
        raise UnavailableError()

    monkeypatch.setattr(invoice_selectors, "invoice_list", database_down)
    assert clerk.get("/api/v1/invoices").status_code == 503
    monkeypatch.setattr(invoice_selectors, "invoice_list", busy)
    assert clerk.get("/api/v1/invoices").status_code == 503
    assert clerk.get("/api/v1/invoices").status_code == 503
    after = scrape()
    moved = {
        reason: after.value("fapiao_http_unavailable_responses_total", reason=reason)
        - before.value("fapiao_http_unavailable_responses_total", reason=reason)
        for reason in ("database_unavailable", "unavailable", "other")
    }
    assert moved == {"database_unavailable": 1, "unavailable": 2, "other": 0}
    route = {"route": "/api/v1/invoices", "method": "GET", "status": "503"}
    assert (
        after.value("fapiao_http_requests_total", **route)
        - before.value("fapiao_http_requests_total", **route)
        == 3
    )


def test_failed_sign_ins_and_lockouts_are_counted(token: str, demo: Any, settings: Any):
    before = scrape()
    browser = Client()
    login = resolve_url(settings.LOGIN_URL)
    statuses = [
        browser.post(login, {"username": "clerk", "password": "wrong password"}).status_code
        for _attempt in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[-1] == 429, statuses  # the last one locks
    after = scrape()
    assert after.value("fapiao_signin_failures_total") - before.value("fapiao_signin_failures_total") == 5
    assert after.value("fapiao_signin_lockouts_total") - before.value("fapiao_signin_lockouts_total") == 1


# --- gauges read from the database ---------------------------------------------------------------


def test_the_time_and_result_of_the_last_verifications(token: str, demo: Any, settings: Any, tmp_path: Any):
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"  # this test's database only
    call_command("ledger", "verify")
    call_command("audit", "verify")
    found = scrape()
    latest = VerifyRun.objects.order_by("-finished_at").first()
    assert latest is not None
    assert found.get("fapiao_ledger_last_verified_timestamp_seconds") == pytest.approx(
        latest.finished_at.timestamp()
    )
    assert found.get("fapiao_ledger_last_verify_ok") == 1
    assert found.value("fapiao_audit_last_verified_timestamp_seconds") > timezone.now().timestamp() - 60
    assert found.get("fapiao_audit_last_verify_ok") == 1
    # A run over one merchant's log is not a run over every log.
    VerifyRun.objects.create(
        finished_at=timezone.now(), merchant_uscc="91110108MA01ABCD84", ok=False, source="cli"
    )
    assert scrape().get("fapiao_ledger_last_verify_ok") == 1
    VerifyRun.objects.create(finished_at=timezone.now(), ok=False, errors=3, source="cli")
    assert scrape().get("fapiao_ledger_last_verify_ok") == 0


def test_the_time_and_result_of_the_last_backup_verification(token: str, demo: Any):
    """Read from ops.BackupVerification: the latest *finished* one (a verification still running is not)."""
    earlier = timezone.now() - timedelta(hours=30)
    BackupVerification.objects.create(backup_id="b1", started_at=earlier, finished_at=earlier, ok=True)
    found = scrape()
    assert found.get("fapiao_backup_last_verified_timestamp_seconds") == pytest.approx(earlier.timestamp())
    assert found.get("fapiao_backup_last_verify_ok") == 1
    now = timezone.now()
    BackupVerification.objects.create(backup_id="b2", started_at=now, finished_at=now, ok=False)
    BackupVerification.objects.create(backup_id="b3", started_at=now, finished_at=None, ok=False)  # running
    found = scrape()
    assert found.get("fapiao_backup_last_verified_timestamp_seconds") == pytest.approx(now.timestamp())
    assert found.get("fapiao_backup_last_verify_ok") == 0


def test_the_audit_verify_page_records_its_run_too(token: str, demo: Any):
    auditor = Client()
    auditor.force_login(demo["auditor"])
    assert auditor.post("/audit/verify/", {"log": ""}).status_code == 200
    assert scrape().get("fapiao_audit_last_verify_ok") == 1


def test_open_incidents_are_counted(token: str, demo: Any):
    _incident, _created = incidents.open_incident(
        kind=IncidentKind.VERIFY_FAILED,
        merchant=None,
        identity={"test": "metrics"},
        details={"reason": "test"},
    )
    assert scrape().get("fapiao_integrity_incidents_open") == 1


def test_cases_by_state_and_past_their_due_time(token: str, client_for: Any, settings: Any):
    clerk = client_for("clerk")
    claims = [claim_for(f"2611100000000000{n:04d}", "2026-11-02") for n in range(3)]
    cases = [post(clerk, "/api/v1/cases", claim).json() for claim in claims]
    for case in cases[:2]:
        response = post(clerk, f"/api/v1/cases/{case['case_id']}/submit", {"version": case["version"]})
        assert response.status_code == 200, response.content
    found = scrape()
    assert found.get("fapiao_recovery_cases", state="draft") == 1
    assert found.get("fapiao_recovery_cases", state="submitted") == 2
    assert found.get("fapiao_recovery_cases_overdue", state="submitted") == 0
    due = settings.FAPIAO_CASE_DUE_HOURS["submitted"]
    with time_machine.travel(timezone.now() + timedelta(hours=due, minutes=1)):
        later = scrape()
    assert later.get("fapiao_recovery_cases_overdue", state="submitted") == 2
    assert later.get("fapiao_recovery_cases_overdue", state="in_review") == 0
    assert later.get("fapiao_recovery_cases_overdue", state="draft") is None  # drafts have no due time


def test_a_failing_source_leaves_out_only_its_own_series(token: str, demo: Any, monkeypatch: Any):
    def broken() -> Any:
        raise OperationalError("no such table")

    monkeypatch.setitem(gauges._sources, "incidents", broken)
    found = scrape()
    assert found.get("fapiao_metrics_source_failed", source="incidents") == 1
    assert found.get("fapiao_integrity_incidents_open") is None
    assert found.get("fapiao_metrics_source_failed", source="cases") == 0
    assert found.get("fapiao_recovery_cases", state="draft") == 0


@pytest.mark.postgres
def test_no_standby_no_lag_series(token: str, demo: Any):
    """A PostgreSQL primary without standbys: 0 standbys streaming, and no lag series at all."""
    found = scrape()
    assert found.get("fapiao_database_standbys") == 0
    assert found.labels_of("fapiao_database_replication_lag_seconds") == []
    assert found.labels_of("fapiao_database_replication_lag_bytes") == []


# --- no personal data ----------------------------------------------------------------------------


def test_labels_and_log_lines_hold_no_personal_data(
    token: str, client_for: Any, demo: Any, valid_invoice: dict[str, Any], caplog: pytest.LogCaptureFixture
):
    clerk = client_for("clerk")
    browser = Client()
    browser.force_login(demo["clerk"])
    with caplog.at_level(logging.INFO):
        issued = post(clerk, "/api/v1/invoices", {**valid_invoice, "buyer": SENSITIVE_BUYER})
        assert issued.status_code == 201, issued.content
        for value in PERSONAL.values():
            clerk.get("/api/v1/invoices", {"buyer": value})
            clerk.get(f"/api/v1/invoices/{value}")
            browser.get("/invoices/", {"buyer": value})
            browser.get(f"/invoices/{value}/")
            Client().get(f"/no-such-page/{value}")
        claim = claim_for("26111000000000009999", "2026-11-02")
        claim["buyer"] = {"name": PERSONAL["name"], "tax_id": PERSONAL["resident_id"]}
        assert post(clerk, "/api/v1/cases", claim).status_code == 201
        text = scrape().text
    lines = [JsonFormatter().format(record) for record in caplog.records]
    requests = [json.loads(line) for line in lines if '"logger": "fapiao.request"' in line]
    assert len(requests) >= 20
    for needle in PERSONAL.values():
        assert needle not in text, f"{needle} in the scrape"
        for line in lines:
            assert needle not in line and json.dumps(needle)[1:-1] not in line, line
    routes = {labels["route"] for labels in Scrape(text).labels_of("fapiao_http_requests_total")}
    assert "/invoices/<str:number>/" in routes and "unmatched" in routes
    for route in routes:
        assert route in {"static", "unmatched"} or route.startswith("/"), route
        assert not re.search(r"\d{6,}", route), route


def test_the_request_log_line(token: str, client_for: Any, demo: Any, caplog: pytest.LogCaptureFixture):
    clerk = client_for("clerk")
    with caplog.at_level(logging.INFO, logger="fapiao.request"):
        clerk.get("/api/v1/invoices", headers={"X-Request-Id": "req-0123456789"})
        Client().get("/healthz", headers={"X-Request-Id": "req-9876543210"})
        Client().generic("BREW", "/healthz")
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "fapiao.request"]
    listed, health, brew = lines
    assert listed["request_id"] == "req-0123456789"
    assert listed["user_id"] == demo["clerk"].pk
    assert (listed["method"], listed["route"], listed["status"]) == ("GET", "/api/v1/invoices", 200)
    assert isinstance(listed["duration_ms"], float)
    assert listed["level"] == "INFO"
    assert (health["request_id"], health["user_id"], health["route"]) == ("req-9876543210", None, "/healthz")
    assert (brew["method"], brew["status"]) == ("other", 405)


def test_the_exposition_passes_promtool(token: str, client_for: Any, valid_invoice: dict[str, Any]):
    """``promtool check metrics``: Prometheus' own lint of names, units, suffixes and help texts."""
    promtool = require_tool("promtool")
    assert post(client_for("clerk"), "/api/v1/invoices", valid_invoice).status_code == 201
    text = scrape().text
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_rules_watch_series_that_exist(token: str, settings: Any, tmp_path: Path):
    """Every fapiao_* name in deploy/prometheus/alerts.yml is exported (a typo would silence an alert);
    the standbys' are the exception on SQLite."""
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"
    call_command("ledger", "verify")  # the results are exported once there is a run
    call_command("audit", "verify")
    now = timezone.now()
    BackupVerification.objects.create(backup_id="b1", started_at=now, finished_at=now, ok=True)
    text = scrape().text
    declared = set(re.findall(r"^# TYPE (fapiao_[a-z_]+) ", text, flags=re.MULTILINE))
    exported = declared | {f"{name}_bucket" for name in declared}
    rules = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text(encoding="utf-8")
    watched = set(re.findall(r"\bfapiao_[a-z_]+", rules))
    standbys = {
        "fapiao_database_standbys",
        "fapiao_database_replication_lag_seconds",
        "fapiao_database_replication_lag_bytes",
    }
    missing = watched - exported - (standbys if BACKEND == "sqlite" else set())
    assert missing == set(), missing
