"""`fapiao ledger verify --witness FILE …`: several application hosts, each with its own witness file.

Each host appends the heads it signs to its own file, so each file holds a part of every log;
`--witness` (repeatable) checks the database against all of them at once.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fapiao.invoices.services import issue_invoice
from fapiao.ledger.verify import verify_ledger
from tests.conftest import VALID_INVOICE
from tests.integration.test_ledger_verify import USCC, log_report, run_command

pytestmark = pytest.mark.django_db


@pytest.fixture
def hosts(settings: Any, tmp_path: Path, demo: dict[str, Any]) -> tuple[Path, Path]:
    """Eight invoices issued through host A (sizes 1-3 and 7-8) and host B (sizes 4-6)."""
    host_a, host_b = tmp_path / "a" / "heads.jsonl", tmp_path / "b" / "heads.jsonl"
    for host, count in ((host_a, 3), (host_b, 3), (host_a, 2)):
        settings.FAPIAO_WITNESS_FILE = host
        for _ in range(count):
            issue_invoice(user=demo["clerk"], payload=copy.deepcopy(VALID_INVOICE))
    return host_a, host_b


def sizes(path: Path) -> list[int]:
    return [json.loads(line)["head"]["size"] for line in path.read_bytes().splitlines() if line.strip()]


def test_every_host_witnesses_a_part_and_all_of_them_agree(hosts):
    host_a, host_b = hosts
    assert (sizes(host_a), sizes(host_b)) == ([1, 2, 3, 7, 8], [4, 5, 6])
    status, out, err = run_command(
        "--witness", str(host_a), "--witness", str(host_b), "--json", "--lang", "en"
    )
    assert status == 0, out + err
    report = json.loads(out)
    assert report["ok"] and report["witness_files"] == [str(host_a), str(host_b)]
    mine = next(log for log in report["logs"] if log["log"] == USCC)
    assert mine["witness_size"] == 8


def test_a_root_only_one_host_saw_is_checked_too(hosts):
    host_a, host_b = hosts
    forged = json.loads(host_b.read_bytes().splitlines()[1])  # size 5, as host B saw it
    forged["head"]["root"] = base64.b64encode(bytes(32)).decode()
    host_c = host_b.with_name("c.jsonl")
    host_c.write_text(json.dumps(forged) + "\n")
    # Host A's file alone (the default, FAPIAO_WITNESS_FILE) never saw size 5: clean.
    assert verify_ledger().ok
    assert run_command("--witness", str(host_a))[0] == 0
    # With host C's file the database disagrees with a witnessed root.
    report = verify_ledger(witness_files=[host_a, host_b, host_c])
    assert not report.ok
    assert [(f.code, f.size) for f in log_report(report).findings] == [("witness_mismatch", 5)]
    status, out, _err = run_command("--witness", str(host_a), "--witness", str(host_c), "--lang", "en")
    assert status == 1 and "witness_mismatch" in out


def test_an_unreadable_line_names_its_file(hosts):
    host_a, host_b = hosts
    with host_b.open("ab") as handle:
        handle.write(b"not json\n")
    report = verify_ledger(witness_files=[host_a, host_b])
    assert [(f.code, f.variant, f.params.get("file")) for f in report.findings] == [
        ("witness_mismatch", "malformed", str(host_b))
    ]
