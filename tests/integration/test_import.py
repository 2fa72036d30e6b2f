"""``fapiao import``: dry run, commit, the same file twice, revert, verify, refusals.

Runs on SQLite and, in the PostgreSQL pass, on PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from fapiao.core.choices import (
    Colour,
    Direction,
    EntryKind,
    ImportRunState,
    InvoiceKind,
    InvoiceState,
    Origin,
)
from fapiao.invoices.models import ImportedRecord, ImportRun, Invoice
from fapiao.ledger.models import LogEntry
from tests.integration.import_helpers import MERCHANT, OTHER, csv_rows, save_mapping, write_csv
from tests.unit.invoice_files_factory import document, einvoice_xml

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mapping(settings: Any, tmp_path: Path) -> str:
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness.jsonl"  # this test's heads only
    settings.FAPIAO_IMPORT_MAPPINGS_DIR = tmp_path / "mappings"
    return save_mapping(settings.FAPIAO_IMPORT_MAPPINGS_DIR)


def run_import(*args: str, user: str = "madmin") -> str:
    out = StringIO()
    call_command("import", *args, "--user", user, stdout=out, stderr=StringIO())
    return out.getvalue()


def state() -> tuple[int, int, int]:
    return Invoice.objects.count(), LogEntry.objects.count(), ImportedRecord.objects.count()


def latest_run() -> ImportRun:
    run = ImportRun.objects.order_by("-pk").first()
    assert run is not None
    return run


def test_dry_run_writes_nothing_and_names_every_rejection(demo: Any, mapping: str, tmp_path: Path) -> None:
    rows = csv_rows(5)
    rows[1][2] = OTHER  # another merchant's invoice
    rows[3][9] = "abc"  # an amount that is no number
    path = write_csv(tmp_path / "a.csv", rows)
    out = run_import(str(path), "--merchant", MERCHANT, "--mapping", mapping, "--dry-run")
    assert "读取 5，可导入 3，拒绝 2，重复 0" in out
    assert "not_this_merchant" in out
    assert state() == (0, 0, 0)
    assert ImportRun.objects.count() == 0


def test_commit_stores_invoices_with_import_entries_and_a_signed_manifest(
    demo: Any, mapping: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "a.csv", csv_rows(7))
    xml = tmp_path / "b.xml"
    xml.write_bytes(einvoice_xml(document(number="26110000000000000777")))
    report = tmp_path / "report"
    out = run_import(
        str(path),
        str(xml),
        "--merchant",
        MERCHANT,
        "--mapping",
        mapping,
        "--commit",
        "--batch",
        "3",
        "--report",
        str(report),
    )
    run = latest_run()
    assert f"导入批次 {run.run_id}：读取 8，已导入 8，拒绝 0，重复 0" in out
    assert run.state == ImportRunState.COMMITTED
    invoices = Invoice.objects.filter(origin=Origin.IMPORTED, origin_ref=run.run_id)
    assert invoices.count() == 8
    entries = LogEntry.objects.filter(kind=EntryKind.IMPORT)
    assert entries.count() == 8
    assert {e.ref for e in entries} == {item["sha256"] for item in run.files}
    manifest = run.manifest["manifest"]
    assert manifest["format"] == "fapiao-import/1"
    assert manifest["counts"] == {"read": 8, "accepted": 8, "rejected": 0, "duplicates": 0}
    assert len(manifest["records"]) == 8
    assert manifest["totals"]["before"] == []
    assert manifest["totals"]["after"] == manifest["totals"]["imported"]
    assert (report / f"{run.run_id}-manifest.json").exists()
    assert "一致" in run_import("verify", run.run_id)


def test_the_same_file_twice_changes_nothing(demo: Any, mapping: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", csv_rows(6))
    args = (str(path), "--merchant", MERCHANT, "--mapping", mapping, "--commit")
    run_import(*args)
    invoices, entries = Invoice.objects.count(), LogEntry.objects.count()
    out = run_import(*args)
    assert "已导入 0，拒绝 0，重复 6" in out
    assert (Invoice.objects.count(), LogEntry.objects.count()) == (invoices, entries)


def test_another_merchants_invoice_is_refused_with_its_reason(
    demo: Any, mapping: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "a.csv", csv_rows(2, seller=OTHER))
    out = run_import(str(path), "--merchant", MERCHANT, "--mapping", mapping, "--commit")
    assert "已导入 0，拒绝 2" in out
    assert Invoice.objects.count() == 0
    reasons = ImportedRecord.objects.values_list("reasons", flat=True)
    assert all(r[0]["code"] == "not_this_merchant" for r in reasons)


def test_a_clerk_or_another_merchants_admin_may_not_import(demo: Any, mapping: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", csv_rows(1))
    with pytest.raises(CommandError, match="role_forbidden"):
        run_import(str(path), "--merchant", MERCHANT, "--mapping", mapping, "--commit", user="clerk")
    with pytest.raises(CommandError, match="not_merchant_admin"):
        run_import(str(path), "--merchant", OTHER, "--mapping", mapping, "--commit")
    assert state() == (0, 0, 0)


def test_revert_appends_entries_and_takes_invoices_out_of_totals(
    demo: Any, mapping: str, tmp_path: Path, client_for: Any
) -> None:
    path = write_csv(tmp_path / "a.csv", csv_rows(4))
    run_import(str(path), "--merchant", MERCHANT, "--mapping", mapping, "--commit")
    run = latest_run()
    entries = LogEntry.objects.count()
    out = run_import("revert", run.run_id)
    assert "已撤销导入批次" in out
    assert Invoice.objects.filter(state=InvoiceState.REVERTED).count() == 4  # kept, not deleted
    assert LogEntry.objects.count() == entries + 4
    assert LogEntry.objects.filter(kind=EntryKind.REVERT, ref=run.run_id).count() == 4
    listed = client_for("clerk").get("/api/v1/invoices").json()
    assert listed["total"] == 0
    with pytest.raises(CommandError, match="import_run_state"):
        run_import("revert", run.run_id)
    assert "一致" in run_import("verify", run.run_id)  # the manifest still holds after a revert
    out = StringIO()
    call_command("ledger", "verify", stdout=out, stderr=StringIO())  # REVERT entries fold like voids


def test_verify_names_a_tampered_invoice_row(demo: Any, mapping: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", csv_rows(3))
    run_import(str(path), "--merchant", MERCHANT, "--mapping", mapping, "--commit")
    run = latest_run()
    victim = Invoice.objects.filter(origin_ref=run.run_id).order_by("pk").first()
    assert victim is not None
    Invoice.objects.filter(pk=victim.pk).update(buyer_name="被改过的买方")
    with pytest.raises(CommandError) as caught:
        run_import("verify", run.run_id)
    assert victim.number in str(caught.value)
    Invoice.objects.filter(pk=victim.pk).update(buyer_name=victim.buyer_name)
    assert "一致" in run_import("verify", run.run_id)
    path.write_bytes(path.read_bytes().replace(b"101.00", b"101.01", 1))
    with pytest.raises(CommandError, match="找不到 SHA-256"):
        run_import("verify", run.run_id)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty"),
        (b"PK\x03\x04 truncated zip", ""),
        ("发票号码,开票日期\n".encode("gbk") + b"\xff\xfe\xfd", ""),
    ],
)
def test_broken_files_are_a_clear_problem_and_nothing_is_imported(
    demo: Any, tmp_path: Path, settings: Any, content: bytes, code: str
) -> None:
    settings.FAPIAO_IMPORT_MAPPINGS_DIR = tmp_path / "m2"
    name = save_mapping(settings.FAPIAO_IMPORT_MAPPINGS_DIR, encoding="utf-8")
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    out = run_import(str(path), "--merchant", MERCHANT, "--mapping", name, "--dry-run")
    assert "文件问题" in out
    if code:
        assert f"[{code}]" in out
    assert "可导入 0" in out
    run_import(str(path), "--merchant", MERCHANT, "--mapping", name, "--commit")
    assert Invoice.objects.count() == 0


def test_an_oversized_file_is_refused_before_it_is_read(
    demo: Any, mapping: str, tmp_path: Path, settings: Any
) -> None:
    settings.FAPIAO_IMPORT_MAX_FILE_MB = 1
    path = write_csv(tmp_path / "big.csv", csv_rows(20_000))
    with pytest.raises(CommandError, match="太大"):
        run_import(str(path), "--merchant", MERCHANT, "--mapping", mapping, "--commit")
    assert state() == (0, 0, 0)


def test_received_invoices_are_kept_apart_from_sales(
    demo: Any, mapping: str, tmp_path: Path, client_for: Any
) -> None:
    rows = csv_rows(3, seller="91110000MA01XKQ2TQ", buyer_tax_id=MERCHANT)
    for row in rows:
        row[3], row[4] = "北京供应商有限公司", "北京示例科技有限公司"
    path = write_csv(tmp_path / "in.csv", rows)
    out = run_import(str(path), "--merchant", MERCHANT, "--direction", "in", "--mapping", mapping, "--commit")
    assert "已导入 3" in out
    assert Invoice.objects.filter(direction=Direction.IN).count() == 3
    client = client_for("clerk")
    assert client.get("/api/v1/invoices?direction=in").json()["total"] == 3
    assert client.get("/api/v1/invoices?direction=out").json()["total"] == 0


def test_the_import_page_previews_imports_and_offers_the_report(
    demo: Any, mapping: str, tmp_path: Path, settings: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    settings.FAPIAO_IMPORT_UPLOADS_DIR = tmp_path / "uploads"
    client = Client()
    client.force_login(demo["madmin"])
    data = write_csv(tmp_path / "a.csv", csv_rows(3)).read_bytes()
    upload = SimpleUploadedFile("a.csv", data, content_type="text/csv")
    preview = client.post("/invoices/import/", {"file": upload, "direction": "out", "mapping": mapping})
    assert preview.status_code == 200
    assert Invoice.objects.count() == 0  # a preview writes nothing
    page = preview.content.decode()
    assert "a.csv" not in page or "sha256" in page
    sha = preview.context["source"].sha256
    done = client.post(
        "/invoices/import/commit/", {"sha256": sha, "name": "a.csv", "direction": "out", "mapping": mapping}
    )
    assert done.status_code == 302
    run = latest_run()
    assert done["Location"].endswith(f"/invoices/import/{run.run_id}/")
    assert Invoice.objects.count() == 0  # started; the page imports a batch per step
    running = client.get(done["Location"]).content.decode()
    assert "<progress" in running and f"/invoices/import/{run.run_id}/step/" in running
    step = client.post(f"/invoices/import/{run.run_id}/step/", headers={"HX-Request": "true"})
    assert step.status_code == 200
    assert step["HX-Redirect"].endswith(f"/invoices/import/{run.run_id}/")  # 3 records: one batch, done
    assert Invoice.objects.filter(origin_ref=run.run_id).count() == 3
    assert client.get(done["Location"]).status_code == 200
    manifest = client.get(f"/invoices/import/{run.run_id}/manifest/")
    assert manifest.json()["manifest"]["counts"]["accepted"] == 3
    clerk = Client()
    clerk.force_login(demo["clerk"])
    assert clerk.get("/invoices/import/").status_code == 403


def test_a_red_invoice_and_its_blue_original_in_one_import(demo: Any, mapping: str, tmp_path: Path) -> None:
    from tests.unit.invoice_files_factory import red_document

    blue, red = tmp_path / "blue.xml", tmp_path / "red.xml"
    blue.write_bytes(einvoice_xml(document()))
    red.write_bytes(einvoice_xml(red_document()))
    out = run_import(str(blue), str(red), "--merchant", MERCHANT, "--commit")
    assert "已导入 2" in out
    red_row = Invoice.objects.get(number="26110000000000000008")
    assert red_row.original is not None
    assert red_row.original.number == "26110000000000000007"
    assert red_row.original.state == InvoiceState.PARTLY_RED  # line 1 of 2 reversed
    assert list(red_row.lines.values_list("original_line_no", flat=True)) == [1]
    assert "一致" in run_import("verify", latest_run().run_id)
    assert_ledger_clean()


def assert_ledger_clean() -> None:
    """``fapiao ledger verify`` finds nothing: the stored states are those the entries give."""
    from fapiao.ledger.verify import verify_ledger

    report = verify_ledger()
    assert report.ok and report.errors == 0, report.to_json()
    call_command("ledger", "verify", stdout=StringIO(), stderr=StringIO())  # exits 0


RED_MAPPING = "with-reds"
RED_COLUMNS = {
    "number": "发票号码",
    "issued_on": "开票日期",
    "colour": "蓝红",
    "original_number": "原发票号码",
    "seller_tax_id": "销方税号",
    "seller_name": "销方名称",
    "buyer_name": "购方名称",
    "buyer_tax_id": "购方税号",
    "line_name": "项目名称",
    "quantity": "数量",
    "unit_price": "单价",
    "amount": "金额",
    "tax_rate": "税率",
    "tax": "税额",
}


def write_red_csv(path: Path, settings: Any, invoices: list[dict[str, Any]]) -> Path:
    """One CSV holding blue and red invoices (a row per line), and the mapping that reads it."""
    directory = settings.FAPIAO_IMPORT_MAPPINGS_DIR
    body = json.dumps({"name": RED_MAPPING, "columns": RED_COLUMNS}, ensure_ascii=False)
    (directory / f"{RED_MAPPING}.json").write_text(body, encoding="utf-8")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(list(RED_COLUMNS.values()))
    for invoice in invoices:
        for item in invoice["lines"]:
            writer.writerow(
                [
                    invoice["number"],
                    invoice["issued_on"],
                    "红字" if invoice["colour"] == "red" else "蓝字",
                    invoice["original_number"] or "",
                    invoice["seller"]["tax_id"],
                    invoice["seller"]["name"],
                    invoice["buyer"]["name"],
                    invoice["buyer"]["tax_id"],
                    item["name"],
                    item["quantity"],
                    item["unit_price"],
                    item["amount"],
                    item["tax_rate"],
                    item["tax"],
                ]
            )
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def blue_state() -> str:
    return Invoice.objects.get(number="26110000000000000007").state


def test_a_red_in_the_same_file_as_its_blue_takes_from_it(
    demo: Any, mapping: str, tmp_path: Path, settings: Any
) -> None:
    from tests.unit.invoice_files_factory import red_document

    both = write_red_csv(tmp_path / "both.csv", settings, [document(), red_document()])
    out = run_import(str(both), "--merchant", MERCHANT, "--mapping", RED_MAPPING, "--commit")
    assert "已导入 2" in out
    assert blue_state() == InvoiceState.PARTLY_RED
    assert_ledger_clean()


def test_reds_imported_after_their_blue_part_then_full_and_reverts_give_the_state_back(
    demo: Any, mapping: str, tmp_path: Path
) -> None:
    from tests.unit.invoice_files_factory import line, red_document

    blue = tmp_path / "blue.xml"
    blue.write_bytes(einvoice_xml(document()))
    run_import(str(blue), "--merchant", MERCHANT, "--commit")
    assert blue_state() == InvoiceState.NORMAL
    first = tmp_path / "red1.xml"
    first.write_bytes(einvoice_xml(red_document()))
    run_import(str(first), "--merchant", MERCHANT, "--commit")
    first_run = latest_run().run_id
    assert blue_state() == InvoiceState.PARTLY_RED
    assert_ledger_clean()
    rest = document(
        colour=Colour.RED,
        kind=InvoiceKind.ORDINARY,
        number="26110000000000000009",
        lines=[line(1, "*计算机外部设备*键盘", "-2", "150.00", "0.13")],
        original_number="26110000000000000007",
        remark="",
    )
    second = tmp_path / "red2.xml"
    second.write_bytes(einvoice_xml(rest))
    run_import(str(second), "--merchant", MERCHANT, "--commit")
    second_run = latest_run().run_id
    red = Invoice.objects.get(number="26110000000000000009")
    assert list(red.lines.values_list("original_line_no", flat=True)) == [2]  # matched by name and rate
    assert blue_state() == InvoiceState.FULLY_RED
    assert_ledger_clean()
    run_import("revert", second_run)
    assert blue_state() == InvoiceState.PARTLY_RED
    assert_ledger_clean()
    run_import("revert", first_run)
    assert blue_state() == InvoiceState.NORMAL
    assert_ledger_clean()
    assert "一致" in run_import("verify", first_run)


def test_my_invoices_has_tabs_all_issued_received(demo: Any, mapping: str, tmp_path: Path) -> None:
    from django.test import Client

    rows = csv_rows(2, seller="91110000MA01XKQ2TQ", buyer_tax_id=MERCHANT)
    path = write_csv(tmp_path / "in.csv", rows)
    run_import(str(path), "--merchant", MERCHANT, "--direction", "in", "--mapping", mapping, "--commit")
    client = Client()
    client.force_login(demo["clerk"])
    received = client.get("/invoices/?direction=in")
    assert received.status_code == 200
    page = received.content.decode()
    assert 'href="?direction=in" aria-current="page"' in page
    assert rows[0][0] in page
    assert rows[0][0] not in client.get("/invoices/?direction=out").content.decode()
    from fapiao.invoices.totals import totals_by_month_and_rate

    assert totals_by_month_and_rate(user=demo["clerk"]) == []  # sales (销项) only by default
    received_totals = totals_by_month_and_rate(user=demo["clerk"], direction="in")  # 进项, apart
    assert sum(row.invoices for row in received_totals) == 2


def test_resume_refuses_a_finished_run_and_other_files(demo: Any, mapping: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", csv_rows(2))
    run_import(str(path), "--merchant", MERCHANT, "--mapping", mapping, "--commit")
    run = latest_run()
    args = ("--merchant", MERCHANT, "--mapping", mapping, "--commit", "--resume", run.run_id)
    with pytest.raises(CommandError, match="import_run_state"):
        run_import(str(path), *args)
    ImportRun.objects.filter(pk=run.pk).update(state=ImportRunState.RUNNING)  # as if killed
    other = write_csv(tmp_path / "b.csv", csv_rows(2, start=50))
    with pytest.raises(CommandError, match="import_files_changed"):
        run_import(str(other), *args)
    with pytest.raises(CommandError, match="import_run_not_found"):
        run_import(str(path), "--merchant", MERCHANT, "--mapping", mapping, "--commit", "--resume", "imp-x")


def test_a_number_taken_meanwhile_stops_the_run_cleanly_and_resume_finishes(
    demo: Any, mapping: str, tmp_path: Path, monkeypatch: Any
) -> None:
    from fapiao.invoices import importing

    path = write_csv(tmp_path / "a.csv", csv_rows(6))
    real = importing._write_batch
    calls = {"n": 0}

    def failing_second(run: Any, user: Any, batch: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            from django.db import IntegrityError

            raise IntegrityError("simulated")
        real(run, user, batch)

    monkeypatch.setattr(importing, "_write_batch", failing_second)
    with pytest.raises(CommandError, match="--resume"):
        run_import(str(path), "--merchant", MERCHANT, "--mapping", mapping, "--commit", "--batch", "2")
    assert Invoice.objects.count() == 2 == ImportedRecord.objects.count()
    monkeypatch.setattr(importing, "_write_batch", real)
    run = latest_run()
    resume = ("--commit", "--resume", run.run_id)
    out = run_import(str(path), "--merchant", MERCHANT, "--mapping", mapping, *resume)
    assert "已导入 6" in out
    assert Invoice.objects.count() == 6 == LogEntry.objects.count()
    assert "一致" in run_import("verify", run.run_id)


def test_a_step_that_loses_a_race_answers_with_the_progress(
    demo: Any, mapping: str, tmp_path: Path, settings: Any, monkeypatch: Any
) -> None:
    from django.db import IntegrityError

    from fapiao.invoices import importing

    settings.FAPIAO_IMPORT_UPLOADS_DIR = tmp_path / "uploads"
    data = write_csv(tmp_path / "a.csv", csv_rows(3)).read_bytes()
    source = importing.keep_upload(user=demo["madmin"], name="a.csv", data=data)
    options = importing.ImportOptions(demo["madmin"].merchant, Direction.OUT, importing_mapping(mapping))
    run = importing.commit_import(user=demo["madmin"], options=options, sources=[source], max_batches=0)

    def raced(*args: Any, **kwargs: Any) -> None:
        raise IntegrityError("the other step wrote this batch")

    monkeypatch.setattr(importing, "_write_batch", raced)
    assert importing.import_step(user=demo["madmin"], run_id=run.run_id).state == ImportRunState.RUNNING
    monkeypatch.undo()
    assert importing.import_step(user=demo["madmin"], run_id=run.run_id).state == ImportRunState.COMMITTED


def importing_mapping(name: str) -> Any:
    import importlib

    return importlib.import_module("fapiao.invoices.management.commands.import").load_mapping(name)
