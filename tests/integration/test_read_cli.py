"""`fapiao read FILE... [--json]` run as a real command: no database, no Django, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.unit.invoice_files_factory import FORM_ROWS, einvoice_xml, invoice_pdf, legacy_xml, ofd

FAPIAO = Path(sys.executable).parent / "fapiao"
UNREACHABLE_DB = "postgresql://nobody@127.0.0.1:9/nowhere"  # any connection attempt would fail


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAPIAO_", "DJANGO_"))}
    # Settings that could not even be imported: the command must not need them.
    env.update(FAPIAO_DATABASE_URL=UNREACHABLE_DB, DJANGO_SETTINGS_MODULE="no.such.settings")
    return env


def fapiao(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FAPIAO), *args], capture_output=True, text=True, env=environment(), timeout=120, check=False
    )


def invoice_files(tmp_path: Path) -> list[str]:
    files = {
        "invoice.xml": einvoice_xml(),
        "invoice.pdf": invoice_pdf(),
        "invoice.ofd": ofd(attachment=einvoice_xml(), page_rows=FORM_ROWS),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return [str(tmp_path / name) for name in files]


def test_json_for_xml_ofd_and_pdf_files(tmp_path):
    result = fapiao("read", *invoice_files(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    reports = json.loads(result.stdout)["files"]
    assert [report["format"] for report in reports] == ["einvoice_xml", "pdf", "ofd"]
    for report in reports:
        (invoice,) = report["invoices"]
        assert invoice["number"] == "26110000000000000007"
        assert invoice["total_with_tax"] == "1399.00"
        assert invoice["seller"]["tax_id"] == "91110108MA01ABCD84"
        assert [line["tax_rate"] for line in invoice["lines"]] == ["0.06", "0.13"]
        assert report["problems"] == []


def test_problems_exit_1_with_a_chinese_summary(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_bytes(legacy_xml(total="107.00"))
    result = fapiao("read", str(bad))
    assert result.returncode == 1, result.stderr
    assert "增值税电子发票 XML，1 张发票" in result.stdout and "[totals_inconsistent]" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_missing_file_is_a_usage_error(tmp_path):
    (good,) = invoice_files(tmp_path)[:1]
    result = fapiao("read", good, str(tmp_path / "missing.pdf"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "missing.pdf" in result.stderr and "不存在" in result.stderr
    assert "Traceback" not in result.stderr


def test_read_never_imports_django(tmp_path):
    files = invoice_files(tmp_path)
    probe = (
        "import sys; from fapiao.cli import main; status = main(['read', '--json', *sys.argv[1:]]); "
        "assert 'django' not in sys.modules, 'django was imported'; raise SystemExit(status)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *files],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
