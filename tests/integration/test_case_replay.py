"""A recovery case whose evidence is a receipt for an entry a restore lost: the automatic check says
it is replayable, and the remedy "replay from the receipt" (从回执重放) runs `fapiao ledger replay`'s
own code path, audited with the case id.  Bad receipts are said so and append nothing.

A restore is simulated as in test_ledger_replay (every entry from K on deleted with its nodes,
heads, rows and number registrations; the witness file keeps what it saw).  SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from fapiao.accounts.models import User
from fapiao.audit.models import AuditRecord
from fapiao.invoices.models import Invoice
from fapiao.ledger.models import Log, LogEntry
from fapiao.recovery.models import ReplayedInvoice
from tests.conftest import VALID_INVOICE
from tests.integration.case_helpers import act, claim_for, fetch, post, upload
from tests.integration.test_ledger_replay import (
    MERCHANT,
    OTHER,
    _forged,
    findings,
    issue,
    lose_after,
    sealed_invoice,
    witness_file,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(witness_file: Path, client_for: Any, settings: Any) -> list[dict[str, Any]]:  # noqa: F811
    """Five invoices of the clerk's merchant (the fifth with sealed buyer fields), receipts kept;
    then a restore of a backup taken at size 3 loses entries 3 and 4."""
    settings.FAPIAO_SECOND_REVIEW_ABOVE_FEN = -1
    clerk = client_for("clerk")
    receipts = [issue(clerk, sealed_invoice() if n == 4 else copy.deepcopy(VALID_INVOICE)) for n in range(5)]
    assert findings(MERCHANT) == []
    return receipts


def _entry(receipt: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(base64.b64decode(receipt["entry"]))
    return entry


def _open_case(
    clerk: Any, receipt: dict[str, Any], files: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """The clerk claims the receipt's invoice with ``files`` (name, receipt) as receipts; submits."""
    document = _entry(receipt)["invoice"]
    response = post(clerk, "/api/v1/cases", claim_for(document["number"], document["issued_on"]))
    assert response.status_code == 201, response.content
    case: dict[str, Any] = response.json()
    checks = [
        upload(clerk, case, "system_receipt", name, json.dumps(item).encode())["check"]
        for name, item in files
    ]
    case = act(clerk, fetch(clerk, case), "submit")
    case["checks"] = checks
    return case


def _approved(reviewer: Any, clerk: Any, case: dict[str, Any]) -> dict[str, Any]:
    case = act(reviewer, fetch(reviewer, case), "claim")
    return act(reviewer, case, "approve", reason_template="receipt_verified")


def test_a_lost_entry_comes_back_through_its_case(issued, client_for):
    lost = lose_after(MERCHANT, 3)
    assert len(lost) == 2
    bodies_before = dict(LogEntry.objects.values_list("seq", "body"))
    clerk, reviewer = client_for("clerk"), client_for("reviewer")
    with translation.override("zh-hans"):
        case = _open_case(clerk, issued[4], [("第5张回执.json", issued[4]), ("第4张回执.json", issued[3])])
    claimed, other = case["checks"]
    assert claimed["status"] == "verified", claimed
    # Says so in Chinese, and why: the signature, the witness, the entry beyond the log.
    assert "可从回执重放" in claimed["message"] and "见证" in claimed["message"], claimed["message"]
    assert "第 4 条" in claimed["message"] and "3 条" in claimed["message"], claimed["message"]
    assert other["status"] == "mismatch"  # valid, replayable, but another invoice's
    assert fetch(reviewer, case)["system_view"]["replayable"] is True

    case = _approved(reviewer, clerk, case)
    browser = Client()
    browser.force_login(User.objects.get(username="reviewer"))
    panel = browser.get(f"/cases/{case['case_id']}/").content.decode()
    assert "?remedy=replay" in panel
    page = browser.get(f"/cases/{case['case_id']}/resolve/?remedy=replay").content.decode()
    assert lost[1] in page and "重放" in page

    result = act(reviewer, case, "resolve", remedy="replay", note="回执核验无误")
    assert result["case"]["state"] == "resolved"
    assert result["invoice"]["number"] == lost[1]
    assert result["receipt"] is None  # the kept receipt stands: same index, same bytes
    # Both entries went back with their original numbers and bytes, and the log verifies clean.
    assert Log.objects.get(merchant__uscc=MERCHANT).size == 5
    for receipt in issued[3:]:
        assert bytes(
            LogEntry.objects.get(merchant__uscc=MERCHANT, seq=receipt["index"]).body
        ) == base64.b64decode(receipt["entry"])
    assert set(bodies_before) < set(LogEntry.objects.values_list("seq", flat=True))
    assert findings(MERCHANT) == []
    assert sorted(Invoice.objects.filter(number__in=lost).values_list("ledger_seq", flat=True)) == [3, 4]
    replayed = ReplayedInvoice.objects.get(invoice__number=lost[1])
    assert replayed.awaiting_buyer is True and replayed.seq == 4
    audit = AuditRecord.objects.get(action="ledger.replay")
    assert audit.after["case"] == case["case_id"] and audit.after["appended"] == {MERCHANT: [[3, 4]]}
    assert case["acceptance_no"] in audit.note
    # Replayed, the remedy is no longer offered and a second one is refused.
    assert fetch(reviewer, case)["system_view"]["replayable"] is False


def test_a_gap_no_receipt_of_the_case_covers_holds_it(issued, client_for):
    lose_after(MERCHANT, 3)
    clerk, reviewer = client_for("clerk"), client_for("reviewer")
    case = _open_case(clerk, issued[4], [("回执.json", issued[4])])
    assert case["checks"][0]["status"] == "verified"
    case = _approved(reviewer, clerk, case)
    refused = act(reviewer, case, "resolve", expect=409, remedy="replay")
    assert refused["type"].endswith("/replay_gap"), refused
    assert "没有第 3 条的回执" in refused["detail"] and "未追加任何条目" in refused["detail"], refused
    browser = Client()
    browser.force_login(User.objects.get(username="reviewer"))
    page = browser.get(f"/cases/{case['case_id']}/resolve/?remedy=replay").content.decode()
    assert "目前无法重放这张发票" in page and "没有第 3 条的回执" in page
    version = fetch(reviewer, case)["version"]
    posted = browser.post(f"/cases/{case['case_id']}/resolve/", {"remedy": "replay", "version": version})
    assert posted.status_code == 200 and "没有第 3 条的回执" in posted.content.decode()
    assert Log.objects.get(merchant__uscc=MERCHANT).size == 3
    # Restoring or re-issuing the number anew would put another entry where the lost one belongs.
    for remedy in ("restore", "reissue"):
        refused = act(reviewer, fetch(reviewer, case), "resolve", expect=409, remedy=remedy)
        assert refused["type"].endswith("/replay_instead"), refused
        assert "从回执重放" in refused["detail"], refused
    assert Log.objects.get(merchant__uscc=MERCHANT).size == 3
    assert not AuditRecord.objects.filter(action="ledger.replay").exists()
    assert fetch(reviewer, case)["state"] == "approved"


def test_bad_receipts_are_said_so_and_the_remedy_is_refused(issued, client_for, witness_file):  # noqa: F811
    other = issue(client_for("clerk2"), copy.deepcopy(VALID_INVOICE))
    lose_after(MERCHANT, 3)
    lose_after(OTHER, 0)
    sizes = dict(Log.objects.values_list("merchant__uscc", "size"))
    clerk, reviewer = client_for("clerk"), client_for("reviewer")

    # Another merchant's receipt: the check says so; nothing is replayable.
    with translation.override("zh-hans"):
        case = _open_case(clerk, issued[3], [("别家回执.json", other)])
    assert case["checks"][0]["status"] == "mismatch", case["checks"][0]
    assert "其他商户" in case["checks"][0]["message"], case["checks"][0]
    assert fetch(reviewer, case)["system_view"]["replayable"] is False
    case = _approved(reviewer, clerk, case)
    refused = act(reviewer, case, "resolve", expect=409, remedy="replay")
    assert refused["type"].endswith("/replay_refused"), refused
    assert OTHER in refused["detail"] and "未追加任何条目" in refused["detail"], refused

    # A forged receipt: it does not verify.
    forged = _open_case(clerk, issued[3], [("伪造.json", _forged(issued[3]))])
    assert forged["checks"][0]["status"] == "failed"
    assert fetch(reviewer, forged)["system_view"]["replayable"] is False

    # A receipt whose head the witness saw with another root.
    lines = witness_file.read_bytes().splitlines(keepends=True)
    changed = []
    for line in lines:
        item = json.loads(line)
        if item["head"]["log"] == MERCHANT and item["head"]["size"] == issued[3]["head"]["size"]:
            item["head"]["root"] = base64.b64encode(b"\x07" * 32).decode()
            changed.append((json.dumps(item, sort_keys=True) + "\n").encode())
        else:
            changed.append(line)
    witness_file.write_bytes(b"".join(changed))
    with translation.override("zh-hans"):
        disputed = _open_case(clerk, issued[3], [("回执.json", issued[3])])
    check = disputed["checks"][0]
    assert check["status"] == "failed" and "见证" in check["message"], check
    assert fetch(reviewer, disputed)["system_view"]["replayable"] is False
    disputed = _approved(reviewer, clerk, disputed)
    refused = act(reviewer, disputed, "resolve", expect=409, remedy="replay")
    assert refused["type"].endswith("/replay_refused"), refused
    assert "witness" in json.dumps(refused) or "见证" in json.dumps(refused, ensure_ascii=False)

    assert dict(Log.objects.values_list("merchant__uscc", "size")) == sizes
    assert not AuditRecord.objects.filter(action="ledger.replay").exists()
