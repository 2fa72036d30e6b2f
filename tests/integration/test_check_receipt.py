"""`fapiao ledger check-receipt`: does the log still prove a receipt?  Integrity incidents and /readyz."""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from fapiao.core.choices import IncidentState
from fapiao.core.errors import ConflictError, PermissionDeniedError, ValidationFailed
from fapiao.ledger import cli_check_receipt, incidents
from fapiao.ledger.checks import check_receipt_against_log
from fapiao.ledger.models import IntegrityIncident, LogEntry, LogNode, TreeHead

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "receipts"


@pytest.fixture
def keydir(_isolated_files: None, settings: Any, tmp_path: Path) -> Path:
    settings.KEYS_DIR = tmp_path / "keys"
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"
    return tmp_path / "keys"


@pytest.fixture
def fixture_keys(keydir: Path) -> Path:
    """This installation trusts the fixtures' public test key (no private key: nothing is signed)."""
    keydir.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "keys.json", keydir / "keys.json")
    return keydir


def issue(client: Any, invoice: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/invoices", data=json.dumps(invoice), content_type="application/json")
    assert response.status_code == 201, response.content
    receipt: dict[str, Any] = response.json()["receipt"]
    return receipt


def check(path: Path, *extra: str) -> tuple[int, str, str]:
    """`fapiao ledger check-receipt PATH` as the ledger command runs it."""
    parser = argparse.ArgumentParser()
    cli_check_receipt.add_arguments(parser)
    options = vars(parser.parse_args([str(path), "--lang", "en", *extra]))
    out, err = io.StringIO(), io.StringIO()
    code = cli_check_receipt.check(options, out, err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, receipt: dict[str, Any], name: str = "receipt.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    return path


def command(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with translation.override("en"):
            call_command(*args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), err.getvalue()


def readyz(client: Any) -> dict[str, Any]:
    response = client.get("/readyz")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_a_receipt_the_log_holds_is_proven(keydir, client_for, valid_invoice, client, tmp_path):
    clerk = client_for("clerk")
    receipt = issue(clerk, valid_invoice)
    code, out, _err = check(write(tmp_path, receipt))
    assert code == 0 and out.startswith("PROVEN")
    for _ in range(3):  # the log grows: the stored head of the receipt's size still proves it
        issue(clerk, valid_invoice)
    result = check_receipt_against_log(receipt)
    assert (result.status, result.code) == ("proven", "head")
    # Without that head row, the consistency proof from the receipt's head to the current one does.
    TreeHead.objects.filter(size=1).update(root=b"\x11" * 32)
    result = check_receipt_against_log(json.dumps(receipt).encode())
    assert (result.status, result.code) == ("proven", "consistency")
    assert result.details["current"] == 4
    assert IntegrityIncident.objects.count() == 0
    body = readyz(client)
    assert body["status"] == "ok"
    assert body["checks"]["incidents"] == "ok" and body["checks"]["signing_key"] == "ok"


def test_a_tampered_entry_opens_one_incident_until_resolved(  # noqa: PLR0917  (fixtures)
    keydir, client_for, valid_invoice, client, tmp_path, caplog, django_capture_on_commit_callbacks, demo
):
    receipt = issue(client_for("clerk"), valid_invoice)
    entry = LogEntry.objects.get(seq=0)
    LogEntry.objects.filter(pk=entry.pk).update(body=bytes(entry.body).replace(b"1000.00", b"9000.00"))
    path = write(tmp_path, receipt)

    with caplog.at_level(logging.INFO, "fapiao.incidents"), django_capture_on_commit_callbacks(execute=True):
        code, out, err = check(path)
    assert code == 3, (out, err)
    assert out.startswith("NOT PROVEN (entry_altered)") and "opened" in out
    incident = IntegrityIncident.objects.get()
    assert incident.state == IncidentState.OPEN and incident.merchant_id == entry.merchant_id
    details = incident.details
    assert {k: details[k] for k in ("log", "index", "size", "root", "key_id")} == {
        "log": receipt["log"],
        "index": 0,
        "size": 1,
        "root": receipt["head"]["root"],
        "key_id": receipt["head"]["key_id"],
    }
    assert details["reason"] == "entry_altered" and details["verdict"] == "ok"
    assert "entry" not in details and "buyer" not in json.dumps(details)
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "fapiao.incidents"]
    assert [(e["event"], e["id"]) for e in logged] == [("integrity_incident.opened", incident.pk)]

    # Presenting the same receipt again finds the same incident.
    code, out, _err = check(path, "--json")
    assert code == 3 and json.loads(out)["incident"] == incident.pk
    assert json.loads(out)["incident_created"] is False
    assert IntegrityIncident.objects.count() == 1

    body = readyz(client)
    assert body["status"] == "degraded" and body["checks"]["incidents"] == "open: 1"
    assert incidents.banner_for(demo["operator"]) is not None
    assert incidents.banner_for(demo["clerk"]) is None

    code, out, _err = command("incidents", "list")
    assert code == 0 and str(incident.pk) in out and "entry_altered" in out
    code, _out, err = command("incidents", "resolve", str(incident.pk), "--note", "x", "--user", "operator")
    assert code != 0 and "Acknowledge" in err
    code, _out, err = command("incidents", "acknowledge", str(incident.pk), "--user", "clerk")
    assert code != 0 and "role" in err
    code, out, _err = command("incidents", "acknowledge", str(incident.pk), "--user", "operator")
    assert code == 0 and "acknowledged" in out
    assert readyz(client)["checks"]["incidents"] == "open: 1"  # open until resolved
    code, _out, err = command("incidents", "resolve", str(incident.pk), "--note", "  ", "--user", "operator")
    assert code != 0 and "note" in err
    code, _out, err = command(
        "incidents", "resolve", str(incident.pk), "--note", "late", "--user", "operator", "--version", "1"
    )
    assert code != 0 and "changed" in err
    note = "Entry 0 restored from the 02:00 backup; cause: manual SQL by a DBA. Merchant told."
    code, out, _err = command("incidents", "resolve", str(incident.pk), "--note", note, "--user", "operator")
    assert code == 0 and "/readyz reports ok" in out
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED and incident.resolution_note == note
    assert incident.acknowledged_by.username == incident.resolved_by.username == "operator"
    assert incident.version == 3
    assert readyz(client)["status"] == "ok"
    code, out, _err = command("incidents", "show", str(incident.pk))
    assert code == 0 and note in out
    # Resolved is final; presenting the receipt again (still not proven) opens a new incident.
    code, _out, err = command("incidents", "acknowledge", str(incident.pk), "--user", "operator")
    assert code != 0 and "resolved" in err
    assert check(path)[0] == 3
    assert IntegrityIncident.objects.filter(state="open").count() == 1


def test_a_rewritten_log_is_not_proven(keydir, client_for, valid_invoice, tmp_path):
    clerk = client_for("clerk")
    receipt = issue(clerk, valid_invoice)
    issue(clerk, valid_invoice)
    issue(clerk, valid_invoice)
    TreeHead.objects.filter(size=1).delete()
    LogNode.objects.filter(level=0, index=1).update(hash=b"\x22" * 32)
    code, out, _err = check(write(tmp_path, receipt))
    assert code == 3 and "NOT PROVEN (inconsistent)" in out
    assert IntegrityIncident.objects.get().details["reason"] == "inconsistent"


def test_a_missing_entry_is_not_proven(keydir, client_for, valid_invoice, tmp_path):
    receipt = issue(client_for("clerk"), valid_invoice)
    LogEntry.objects.all().delete()
    code, out, _err = check(write(tmp_path, receipt))
    assert code == 3 and "NOT PROVEN (entry_missing)" in out


def test_a_valid_receipt_for_a_log_that_is_gone_opens_an_incident_without_merchant(fixture_keys):
    code, out, _err = check(FIXTURES / "valid.json", "--lang", "zh")
    assert code == 3 and "log_missing" in out
    incident = IntegrityIncident.objects.get()
    assert incident.details["message"].startswith("This installation has no log")  # stored in English
    assert incident.merchant_id is None and incident.details["log"] == "91110108MA01ABCD84"
    assert incident.details["invoice_number"] == "26110100000000000002"


FORGED = [
    ("bad-format.json", "bad_format"),
    ("bad-base64.json", "bad_base64"),
    ("unknown-key.json", "unknown_key"),
    ("bad-signature.json", "bad_signature"),
    ("flipped-proof.json", "bad_proof"),
    ("index-out-of-range.json", "out_of_range"),
    ("size-out-of-range.json", "out_of_range"),
    ("other-merchant.json", "log_mismatch"),
    ("seq-mismatch.json", "seq_mismatch"),
    ("truncated.json", "malformed"),
    ("missing-field.json", "malformed"),
]


@pytest.mark.parametrize(("name", "verdict"), FORGED)
def test_forged_receipts_get_a_precise_verdict_and_no_incident(fixture_keys, demo, name, verdict):
    code, out, err = check(FIXTURES / name)
    assert code == 1
    assert out.startswith(f"INVALID RECEIPT ({verdict})")
    assert "no incident" in out and "Traceback" not in out + err
    assert IntegrityIncident.objects.count() == 0


def test_a_receipt_signed_by_a_key_compromised_at_its_time_is_invalid(fixture_keys, demo):
    shutil.copy(FIXTURES / "keys-compromised.json", fixture_keys / "keys.json")
    code, out, _err = check(FIXTURES / "valid.json", "--json")
    assert code == 1
    body = json.loads(out)
    assert body["status"] == "invalid" and body["code"] == "key_compromised" and body["incident"] is None
    assert IntegrityIncident.objects.count() == 0


def test_an_unreadable_file_is_a_usage_error(keydir, tmp_path):
    code, out, err = check(tmp_path / "nope.json")
    assert code == 2 and out == "" and "Cannot read the receipt file" in err


def test_incident_services_check_state_version_and_role(fixture_keys, demo):
    check(FIXTURES / "valid.json")  # the demo merchant's log is empty: entry_missing
    incident = IntegrityIncident.objects.get()
    operator, auditor = demo["operator"], demo["auditor"]
    with pytest.raises(PermissionDeniedError):
        incidents.acknowledge(incident_id=incident.pk, by=auditor)
    with pytest.raises(ConflictError) as stale:
        incidents.acknowledge(incident_id=incident.pk, by=operator, version=7)
    assert stale.value.code == "stale_version"
    incidents.acknowledge(incident_id=incident.pk, by=operator, version=1)
    with pytest.raises(ConflictError) as twice:
        incidents.acknowledge(incident_id=incident.pk, by=operator)
    assert twice.value.code == "incident_state"
    with pytest.raises(ValidationFailed):
        incidents.resolve(incident_id=incident.pk, by=operator, note="x" * 4001)
    with pytest.raises(incidents.IncidentNotFoundError):
        incidents.resolve(incident_id=incident.pk + 100, by=operator, note="ok")
    incidents.resolve(incident_id=incident.pk, by=operator, note="ok", version=2)
    assert incidents.open_incident_count() == 0


def test_ledger_check_receipt_is_a_subcommand_of_ledger(client_for, valid_invoice, tmp_path):
    body = (
        client_for("clerk")
        .post("/api/v1/invoices", data=json.dumps(valid_invoice), content_type="application/json")
        .json()
    )
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(body["receipt"]), encoding="utf-8")
    call_command("ledger", "check-receipt", str(path))  # proven: returns without SystemExit
    path.write_text("{", encoding="utf-8")
    with pytest.raises(SystemExit) as raised:
        call_command("ledger", "check-receipt", str(path))
    assert raised.value.code == 1
