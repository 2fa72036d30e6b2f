"""`fapiao ledger replay`: entries a restore lost come back from the receipts merchants kept.

A restore is simulated on the test database by deleting, as a backup taken at size K would not
have them, every entry from K on with its nodes, heads, invoice rows and number registrations,
and the segment's progress; the witness file keeps what it saw.  Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import F

from fapiao.accounts.models import Merchant, NumberSegment
from fapiao.core.canonical import canonical_bytes
from fapiao.invoices.models import Invoice, InvoiceLine, OutgoingNumber
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead
from fapiao.ledger.verify import verify_ledger
from fapiao.recovery.models import ReplayedInvoice
from fapiao.recovery.replay import replay_receipts
from tests.conftest import VALID_INVOICE

pytestmark = pytest.mark.django_db
MERCHANT = "91110108MA01ABCD84"  # the clerk's
OTHER = "91110105MA01EFGH56"  # clerk2's


@pytest.fixture
def witness_file(_isolated_files: None, settings: Any, tmp_path: Path) -> Path:
    settings.KEYS_DIR = tmp_path / "keys"
    settings.FAPIAO_WITNESS_FILE = tmp_path / "witness" / "heads.jsonl"
    return Path(settings.FAPIAO_WITNESS_FILE)


def issue(client: Any, invoice: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/invoices", data=json.dumps(invoice), content_type="application/json")
    assert response.status_code == 201, response.content
    receipt: dict[str, Any] = response.json()["receipt"]
    return receipt


def sealed_invoice() -> dict[str, Any]:
    invoice = copy.deepcopy(VALID_INVOICE)
    invoice["buyer"] = {**invoice["buyer"], "address": "北京市海淀区中关村大街1号", "phone": "010-12345678"}
    return invoice


def keep(folder: Path, receipts: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for receipt in receipts:
        path = folder / f"{receipt['log']}-{receipt['index']:06d}.json"
        path.write_text(json.dumps(receipt, ensure_ascii=False), encoding="utf-8")
    return folder


def lose_after(uscc: str, size: int) -> list[str]:
    """What a restore of a backup taken at ``size`` leaves of this log: returns the lost numbers."""
    merchant = Merchant.objects.get(uscc=uscc)
    lost = list(Invoice.objects.filter(merchant=merchant, ledger_seq__gte=size).order_by("ledger_seq"))
    numbers = [invoice.number for invoice in lost]
    InvoiceLine.objects.filter(invoice__in=lost).delete()
    Invoice.objects.filter(pk__in=[i.pk for i in lost]).delete()
    OutgoingNumber.objects.filter(number__in=numbers).delete()
    LogEntry.objects.filter(merchant=merchant, seq__gte=size).delete()
    for node in LogNode.objects.filter(merchant=merchant):
        if (node.index + 1) << node.level > size:
            node.delete()
    TreeHead.objects.filter(merchant=merchant, size__gt=size).delete()
    Log.objects.filter(merchant=merchant).update(size=size)
    if numbers:
        first = int(numbers[0][5:])
        NumberSegment.objects.filter(
            merchant=merchant,
            year=int(numbers[0][:2]),
            province=numbers[0][2:4],
            channel=int(numbers[0][4]),
            first_serial__lte=first,
            last_serial__gte=first,
        ).update(next_serial=first)
    return numbers


def findings(uscc: str) -> list[str]:
    report = verify_ledger(merchant=uscc, workers=0)
    return [f"{f.code}/{f.variant}:{f.index}" for f in report.all_findings() if f.severity.name == "ERROR"]


def replay_command(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("ledger", "replay", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.fixture
def issued(witness_file: Path, client_for: Any, tmp_path: Path) -> list[dict[str, Any]]:
    """Seven invoices of the clerk's merchant (the fifth with sealed buyer fields), their receipts kept."""
    clerk = client_for("clerk")
    receipts = []
    for number in range(7):
        receipts.append(issue(clerk, sealed_invoice() if number == 4 else copy.deepcopy(VALID_INVOICE)))
    assert findings(MERCHANT) == []
    return receipts


def test_replay_brings_back_every_lost_entry_and_row(issued, tmp_path, client_for):
    before = {i.number: (i.total_with_tax, i.ledger_seq, i.buyer_sealed) for i in Invoice.objects.all()}
    bodies = {e.seq: bytes(e.body) for e in LogEntry.objects.all()}
    lost = lose_after(MERCHANT, 3)
    assert len(lost) == 4
    assert {f.split(":")[0] for f in findings(MERCHANT)} == {"witness_mismatch/smaller"}

    report = replay_receipts([keep(tmp_path / "kept", issued)])

    assert report.ok, report.refused
    (log,) = report.logs
    assert (log.size_before, log.appended, log.held) == (3, [3, 4, 5, 6], [])
    assert log.present == 3
    assert Log.objects.get(merchant__uscc=MERCHANT).size == 7
    assert {e.seq: bytes(e.body) for e in LogEntry.objects.all()} == bodies  # original numbers and bytes
    after = {i.number: (i.total_with_tax, i.ledger_seq, i.buyer_sealed) for i in Invoice.objects.all()}
    assert after == before
    awaiting = ReplayedInvoice.objects.filter(awaiting_buyer=True)
    assert [r.seq for r in awaiting] == [4] and log.awaiting_buyer == [lost[1]]
    assert ReplayedInvoice.objects.count() == 4
    assert findings(MERCHANT) == []
    # The segment moved past the replayed numbers: the next invoice takes a fresh one.
    receipt = issue(client_for("clerk"), copy.deepcopy(VALID_INVOICE))
    assert receipt["index"] == 7
    assert Invoice.objects.get(ledger_seq=7).number not in before
    assert findings(MERCHANT) == []
    # A second replay finds every entry present and appends nothing.
    again = replay_receipts([tmp_path / "kept"])
    assert again.ok and again.appended == 0 and again.logs[0].present == 7


def test_a_gap_no_receipt_covers_holds_every_receipt_beyond_it(issued, tmp_path):
    lose_after(MERCHANT, 2)
    kept = keep(tmp_path / "kept", [r for r in issued if r["index"] != 4])
    code, out, err = replay_command(str(kept))
    assert code == 3, (out, err)
    assert f"log {MERCHANT}" in out or MERCHANT in out
    assert "4" in err and "000005" in err and "000006" in err  # held receipts are named
    assert Log.objects.get(merchant__uscc=MERCHANT).size == 4
    assert sorted(LogEntry.objects.values_list("seq", flat=True)) == [0, 1, 2, 3]
    assert {f.split(":")[0] for f in findings(MERCHANT)} == {"witness_mismatch/smaller"}
    # The missing receipt turns up: the rest follows.
    keep(kept, [issued[4]])
    code, _out, _err = replay_command(str(kept))
    assert code == 0
    assert findings(MERCHANT) == []


def _forged(receipt: dict[str, Any]) -> dict[str, Any]:
    forged = copy.deepcopy(receipt)
    entry = json.loads(base64.b64decode(forged["entry"]))
    entry["invoice"]["total_with_tax"] = "1.00"
    forged["entry"] = base64.b64encode(canonical_bytes(entry)).decode()
    return forged


def test_refused_receipts_append_nothing_and_say_why(issued, tmp_path, client_for, witness_file):
    other = issue(client_for("clerk2"), copy.deepcopy(VALID_INVOICE))
    lose_after(MERCHANT, 3)
    lose_after(OTHER, 0)
    sizes = dict(Log.objects.values_list("merchant__uscc", "size"))

    # Another merchant's receipt, when the replay is for one merchant.
    kept = keep(tmp_path / "one", [*issued, other])
    code, _out, err = replay_command(str(kept), "--merchant", MERCHANT)
    assert code == 1
    assert "拒绝" in err and OTHER in err and "未追加任何条目" in err

    report = replay_receipts([kept], merchant=MERCHANT)
    assert [r.code for r in report.refused] == ["other_merchant"]
    assert dict(Log.objects.values_list("merchant__uscc", "size")) == sizes

    # A forged receipt: its entry changed after it was signed.
    forged = keep(tmp_path / "forged", [*issued[:5], _forged(issued[5]), issued[6]])
    report = replay_receipts([forged])
    assert [(r.code, r.index) for r in report.refused] == [("bad_proof", 5)]
    assert report.appended == 0
    assert dict(Log.objects.values_list("merchant__uscc", "size")) == sizes

    # A receipt whose head the witness saw with another root.
    lines = witness_file.read_bytes().splitlines(keepends=True)
    changed = []
    for line in lines:
        item = json.loads(line)
        if item["head"]["log"] == MERCHANT and item["head"]["size"] == issued[6]["head"]["size"]:
            item["head"]["root"] = base64.b64encode(b"\x07" * 32).decode()
            changed.append((json.dumps(item, sort_keys=True) + "\n").encode())
        else:
            changed.append(line)
    witness_file.write_bytes(b"".join(changed))
    report = replay_receipts([keep(tmp_path / "witnessed", issued)])
    assert [(r.code, r.index) for r in report.refused] == [("witness_disagrees", 6)]
    assert report.appended == 0
    assert dict(Log.objects.values_list("merchant__uscc", "size")) == sizes
    assert LogEntry.objects.filter(merchant__uscc=MERCHANT).count() == 3


def test_a_receipt_the_witness_never_saw_is_refused(issued, tmp_path, witness_file):
    lose_after(MERCHANT, 3)
    witness_file.write_bytes(b"")
    report = replay_receipts([keep(tmp_path / "kept", issued[3:])])
    assert {r.code for r in report.refused} == {"witness_unseen"}
    assert report.appended == 0 and Log.objects.get(merchant__uscc=MERCHANT).size == 3


def test_unreadable_paths_are_refused_by_name(witness_file, tmp_path, demo):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    report = replay_receipts([broken, tmp_path / "missing.json"])
    assert [r.code for r in report.refused] == ["unreadable", "malformed"] or sorted(
        r.code for r in report.refused
    ) == ["malformed", "unreadable"]
    assert NumberSegment.objects.filter(next_serial__gt=F("first_serial")).count() == 0
