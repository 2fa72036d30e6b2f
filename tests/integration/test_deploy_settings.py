"""Production settings pass Django's deployment checks; the schema is ready to distribute by merchant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.db import models

ROOT = Path(__file__).resolve().parents[2]


def test_production_settings_pass_check_deploy(tmp_path: Path):
    env = {
        **os.environ,
        "FAPIAO_PRODUCTION": "1",
        "FAPIAO_SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-9f8e7d6c5b4a",
        "FAPIAO_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "fapiao.settings",
    }
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Tables that belong to one merchant are distributed by merchant on Citus (DESIGN.md §9); the rest
# are reference or coordinator tables.  A new table must be listed here.
DISTRIBUTED_BY_MERCHANT = {
    "invoices.Invoice",
    "invoices.InvoiceLine",
    "ledger.Log",
    "ledger.LogEntry",
    "ledger.LogNode",
    "ledger.TreeHead",
    "catalogue.Buyer",
    "catalogue.Product",
    "catalogue.Batch",
    "catalogue.BatchRow",
    "recovery.Case",
    "recovery.Evidence",
    "recovery.CaseMessage",
    "recovery.CaseEvent",
    "recovery.SupersededNumber",
    "documents.Document",
    "documents.Delivery",
}
REFERENCE = {
    "accounts.Merchant",
    "accounts.User",
    "accounts.NumberSegment",
    "accounts.ApiToken",
    "accounts.Invitation",
    "platform.IdempotencyRecord",
    "invoices.OutgoingNumber",  # one merchant per outgoing number, across merchants: keyed by the number
    "ledger.IntegrityIncident",
    "ledger.VerifyRun",  # a run covers every merchant's log
    "ops.BackupVerification",  # a backup covers every merchant
    "audit.AuditVerifyRun",  # likewise for the audit logs
    "recovery.AcceptanceCounter",  # the 受理编号 counter is one sequence for all merchants
    "recovery.Notification",  # per user; staff notifications span merchants
    "platform.RateCounter",  # per client address or token, across merchants: a coordinator (local) table
}
# The audit trail's tables are distributed by their log, whose id is the merchant's id (the staff
# log's is 0): co-located with the merchant's tables, and every unique key includes the log.
DISTRIBUTED_BY_LOG = {
    "audit.AuditRecord",
    "audit.AuditNode",
    "audit.AuditHead",
}
REFERENCE |= {"audit.AuditLog"}
FRAMEWORK_APPS = {"admin", "auth", "contenttypes", "sessions", "axes"}  # axes: sign-in attempts


def ours() -> list[type[models.Model]]:
    return [m for m in apps.get_models() if m._meta.app_label not in FRAMEWORK_APPS]


def test_every_table_is_classified():
    labels = {model._meta.label for model in ours()}
    unclassified = labels - DISTRIBUTED_BY_MERCHANT - DISTRIBUTED_BY_LOG - REFERENCE
    assert unclassified == set(), "classify these tables in test_deploy_settings.py (DESIGN.md §9)"


@pytest.mark.parametrize("label", sorted(DISTRIBUTED_BY_LOG))
def test_log_distributed_tables_key_everything_by_log(label: str):
    model = apps.get_model(label)
    assert "log" in {field.name for field in model._meta.get_fields()}, f"{label} needs a log column"
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            assert "log" in constraint.fields, f"{label}.{constraint.name} must include the log"
    for field in model._meta.get_fields():
        if getattr(field, "unique", False) and not field.primary_key:
            pytest.fail(f"{label}.{field.name} is unique without the log")


@pytest.mark.parametrize("label", sorted(DISTRIBUTED_BY_MERCHANT))
def test_distributed_tables_key_everything_by_merchant(label: str):
    model = apps.get_model(label)
    field_names = {field.name for field in model._meta.get_fields()}
    assert "merchant" in field_names, f"{label} needs a merchant column"
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            assert "merchant" in constraint.fields, f"{label}.{constraint.name} must include merchant"
    for field in model._meta.get_fields():
        if getattr(field, "unique", False) and not field.primary_key and field.name != "merchant":
            pytest.fail(f"{label}.{field.name} is unique without the merchant")
