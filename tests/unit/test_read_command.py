"""`fapiao read FILE... [--json]`: what the readers find, printed without a database."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from fapiao.formats import cli_read
from tests.unit.invoice_files_factory import (
    FORM_ROWS,
    einvoice_xml,
    invoice_pdf,
    legacy_xml,
    ofd,
    red_document,
    xbrl,
)
from tests.unit.test_invoice_readers_table import COLUMNS, HEADER, ROWS

API_FIELDS = {"number", "issued_on", "seller", "buyer", "lines"}
API_FIELDS |= {"total_amount", "total_tax", "total_with_tax"}
LINE_FIELDS = {"name", "quantity", "unit_price", "amount", "tax_rate", "tax"}


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli_read.main(list(args), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def read_json(*args: str) -> tuple[int, list[dict]]:
    status, out, err = run(*args, "--json")
    assert err == ""
    return status, json.loads(out)["files"]


def test_each_format_in_the_api_invoice_shape(tmp_path):
    files = [
        write(tmp_path, "a.xml", einvoice_xml()),
        write(tmp_path, "b.pdf", invoice_pdf()),
        write(tmp_path, "c.ofd", ofd(attachment=einvoice_xml(), page_rows=FORM_ROWS)),
    ]
    status, reports = read_json(*files)
    assert status == 0
    assert [report["format"] for report in reports] == ["einvoice_xml", "pdf", "ofd"]
    for path, report in zip(files, reports, strict=True):
        assert report["file"] == path and report["problems"] == []
        assert len(report["sha256"]) == 64
        (invoice,) = report["invoices"]
        assert set(invoice) >= API_FIELDS
        assert invoice["number"] == "26110000000000000007"
        assert invoice["issued_on"] == "2026-11-28"
        assert invoice["seller"] == {"name": "北京示例科技有限公司", "tax_id": "91110108MA01ABCD84"}
        assert invoice["buyer"] == {"name": "北京买方贸易有限公司", "tax_id": "91110000MA01XKQ2TQ"}
        assert (invoice["total_amount"], invoice["total_tax"], invoice["total_with_tax"]) == (
            "1300.00",
            "99.00",
            "1399.00",
        )
        first = invoice["lines"][0]
        assert set(first) >= LINE_FIELDS
        assert (first["amount"], first["tax_rate"], first["tax"]) == ("1000.00", "0.06", "60.00")


def test_red_legacy_and_xbrl_invoices(tmp_path):
    status, reports = read_json(
        write(tmp_path, "red.xml", einvoice_xml(red_document())),
        write(tmp_path, "legacy.xml", legacy_xml()),
        write(tmp_path, "acc.xml", xbrl()),
    )
    assert status == 0, reports
    red, legacy, accounting = (report["invoices"][0] for report in reports)
    assert red["colour"] == "red" and red["total_with_tax"].startswith("-")
    assert red["original_number"] == "26110000000000000007"
    assert legacy["number"].endswith("-80100798") and legacy["code"]
    totals = (legacy["total_amount"], legacy["total_tax"], legacy["total_with_tax"])
    assert totals == ("100.00", "6.00", "106.00")
    assert reports[2]["format"] == "xbrl" and accounting["lines"]


def test_problems_are_listed_with_code_field_and_a_chinese_message(tmp_path):
    status, reports = read_json(write(tmp_path, "bad.xml", legacy_xml(total="107.00")))
    assert status == 1
    problem = next(p for p in reports[0]["problems"] if p["code"] == "totals_inconsistent")
    assert problem["field"] == "total_with_tax_fen"
    assert "107.00" in problem["message"] and "合计" in problem["message"]


def test_english_messages_on_request(tmp_path):
    status, out, _err = run(write(tmp_path, "bad.xml", legacy_xml(total="107.00")), "--json", "--lang", "en")
    assert status == 1
    messages = [p["message"] for p in json.loads(out)["files"][0]["problems"]]
    assert any(message.startswith("The totals do not add up") for message in messages)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"just some words\n", "unsupported_format"),
        (b"<EInvoice><broken", "not_xml"),
        (b"%PDF-1.4\n%%EOF", None),
    ],
)
def test_a_bad_file_is_a_problem_of_that_file_not_a_crash(tmp_path, data, code):
    good = write(tmp_path, "good.xml", einvoice_xml())
    status, reports = read_json(good, write(tmp_path, "bad.bin", data))
    assert status == 1
    assert reports[0]["problems"] == [] and len(reports[0]["invoices"]) == 1
    problems = reports[1]["problems"]
    assert problems and reports[1]["invoices"] == []
    if code is not None:
        assert code in {problem["code"] for problem in problems}, problems


def test_an_oversized_file_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_read, "MAX_READ_BYTES", 100)
    status, reports = read_json(write(tmp_path, "big.xml", einvoice_xml()))
    assert status == 1
    assert [p["code"] for p in reports[0]["problems"]] == ["too_large"]
    assert reports[0]["invoices"] == []


def csv_bytes() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(ROWS)
    return buffer.getvalue().encode()


def test_a_csv_export_needs_a_mapping_file(tmp_path):
    export = write(tmp_path, "export.csv", csv_bytes())
    status, reports = read_json(export)
    assert status == 1 and [p["code"] for p in reports[0]["problems"]] == ["mapping_needed"]
    mapping = tmp_path / "old-erp.json"
    mapping.write_text(json.dumps({"name": "old-erp", "columns": COLUMNS}), encoding="utf-8")
    status, reports = read_json(export, "--mapping", str(mapping))
    assert status == 0, reports
    invoice = reports[0]["invoices"][0]
    assert invoice["number"] == "26110000000000000007"
    assert invoice["total_with_tax"] == "1399.00" and len(invoice["lines"]) == 2


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda tmp: [str(tmp / "missing.xml")], "不存在"),
        (lambda tmp: [str(tmp)], "不是普通文件"),
        (lambda tmp: ["--mapping", str(tmp / "none.json"), str(tmp / "a.xml")], "列映射文件"),
    ],
)
def test_usage_errors_exit_2_and_read_nothing(tmp_path, setup, expected):
    write(tmp_path, "a.xml", einvoice_xml())
    status, out, err = run(str(tmp_path / "a.xml"), *setup(tmp_path))
    assert status == 2
    assert out == "" and expected in err and "Traceback" not in err


def test_a_bad_mapping_file_names_what_is_wrong(tmp_path):
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"name": "x", "columns": {"number": "号码"}}), encoding="utf-8")
    status, _out, err = run("--mapping", str(mapping), write(tmp_path, "a.csv", csv_bytes()))
    assert status == 2 and "m.json" in err and "issued_on" in err


def test_no_file_is_a_usage_error(capsys):
    status, _out, _err = run()
    assert status == 2 and "FILE" in capsys.readouterr().err


def test_the_summary_is_chinese(tmp_path):
    good = write(tmp_path, "a.xml", einvoice_xml())
    status, out, _err = run(good, write(tmp_path, "bad.xml", legacy_xml(total="107.00")))
    assert status == 1
    assert "数电票 XML，1 张发票，没有问题" in out
    assert "蓝字发票 26110000000000000007" in out
    assert "销售方：北京示例科技有限公司（91110108MA01ABCD84）" in out
    assert "价税合计 ¥1399.00" in out
    assert "个问题" in out and "[totals_inconsistent]" in out
