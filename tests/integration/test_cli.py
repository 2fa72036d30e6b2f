"""The `fapiao` command: tokens, issue, find, export."""

from __future__ import annotations

import csv
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from fapiao.accounts.models import ApiToken
from fapiao.accounts.services import authenticate_token
from fapiao.invoices.models import Invoice

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_token_create_prints_only_the_token(demo):
    output = run("token", "create", "clerk", "--scope", "write")
    token = output.strip()
    assert output == token + "\n" and token.startswith("fpv_") and " " not in token
    api_token = authenticate_token(token)
    assert api_token.user.username == "clerk" and api_token.scope == "write"
    assert token not in {t.digest for t in ApiToken.objects.all()}


def test_token_revoke_makes_the_token_useless(demo):
    token = run("token", "create", "clerk").strip()
    run("token", "revoke", token)
    with pytest.raises(Exception, match="token"):
        authenticate_token(token)


def test_token_for_unknown_user_is_a_clear_error(demo):
    with pytest.raises(CommandError, match="no such user"):
        run("token", "create", "nobody")


def test_issue_find_and_export(demo, tmp_path: Path, valid_invoice):
    source = tmp_path / "invoice.json"
    source.write_text(json.dumps(valid_invoice, ensure_ascii=False), encoding="utf-8")
    issued = json.loads(run("issue", str(source), "--user", "clerk"))
    assert issued["total_with_tax"] == "1060.00" and issued["receipt"]["index"] == 0

    found = [
        json.loads(line) for line in run("find", "--number", issued["number"], "--user", "clerk").splitlines()
    ]
    assert [item["number"] for item in found] == [issued["number"]]
    with pytest.raises(CommandError, match="没有找到"):
        run("find", "--number", issued["number"], "--user", "clerk2")

    today = issued["issued_on"]
    out = tmp_path / "out.csv"
    run("export", "--from", today, "--to", today, str(out), "--user", "clerk")
    rows = list(csv.reader(out.open(encoding="utf-8-sig")))
    assert rows[1][0] == issued["number"] and rows[1][10] == "1060.00"

    xlsx = tmp_path / "out.xlsx"
    run("export", "--from", today, "--to", today, str(xlsx), "--user", "clerk")
    from openpyxl import load_workbook

    sheet = load_workbook(xlsx).active
    assert sheet is not None and sheet.cell(row=2, column=1).value == issued["number"]


def test_issue_reports_every_field_error_and_writes_nothing(demo, tmp_path: Path, valid_invoice):
    valid_invoice["lines"][0]["tax_rate"] = "0.07"
    valid_invoice["buyer"]["tax_id"] = "bad"
    source = tmp_path / "invoice.json"
    source.write_text(json.dumps(valid_invoice), encoding="utf-8")
    with pytest.raises(CommandError) as raised:
        run("issue", str(source), "--user", "clerk")
    assert "lines.0.tax_rate" in str(raised.value) and "buyer.tax_id" in str(raised.value)
    assert Invoice.objects.count() == 0


def test_export_escapes_formula_prefixes(demo, tmp_path: Path, valid_invoice):
    valid_invoice["buyer"] = {"name": '=HYPERLINK("http://evil")'}
    source = tmp_path / "invoice.json"
    source.write_text(json.dumps(valid_invoice), encoding="utf-8")
    issued = json.loads(run("issue", str(source), "--user", "clerk"))
    out = tmp_path / "out.csv"
    run("export", "--from", issued["issued_on"], "--to", issued["issued_on"], str(out), "--user", "clerk")
    rows = list(csv.reader(out.open(encoding="utf-8-sig")))
    assert rows[1][6].startswith("'=")


def test_staff_cannot_issue_from_the_cli(demo, tmp_path: Path, valid_invoice):
    source = tmp_path / "invoice.json"
    source.write_text(json.dumps(valid_invoice), encoding="utf-8")
    with pytest.raises(CommandError):
        run("issue", str(source), "--user", "auditor")
    assert Invoice.objects.count() == 0


def test_cli_needs_an_acting_user(demo, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("FAPIAO_USER", raising=False)
    with pytest.raises(CommandError, match="--user"):
        run("find", "--number", "26110100000000000001", "--user", "")
