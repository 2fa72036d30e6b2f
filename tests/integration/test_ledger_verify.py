"""`fapiao ledger verify` on a real database (SQLite and PostgreSQL): clean logs, the witness,
number segments, --deep, the command's exit status and output, and the page at /ledger/verify/.

The tamper table (one database change per row, and the exact finding each must produce) is in
``test_tamper.py`` beside this file.
"""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from fapiao.accounts.models import Merchant, NumberSegment, User
from fapiao.invoices.models import Invoice
from fapiao.invoices.services import issue_invoice, red_letter_invoice
from fapiao.ledger import cli_verify
from fapiao.ledger.models import LogNode
from fapiao.ledger.verify import UnknownMerchantError, VerifyReport, verify_ledger
from tests.conftest import VALID_INVOICE

pytestmark = pytest.mark.django_db
USCC = "91110108MA01ABCD84"
OTHER = "91110105MA01EFGH56"


@dataclass
class BuiltLog:
    """The demo merchant's log: 16 blue invoices and 4 red letters, 20 entries in all."""

    merchant: Merchant
    blues: list[str]  # numbers, in issue order
    reds: list[str]
    seq: dict[str, int]  # number -> its entry's seq

    @property
    def plain(self) -> list[str]:
        """Blue invoices no red letter touches and without sealed buyer fields."""
        touched = {self.blues[0], self.blues[1], self.blues[2], self.blues[3]}
        return [number for number in self.blues if number not in touched]


def build_log(clerk: User) -> BuiltLog:
    blues: list[str] = []
    reds: list[str] = []

    def blue(**buyer: str) -> None:
        payload = copy.deepcopy(VALID_INVOICE)
        payload["lines"].append(dict(payload["lines"][0], quantity="3", unit_price="33.33"))
        payload["buyer"].update(buyer)
        blues.append(issue_invoice(user=clerk, payload=payload).body["number"])

    def red(original: str, payload: dict[str, Any]) -> None:
        reds.append(red_letter_invoice(user=clerk, number=original, payload=payload).body["number"])

    for i in range(10):
        blue(**({"phone": "13800000000", "address": "北京市海淀区中关村大街1号"} if i == 3 else {}))
    red(blues[0], {"full": True})
    red(blues[1], {"lines": [{"line_no": 2, "quantity": "1"}]})
    for _ in range(3):
        blue()
    red(blues[1], {"full": True})
    red(blues[2], {"lines": [{"line_no": 1, "quantity": "0.5"}]})
    for _ in range(3):
        blue()
    seq = dict(Invoice.objects.values_list("number", "ledger_seq"))
    return BuiltLog(Merchant.objects.get(uscc=USCC), blues, reds, seq)


@pytest.fixture
def witness_file(settings: Any, tmp_path: Path) -> Path:
    """A witness file of this test's own (the shared one has heads of other tests' logs)."""
    path = tmp_path / "witness" / "heads.jsonl"
    settings.FAPIAO_WITNESS_FILE = path
    return path


@pytest.fixture
def built(demo: dict[str, Any], witness_file: Path) -> BuiltLog:
    return build_log(demo["clerk"])


def run_command(*args: str) -> tuple[int, str, str]:
    """`fapiao ledger verify ARGS` through call_command: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("ledger", "verify", *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), err.getvalue() + str(error)
    return 0, out.getvalue(), err.getvalue()


def log_report(report: VerifyReport, uscc: str = USCC) -> Any:
    return next(log for log in report.logs if log.log == uscc)


# --- Clean -------------------------------------------------------------------------------------------


def test_a_clean_log_verifies_clean(built):
    report = verify_ledger()
    assert report.ok and report.errors == 0 and report.infos == 0, report.to_json()
    mine = log_report(report)
    assert (mine.entries, mine.size, mine.heads, mine.heads_checked, mine.invoices) == (20, 20, 20, 20, 20)
    assert mine.signatures_checked == 1
    assert mine.witness_size == 20
    assert Invoice.objects.get(number=built.blues[0]).state == "fully_red"
    assert Invoice.objects.get(number=built.blues[2]).state == "partly_red"


def test_the_command_exits_zero_and_prints_a_chinese_summary(built):
    status, out, _err = run_command()
    assert status == 0
    assert f"日志 {USCC}" in out and "条目 20 条" in out and "通过" in out


def test_the_command_speaks_english_and_json(built):
    status, out, _err = run_command("--lang", "en")
    assert status == 0 and "PASSED" in out and "20 entries" in out
    status, out, _err = run_command("--json", "--merchant", USCC.lower())
    document = json.loads(out)
    assert status == 0 and document["ok"] is True and document["format"] == "fapiao-ledger-verify/1"
    assert [log["log"] for log in document["logs"]] == [USCC]
    assert document["logs"][0]["entries"] == 20


def test_an_unknown_merchant_is_a_usage_error(built):
    with pytest.raises(UnknownMerchantError):
        verify_ledger(merchant="91110000000000000X")
    status, _out, err = run_command("--merchant", "91110000000000000X")
    assert status == 2 and err


def test_deep_checks_every_signature_and_node(built):
    report = verify_ledger(deep=True)
    assert report.ok, report.to_json()
    assert log_report(report).signatures_checked == 20


@pytest.mark.parametrize(
    ("level", "index", "expected"),
    [
        (0, 5, ("altered_entry", "node", None, 5)),
        (2, 1, ("node_mismatch", "wrong", 2, None)),
    ],
)
def test_a_corrupted_stored_node_is_found_by_deep(built, level, index, expected):
    LogNode.objects.filter(merchant=built.merchant, level=level, index=index).update(hash=bytes(32))
    assert verify_ledger().ok  # the default pass recomputes every root from the entries themselves
    report = verify_ledger(deep=True)
    (finding,) = [f for f in report.all_findings() if f.severity == "error"]
    assert (finding.code, finding.variant, finding.params.get("level"), finding.index) == expected


def test_progress_is_reported_per_phase(built, monkeypatch):
    seen = []
    verify_ledger(merchant=USCC, progress=seen.append)
    assert {(p.phase, p.done, p.total) for p in seen} == {("entries", 20, 20), ("invoices", 20, 20)}
    monkeypatch.setattr(cli_verify, "PROGRESS_EVERY", 10)
    status, _out, err = run_command("--merchant", USCC)
    assert status == 0 and f"{USCC}：条目 20/20" in err and f"{USCC}：发票 20/20" in err


@pytest.mark.django_db(transaction=True)
def test_verify_reads_from_a_snapshot_outside_a_transaction(demo, witness_file):
    build_log(demo["clerk"])
    assert verify_ledger().ok


# --- The witness -------------------------------------------------------------------------------------


def test_a_witness_behind_the_database_is_a_note_not_a_failure(built, witness_file):
    lines = witness_file.read_bytes().splitlines(keepends=True)
    witness_file.write_bytes(b"".join(lines[:-3]))
    report = verify_ledger()
    assert report.ok and report.codes(None) == {"witness_lag"}
    (note,) = list(report.all_findings())
    assert (note.variant, note.size, note.params["witness_size"]) == ("behind", 20, 17)
    status, out, _err = run_command()
    assert status == 0 and "witness_lag" in out


def test_a_missing_witness_file_is_a_note(built, witness_file):
    witness_file.unlink()
    report = verify_ledger()
    assert report.ok and [f.variant for f in report.all_findings()] == ["none"]


def test_a_write_cut_short_leaves_a_partial_line_that_is_only_a_note(built, witness_file):
    with witness_file.open("ab") as handle:
        handle.write(b'{"head": {"log": "9111')
    report = verify_ledger()
    assert report.ok and report.codes(None) == {"witness_lag"}


def test_a_log_the_database_lost_entirely_is_found_through_the_witness(built, witness_file):
    line = json.loads(witness_file.read_bytes().splitlines()[-1])
    line["head"]["log"] = "91110000MA01XKQ2TQ"
    with witness_file.open("a") as handle:
        handle.write(json.dumps(line) + "\n")
    report = verify_ledger()
    assert not report.ok
    assert [(f.code, f.variant, f.log) for f in report.findings] == [
        ("witness_mismatch", "lost_log", "91110000MA01XKQ2TQ")
    ]


def test_the_other_merchants_log_is_verified_on_its_own(built, demo):
    issue_invoice(user=demo["clerk2"], payload=copy.deepcopy(VALID_INVOICE))
    report = verify_ledger(merchant=OTHER)
    assert report.ok and [log.log for log in report.logs] == [OTHER] and report.logs[0].entries == 1


# --- Number segments -----------------------------------------------------------------------------------


def test_serials_taken_without_an_invoice_are_a_gap(built):
    segment = NumberSegment.objects.get(merchant=built.merchant, next_serial__gt=models_first_serial())
    NumberSegment.objects.filter(pk=segment.pk).update(next_serial=segment.next_serial + 2)
    report = verify_ledger()
    (gap,) = [f for f in report.all_findings() if f.severity == "error"]
    assert gap.code == "number_gap" and gap.params["count"] == 2
    assert gap.number is not None and int(gap.number[5:]) == segment.next_serial


def test_invoices_beyond_the_segments_next_serial_are_unallocated(built):
    segment = NumberSegment.objects.get(merchant=built.merchant, next_serial__gt=models_first_serial())
    NumberSegment.objects.filter(pk=segment.pk).update(next_serial=segment.next_serial - 2)
    report = verify_ledger()
    (beyond,) = [f for f in report.all_findings() if f.severity == "error"]
    assert beyond.code == "number_unallocated" and beyond.params["count"] == 2
    assert beyond.params["last"] == max(built.blues + built.reds)


def models_first_serial() -> int:
    from fapiao.accounts.demo import FIRST_SERIAL

    return FIRST_SERIAL


# --- The page --------------------------------------------------------------------------------------------


def test_the_page_needs_a_login(built):
    response = Client().get("/ledger/verify/")
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("username", ["clerk", "madmin", "support", "reviewer"])
def test_other_roles_are_refused(built, demo, username):
    client = Client()
    client.force_login(demo[username])
    assert client.get("/ledger/verify/").status_code == 403
    assert client.post("/ledger/verify/").status_code == 403


@pytest.mark.parametrize("username", ["auditor", "operator"])
def test_auditors_and_operators_run_it_from_the_page(built, demo, username):
    client = Client(enforce_csrf_checks=True)
    client.force_login(demo[username])
    form = client.get("/ledger/verify/")
    assert form.status_code == 200 and b"csrfmiddlewaretoken" in form.content
    assert client.post("/ledger/verify/").status_code == 403  # no CSRF token
    token = form.cookies["csrftoken"].value
    result = client.post("/ledger/verify/", {"csrfmiddlewaretoken": token, "deep": "on"})
    assert result.status_code == 200
    assert result.context["report"]["ok"] is True and result.context["report"]["deep"] is True
    assert USCC.encode() in result.content


def test_the_page_shows_findings(built, demo):
    Invoice.objects.filter(number=built.plain[0]).update(total_amount=1)
    client = Client()
    client.force_login(demo["auditor"])
    result = client.post("/ledger/verify/", {"merchant": USCC})
    report = result.context["report"]
    assert report["ok"] is False and report["errors"] == 1
    (finding,) = report["logs"][0]["findings"]
    assert finding["code"] == "invoice_mismatch" and finding["number"] == built.plain[0]
    assert "total_amount" in finding["message"]
    assert b"invoice_mismatch" in result.content
    unknown = client.post("/ledger/verify/", {"merchant": "nope"})
    assert unknown.status_code == 400 and unknown.context["report"] is None
