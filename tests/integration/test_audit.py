"""The audit trail: what writes records, the chain, `fapiao audit verify` against tampering,
and the auditors' API, pages and exports."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from fapiao.audit.models import STAFF_LOG, AppendOnlyError, AuditHead, AuditLog, AuditNode, AuditRecord
from fapiao.audit.services import record
from fapiao.audit.store import record_leaf, witness_path
from fapiao.audit.verify import verify_audit
from fapiao.core import merkle
from fapiao.core.signing import b64decode_strict, verify_head
from fapiao.platform import keys
from fapiao.platform.uow import run_unit

pytestmark = pytest.mark.django_db

RESIDENT_ID = "11010519491231002X"
PHONE = "13812345678"


@pytest.fixture(autouse=True)
def _own_witness(settings: Any, tmp_path: Path) -> None:
    """A witness file per test: heads of earlier tests' logs must not look like forks."""
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"


def post(client: Any, path: str, body: object, **headers: str) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def actions(log: str | None = None) -> list[str]:
    rows = AuditRecord.objects.order_by("log_id", "seq")
    if log is not None:
        rows = rows.filter(log__name=log)
    return list(rows.values_list("action", flat=True))


def merchant_log(demo: dict[str, Any]) -> str:
    return f"audit:{demo['clerk'].merchant.uscc}"


def raw(sql: str, params: list[Any]) -> None:
    """Tamper with rows directly, as someone with the database would (the ORM refuses)."""
    table = AuditRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=connection.ops.quote_name(table)), params)


# --- What writes records -----------------------------------------------------------------------


def test_issue_and_red_letter_write_masked_records_in_the_merchants_log(client_for, valid_invoice, demo):
    valid_invoice["buyer"].update(tax_id=RESIDENT_ID, phone=PHONE, address="北京市朝阳区建国路88号")
    client = client_for("clerk")
    blue = post(client, "/api/v1/invoices", valid_invoice, **{"X-Request-Id": "req-issue-0001"}).json()
    post(client, f"/api/v1/invoices/{blue['number']}/red-letter", {"full": True})

    issued = AuditRecord.objects.get(action="invoice.issue")
    assert issued.log.name == merchant_log(demo)
    assert (issued.actor_username, issued.actor_name, issued.actor_role) == ("clerk", "王开票", "clerk")
    assert issued.request_id == "req-issue-0001" and issued.client_address == "127.0.0.1"
    assert issued.target_type == "invoices.invoice" and issued.target_repr == blue["number"]
    assert issued.after["buyer"]["phone"] == "138****5678"
    assert issued.after["buyer"]["tax_id"] == "110***********002X"
    assert issued.after["ledger_index"] == 0
    stored = json.dumps([issued.before, issued.after], ensure_ascii=False)
    assert PHONE not in stored and RESIDENT_ID not in stored and "建国路88号" not in stored

    red = AuditRecord.objects.get(action="invoice.red_letter")
    assert red.before["state"] == "normal" and red.after["state"] == "fully_red"
    assert red.after["red_letter"]["colour"] == "red"
    assert verify_audit().ok


def test_idempotent_replay_writes_no_second_record(client_for, valid_invoice):
    client = client_for("clerk")
    post(client, "/api/v1/invoices", valid_invoice, **{"Idempotency-Key": "k-audit"})
    post(client, "/api/v1/invoices", valid_invoice, **{"Idempotency-Key": "k-audit"})
    assert actions().count("invoice.issue") == 1


def test_a_failed_issue_leaves_no_record(client_for, valid_invoice):
    valid_invoice["lines"][0]["quantity"] = "abc"
    assert post(client_for("clerk"), "/api/v1/invoices", valid_invoice).status_code == 422
    assert "invoice.issue" not in actions()


def test_tokens_refusals_and_reveals_are_recorded(client_for, valid_invoice, demo):
    clerk = client_for("clerk")
    assert "token.create" in actions(merchant_log(demo))
    number = post(clerk, "/api/v1/invoices", valid_invoice).json()["number"]

    anonymous = Client().get("/api/v1/invoices")
    bad_token = Client(headers={"Authorization": "Bearer fpv_nope"}).get("/api/v1/invoices")
    assert anonymous.status_code == bad_token.status_code == 401
    refused = AuditRecord.objects.filter(action="access.unauthenticated", log__name=STAFF_LOG)
    assert refused.count() == 2
    assert {row.after["code"] for row in refused} == {"unauthenticated", "invalid_token"}

    auditor = client_for("auditor")
    assert auditor.get(f"/api/v1/invoices/{number}?reveal=true").status_code == 403
    forbidden = AuditRecord.objects.get(action="access.forbidden")
    assert forbidden.actor_username == "auditor" and forbidden.log.name == STAFF_LOG
    assert forbidden.after["path"] == f"/api/v1/invoices/{number}"

    assert clerk.get(f"/api/v1/invoices/{number}?reveal=true").status_code == 200
    reveal = AuditRecord.objects.get(action="invoice.reveal")
    assert reveal.actor_username == "clerk" and reveal.target_repr == number
    assert verify_audit().ok


def test_sign_ins_and_failed_sign_ins_are_recorded(demo):
    client = Client()
    sign_in = "/login/"
    assert client.post(sign_in, {"username": "clerk", "password": "wrong-password-1"}).status_code == 200
    assert client.post(sign_in, {"username": "clerk", "password": "fapiao-demo-2026"}).status_code == 302
    client.post("/logout/")
    assert client.post(sign_in, {"username": "nobody-here", "password": "x"}).status_code == 200
    failed = AuditRecord.objects.filter(action="auth.login_failed").order_by("id")
    assert [row.after["username"] for row in failed] == ["clerk", "nobody-here"]
    assert failed[0].log.name == merchant_log(demo) and failed[1].log.name == STAFF_LOG
    assert "password" not in json.dumps([row.after for row in failed])
    assert AuditRecord.objects.filter(action="auth.login", actor_username="clerk").exists()
    assert AuditRecord.objects.filter(action="auth.logout", actor_username="clerk").exists()
    assert failed[0].client_address == "127.0.0.1"


def test_exports_are_recorded(client_for, valid_invoice, demo, tmp_path: Path):
    post(client_for("clerk"), "/api/v1/invoices", valid_invoice)
    out = tmp_path / "invoices.csv"
    call_command("export", "--user", "clerk", "--from", "2000-01-01", "--to", "2099-12-31", str(out))
    export = AuditRecord.objects.get(action="invoice.export")
    assert export.after["rows"] == 1 and export.log.name == merchant_log(demo)
    audit_out = tmp_path / "audit.xlsx"
    call_command("audit", "export", "--user", "auditor", str(audit_out), stdout=io.StringIO())
    assert AuditRecord.objects.filter(action="audit.export", actor_username="auditor").exists()


def test_records_inside_one_unit_share_one_signed_head(demo):
    clerk = demo["clerk"]

    def work(unit: Any) -> None:
        for n in range(5):
            record(actor=clerk, action="test.batch", target_type="test", target_id=str(n))

    before = AuditHead.objects.count()
    run_unit(work)
    log = AuditLog.objects.get(name=merchant_log(demo))
    assert log.sealed_size == log.size
    assert AuditHead.objects.count() == before + 1
    head = AuditHead.objects.filter(log=log).order_by("-size").first()
    assert head is not None and head.size == log.size
    document = {
        "log": log.name,
        "size": head.size,
        "root": b64(head.root),
        "at": head.at,
        "key_id": head.key_id,
    }
    assert verify_head(document, head.signature, keys.signing_key().public_raw)


def b64(data: Any) -> str:
    import base64

    return base64.b64encode(bytes(data)).decode()


def test_a_savepoint_that_fails_takes_its_records_with_it(demo):
    clerk = demo["clerk"]

    def work(unit: Any) -> None:
        record(actor=clerk, action="test.kept", target_type="test", target_id="1")
        try:
            with unit.savepoint():
                record(actor=clerk, action="test.undone", target_type="test", target_id="2")
                raise RuntimeError("fail this caller only")
        except RuntimeError:
            pass
        record(actor=clerk, action="test.kept", target_type="test", target_id="3")

    run_unit(work)
    assert "test.undone" not in actions()
    assert verify_audit().ok


def test_audit_rows_refuse_orm_updates_and_deletes(demo):
    row = record(actor=demo["clerk"], action="test.one")
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(pk=row.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditRecord.objects.filter(pk=row.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        row.delete()


# --- Verify against tampering ----------------------------------------------------------------------


@pytest.fixture
def staff_log(demo: dict[str, Any], django_capture_on_commit_callbacks: Any) -> AuditLog:
    """The staff log with records 0 … 7 (only these: no tokens were made), witnessed."""
    operator = demo["operator"]
    for n in range(8):
        with django_capture_on_commit_callbacks(execute=True):
            record(actor=operator, action="test.step", target_type="test", target_id=str(n), after={"n": n})
    log = AuditLog.objects.get(name=STAFF_LOG)
    assert log.size == 8 and verify_audit(log="staff").ok
    return log


def findings(log: str = "staff", *, deep: bool = False) -> list[tuple[str, int | None, dict[str, Any]]]:
    report = verify_audit(log=log, deep=deep)
    return [(str(f.code), f.index, dict(f.params)) for f in report.findings() if f.is_error]


def test_a_deleted_record_is_named(staff_log):
    raw("DELETE FROM {table} WHERE log_id = %s AND seq = 3", [staff_log.pk])
    assert findings() == [("record_deleted", 3, {})]


def test_an_edited_record_is_named(staff_log):
    raw("UPDATE {table} SET action = 'test.innocent' WHERE log_id = %s AND seq = 5", [staff_log.pk])
    assert findings() == [("record_edited", 5, {})]


def test_an_edited_snapshot_is_named(staff_log):
    raw("UPDATE {table} SET after = %s WHERE log_id = %s AND seq = 2", ['{"n": 99}', staff_log.pk])
    assert findings() == [("record_edited", 2, {})]


def test_swapped_records_are_named_as_moved(staff_log):
    raw("UPDATE {table} SET seq = -1 WHERE log_id = %s AND seq = 1", [staff_log.pk])
    raw("UPDATE {table} SET seq = 1 WHERE log_id = %s AND seq = 6", [staff_log.pk])
    raw("UPDATE {table} SET seq = 6 WHERE log_id = %s AND seq = -1", [staff_log.pk])
    assert findings() == [("record_moved", 1, {"other": 6}), ("record_moved", 6, {"other": 1})]


def test_a_forged_record_beyond_the_size_is_named(staff_log):
    raw(
        "INSERT INTO {table} (log_id, seq, at, actor_username, actor_name, actor_role, request_id, "
        "client_address, action, target_type, target_id, target_repr, note) "
        "VALUES (%s, 8, CURRENT_TIMESTAMP, '', '', '', '', '', 'test.forged', '', '', '', '')",
        [staff_log.pk],
    )
    assert findings() == [("record_beyond_size", 8, {"size": 8})]


def test_a_rewritten_record_with_rewritten_leaf_breaks_the_signed_heads(staff_log):
    raw("UPDATE {table} SET action = 'test.rewritten' WHERE log_id = %s AND seq = 4", [staff_log.pk])
    row = AuditRecord.objects.get(log=staff_log, seq=4)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(AuditNode._meta.db_table)} SET hash = %s "  # noqa: S608  our own table name
            'WHERE log_id = %s AND level = 0 AND "index" = 4',
            [record_leaf(staff_log.name, row), staff_log.pk],
        )
    found = findings()
    heads = sorted(params["size"] for code, _index, params in found if code == "head_root_mismatch")
    assert heads == [5, 6, 7, 8]  # every head from the rewritten record on
    assert {code for code, _index, _params in found} == {"head_root_mismatch", "witness_mismatch"}


def node_sql(statement: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(AuditNode._meta.db_table)
        cursor.execute(statement.format(table=table), params)


def test_deep_names_a_wrong_inner_node_and_only_it(staff_log):
    """Records, leaves and heads still agree, so only --deep sees it; the node above it, built
    from the original, is not named too."""
    node_sql(
        'UPDATE {table} SET hash = %s WHERE log_id = %s AND level = 1 AND "index" = 1',
        [bytes(32), staff_log.pk],
    )
    assert findings() == []
    assert findings(deep=True) == [("tree_node_wrong", None, {"level": 1, "node_index": 1})]


def test_deep_names_a_missing_inner_node(staff_log):
    node_sql('DELETE FROM {table} WHERE log_id = %s AND level = 2 AND "index" = 1', [staff_log.pk])
    assert findings(deep=True) == [("tree_node_missing", None, {"level": 2, "node_index": 1})]
    assert AuditNode.objects.filter(log=staff_log, level=3).count() == 1  # 3/0 was checked against 2/1's hash


def test_a_truncated_log_is_caught_by_the_witness(staff_log):
    with connection.cursor() as cursor:
        for model in (AuditRecord, AuditNode, AuditHead):
            table = connection.ops.quote_name(model._meta.db_table)
            column = "size" if model is AuditHead else ("seq" if model is AuditRecord else '"index"')
            cursor.execute(f"DELETE FROM {table} WHERE log_id = %s AND {column} >= 6", [staff_log.pk])  # noqa: S608
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(AuditLog._meta.db_table)} SET size = 6, sealed_size = 6 "  # noqa: S608
            "WHERE id = %s",
            [staff_log.pk],
        )
    assert witness_path().exists()
    assert ("witness_truncated", None, {"size": 8, "have": 6}) in findings()


def test_cli_verify_exits_non_zero_naming_the_problem(staff_log):
    out = io.StringIO()
    call_command("audit", "verify", "--lang", "en", stdout=out)
    assert "PASSED" in out.getvalue()
    raw("DELETE FROM {table} WHERE log_id = %s AND seq = 2", [staff_log.pk])
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("audit", "verify", "--lang", "en", stdout=out)
    assert raised.value.returncode == 1
    assert "record_deleted@audit:staff#2" in str(raised.value)
    assert "Audit record 2 was deleted." in out.getvalue()
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("audit", "verify", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["format"] == "fapiao-audit-verify/1" and report["ok"] is False
    (log,) = [item for item in report["logs"] if item["log"] == STAFF_LOG]
    assert [(f["code"], f["index"]) for f in log["findings"]] == [("record_deleted", 2)]
    assert "2" in log["findings"][0]["message_zh"] and "审计记录" in log["findings"][0]["message_zh"]


def test_cli_verify_unknown_log_is_a_usage_error(demo):
    with pytest.raises(CommandError) as raised:
        call_command("audit", "verify", "--log", "91110000000000000X")
    assert raised.value.returncode == 2


# --- Auditors: API, pages, exports ---------------------------------------------------------------


def test_api_search_filters_and_is_for_auditors_only(client_for, valid_invoice, demo):
    number = post(client_for("clerk"), "/api/v1/invoices", valid_invoice).json()["number"]
    auditor = client_for("auditor", "read")
    everything = auditor.get("/api/v1/audit").json()
    assert everything["total"] >= 2
    found = auditor.get(
        "/api/v1/audit", {"action": "invoice", "merchant": demo["clerk"].merchant.uscc}
    ).json()
    assert [item["action"] for item in found["items"]] == ["invoice.issue"]
    assert found["items"][0]["target"]["repr"] == number
    by_target = auditor.get("/api/v1/audit", {"target": number, "actor": "clerk"}).json()
    assert by_target["total"] == 1
    assert auditor.get("/api/v1/audit", {"date_from": "yesterday"}).status_code == 422
    assert client_for("clerk", "read").get("/api/v1/audit").status_code == 403
    assert client_for("operator", "read").get("/api/v1/audit").status_code == 403


def test_api_proves_a_record_against_a_signed_head(client_for, valid_invoice, demo):
    post(client_for("clerk"), "/api/v1/invoices", valid_invoice)
    auditor = client_for("auditor", "read")
    logs = {item["log"]: item for item in auditor.get("/api/v1/audit/logs").json()["logs"]}
    mine = logs[merchant_log(demo)]
    assert mine["head"]["size"] == mine["size"]
    proof = auditor.get(f"/api/v1/audit/logs/{demo['clerk'].merchant.uscc}/proof", {"index": 0}).json()
    leaf = merkle.leaf_hash(b64decode_strict(proof["record"]))
    root = b64decode_strict(proof["head"]["root"])
    hashes = [b64decode_strict(item) for item in proof["proof"]]
    assert merkle.verify_inclusion(leaf, 0, proof["head"]["size"], hashes, root)
    assert verify_head(proof["head"], proof["signature"], keys.signing_key().public_raw)
    missing = auditor.get(f"/api/v1/audit/logs/{demo['clerk'].merchant.uscc}/proof", {"index": 999})
    assert missing.status_code == 404
    without_index = auditor.get(f"/api/v1/audit/logs/{demo['clerk'].merchant.uscc}/proof")
    assert without_index.status_code == 422
    assert [(e["field"], e["code"]) for e in without_index.json()["errors"]] == [("index", "required")]


def test_auditor_pages_browse_filter_and_export_with_formula_escaping(client_for, valid_invoice, demo):
    post(client_for("clerk"), "/api/v1/invoices", valid_invoice)
    record(
        actor=demo["clerk"],
        action="test.formula",
        target_type="test",
        target_id="=1+2",
        note='=HYPERLINK("x")',
    )
    browser = Client()
    browser.force_login(demo["auditor"])
    page = browser.get("/audit/", {"action": "invoice.issue"})
    assert page.status_code == 200
    assert "invoice.issue" in page.content.decode()
    assert browser.get("/audit/", {"date_to": "not a date"}).status_code == 422
    exported = browser.get("/audit/export.csv", {"action": "invoice.issue"})
    assert exported.status_code == 200 and exported["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 2
    assert rows[1][6] == "invoice.issue"
    formula = browser.get("/audit/export.csv", {"action": "test.formula"})
    (cells,) = list(csv.reader(io.StringIO(formula.content.decode("utf-8-sig"))))[1:]
    assert cells[8] == "'=1+2" and cells[14] == '\'=HYPERLINK("x")'
    assert browser.get("/audit/export.xlsx").status_code == 200
    assert AuditRecord.objects.filter(action="audit.export").count() == 3


def test_pages_refuse_other_roles_and_record_it(demo):
    browser = Client()
    browser.force_login(demo["clerk"])
    assert browser.get("/audit/").status_code == 403
    assert browser.get("/audit/export.csv").status_code == 403
    assert AuditRecord.objects.filter(action="access.forbidden", actor_username="clerk").count() == 2
    assert Client().get("/audit/").status_code == 302  # to the sign-in page


def test_verify_page_reports_problems(staff_log, demo):
    browser = Client()
    browser.force_login(demo["auditor"])
    assert browser.get("/audit/verify/").status_code == 200
    raw("DELETE FROM {table} WHERE log_id = %s AND seq = 0", [staff_log.pk])
    page = browser.post("/audit/verify/", {"log": "staff"}, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "record_deleted" in page.content.decode()


# --- After a restore: the audit witness re-based ---------------------------------------------------


def _as_if_restored_at(log: AuditLog, size: int) -> None:
    """The log as a backup taken at ``size`` brings it back: later records, nodes and heads gone."""
    from fapiao.audit.models import AuditHead, AuditNode

    nodes = AuditNode.objects.filter(log=log).values_list("pk", "level", "index")
    later = [pk for pk, level, index in nodes if (index + 1) << level > size]
    heads = list(AuditHead.objects.filter(log=log, size__gt=size).values_list("pk", flat=True))
    with connection.cursor() as cursor:
        quote = connection.ops.quote_name
        for model, ids in ((AuditNode, later), (AuditHead, heads)):
            for pk in ids:
                cursor.execute(f"DELETE FROM {quote(model._meta.db_table)} WHERE id = %s", [pk])  # noqa: S608
        cursor.execute(
            f"DELETE FROM {quote(AuditRecord._meta.db_table)} WHERE log_id = %s AND seq >= %s",  # noqa: S608
            [log.pk, size],
        )
        cursor.execute(
            f"UPDATE {quote(AuditLog._meta.db_table)} SET size = %s, sealed_size = %s WHERE id = %s",  # noqa: S608
            [size, size, log.pk],
        )


def test_a_restore_re_bases_the_audit_witness_and_keeps_the_old_one(
    staff_log, demo, django_capture_on_commit_callbacks
):
    from fapiao.audit.store import WitnessCut, rebase_witness, witness_path

    old = witness_path().read_bytes()
    _as_if_restored_at(staff_log, 6)
    assert {code for code, _i, _p in findings()} == {"witness_truncated"}  # what a restore used to leave

    cuts, aside = rebase_witness(suffix="before-restore-test")
    assert cuts == [WitnessCut("audit:staff", 6, 7)]
    assert aside is not None and aside.read_bytes() == old  # kept as it was, beside the new one
    assert findings(deep=True) == []
    with django_capture_on_commit_callbacks(execute=True):  # new records take the lost indexes
        record(actor=demo["operator"], action="test.after_restore")
    assert findings(deep=True) == []
    # Nothing left to re-base: the file is left alone, the old one never overwritten.
    assert rebase_witness(suffix="before-restore-test") == ([], None)
    assert aside.read_bytes() == old


def test_a_re_based_witness_still_names_a_record_rewritten_inside_the_backup(staff_log):
    from fapiao.audit.store import rebase_witness

    _as_if_restored_at(staff_log, 6)
    # A forger rewrote record 2 and its leaf node: only the witness's roots still tell.
    raw("UPDATE {table} SET action = 'test.innocent' WHERE log_id = %s AND seq = 2", [staff_log.pk])
    leaf = record_leaf(STAFF_LOG, AuditRecord.objects.get(log=staff_log, seq=2))
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(AuditNode._meta.db_table)
        cursor.execute(
            f"UPDATE {table} SET hash = %s WHERE log_id = %s AND level = 0 AND {connection.ops.quote_name('index')} = 2",  # noqa: E501, S608
            [leaf, staff_log.pk],
        )
    rebase_witness(suffix="before-restore-test")
    codes = {code for code, _i, _p in findings()}
    assert "witness_mismatch" in codes and "witness_truncated" not in codes
