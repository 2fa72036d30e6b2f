"""Tamper tests: change the database directly, bypassing every service, and `verify` must name it.

The issue asks for these in ``tests/faults``; they live here because ``make test-postgres`` runs
only ``tests/integration`` on PostgreSQL, and every tamper must be caught on both databases.

Each row of :data:`TAMPERS` is one change an attacker, a bad migration or a bug could make, and
the *exact* set of error codes `verify` must report for it — nothing missing, nothing extra.  The
tamper function returns where each finding must point (index, size or number), so a finding is
not only raised but names the right entry, head or invoice.  Every row also runs the management
command, which must exit non-zero.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection

from fapiao.core import merkle
from fapiao.core.canonical import canonical_bytes
from fapiao.core.signing import SigningKey, make_head, sign_head
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.invoices.rows import document_for
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead
from fapiao.ledger.verify import verify_ledger
from fapiao.platform import keys
from tests.integration.test_ledger_verify import USCC, BuiltLog, build_log, run_command

pytestmark = pytest.mark.django_db

# Where a finding must point: code -> {"index": 5} / {"size": 20} / {"number": "..."}.
Where = dict[str, dict[str, Any]]


def _table(model: type) -> str:
    """The model's quoted table name, for raw SQL (never user input, hence the S608 waivers)."""
    return connection.ops.quote_name(model._meta.db_table)


def delete_an_entry(log: BuiltLog) -> Where:
    number = log.plain[1]
    seq = log.seq[number]
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {_table(LogEntry)} WHERE merchant_id = %s AND seq = %s",  # noqa: S608
            [log.merchant.pk, seq],
        )
    return {"missing_entry": {"index": seq}, "invoice_without_entry": {"number": number, "index": seq}}


def flip_one_byte_of_an_entry(log: BuiltLog) -> Where:
    seq = log.seq[log.plain[2]]
    entry = LogEntry.objects.get(merchant=log.merchant, seq=seq)
    body = bytearray(entry.body)
    body[len(body) // 2] ^= 0x01
    LogEntry.objects.filter(pk=entry.pk).update(body=bytes(body))
    return {"altered_entry": {"index": seq}}


def swap_two_entries(log: BuiltLog) -> Where:
    first, second = log.seq[log.plain[3]], log.seq[log.plain[4]]
    entries = LogEntry.objects.filter(merchant=log.merchant)
    entries.filter(seq=first).update(seq=-1)
    entries.filter(seq=second).update(seq=first)
    entries.filter(seq=-1).update(seq=second)
    return {"out_of_order": {"index": first}}


def _drop_tail(log: BuiltLog, keep: int) -> list[str]:
    """Delete entries from ``keep`` on and every node covering them; returns their invoice numbers."""
    entries = LogEntry.objects.filter(merchant=log.merchant, seq__gte=keep)
    numbers = list(entries.values_list("invoice_number", flat=True))
    entries.delete()
    for node in LogNode.objects.filter(merchant=log.merchant):
        if (node.index + 1) << node.level > keep:
            node.delete()
    return numbers


def truncate_the_log(log: BuiltLog) -> Where:
    numbers = _drop_tail(log, 17)
    return {"truncated": {"size": 20}, "invoice_without_entry": {"number": numbers[0], "index": 17}}


def truncate_the_log_with_its_heads_size_and_invoices(log: BuiltLog) -> Where:
    """A consistent rollback of the last three invoices: only the witness remembers them."""
    numbers = _drop_tail(log, 17)
    TreeHead.objects.filter(merchant=log.merchant, size__gt=17).delete()
    Log.objects.filter(merchant=log.merchant).update(size=17)
    InvoiceLine.objects.filter(invoice__number__in=numbers).delete()
    Invoice.objects.filter(number__in=numbers).delete()
    segment = log.merchant.segments.get(next_serial__gt=int(min(numbers)[5:]))
    log.merchant.segments.filter(pk=segment.pk).update(next_serial=int(min(numbers)[5:]))
    return {"witness_mismatch": {"size": 20}}


def delete_an_invoice_row(log: BuiltLog) -> Where:
    number = log.plain[5]
    invoice = Invoice.objects.get(number=number)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_table(InvoiceLine)} WHERE invoice_id = %s", [invoice.pk])  # noqa: S608
        cursor.execute(f"DELETE FROM {_table(Invoice)} WHERE id = %s", [invoice.pk])  # noqa: S608
    return {
        "entry_without_invoice": {"index": log.seq[number], "number": number},
        "number_gap": {"number": number},
    }


def change_an_invoice_amount(log: BuiltLog) -> Where:
    number = log.plain[6]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(Invoice)} SET total_amount = total_amount + 100 WHERE number = %s",  # noqa: S608
            [number],
        )
    return {"invoice_mismatch": {"number": number, "index": log.seq[number]}}


def change_an_invoice_line_amount(log: BuiltLog) -> Where:
    number = log.plain[7]
    InvoiceLine.objects.filter(invoice__number=number, no=2).update(amount=1)
    return {"invoice_mismatch": {"number": number}}


def undo_a_red_letter_in_the_state(log: BuiltLog) -> Where:
    Invoice.objects.filter(number=log.blues[0]).update(state="normal")
    return {"invoice_state_mismatch": {"number": log.blues[0]}}


def replace_a_head(log: BuiltLog) -> Where:
    stranger = SigningKey.generate()
    head = TreeHead.objects.get(merchant=log.merchant, size=20)
    root = os.urandom(32)
    document = make_head(log=USCC, size=20, root=root, at=head.at, key_id=stranger.key_id)
    TreeHead.objects.filter(pk=head.pk).update(
        root=root, key_id=stranger.key_id, signature=sign_head(document, stranger)
    )
    return {"head_root_mismatch": {"size": 20}, "unknown_key": {"size": 20}, "witness_mismatch": {"size": 20}}


def rewrite_the_whole_log_and_resign_it(log: BuiltLog) -> Where:
    """Change an invoice's amount everywhere — row, line, entry, leaf hashes, nodes, every head,
    re-signed with the real key — so that the database is consistent.  Only the witness knows."""
    number = log.plain[0]
    invoice = Invoice.objects.get(number=number)
    line = invoice.lines.get(no=1)
    InvoiceLine.objects.filter(pk=line.pk).update(amount=line.amount + 100)
    Invoice.objects.filter(pk=invoice.pk).update(
        total_amount=invoice.total_amount + 100, total_with_tax=invoice.total_with_tax + 100
    )
    invoice.refresh_from_db()
    document = document_for(invoice, list(invoice.lines.all()))
    tree = merkle.MemoryTree()
    for entry in LogEntry.objects.filter(merchant=log.merchant).order_by("seq"):
        parsed = json.loads(bytes(entry.body))
        if parsed["invoice"]["number"] == number:
            parsed["invoice"] = document
        body = canonical_bytes(parsed)
        LogEntry.objects.filter(pk=entry.pk).update(body=body, leaf_hash=merkle.leaf_hash(body))
        tree.append(body)
    LogNode.objects.filter(merchant=log.merchant).delete()
    LogNode.objects.bulk_create(
        LogNode(merchant=log.merchant, level=level, index=index, hash=digest)
        for (level, index), digest in tree._nodes.items()
    )
    key = keys.signing_key()
    for head in TreeHead.objects.filter(merchant=log.merchant):
        root = tree.root(head.size)
        signed = make_head(log=USCC, size=head.size, root=root, at=head.at, key_id=key.key_id)
        TreeHead.objects.filter(pk=head.pk).update(
            root=root, key_id=key.key_id, signature=sign_head(signed, key)
        )
    return {"witness_mismatch": {"size": log.seq[number] + 1}}


@dataclass(frozen=True)
class Tamper:
    name: str
    apply: Callable[[BuiltLog], Where]
    expected: frozenset[str]  # exactly these error codes, no others


TAMPERS = [
    Tamper("delete an entry", delete_an_entry, frozenset({"missing_entry", "invoice_without_entry"})),
    Tamper("flip one byte of an entry", flip_one_byte_of_an_entry, frozenset({"altered_entry"})),
    Tamper("swap two entries", swap_two_entries, frozenset({"out_of_order"})),
    Tamper("truncate the log", truncate_the_log, frozenset({"truncated", "invoice_without_entry"})),
    Tamper(
        "truncate the log, its heads, its size and its invoices",
        truncate_the_log_with_its_heads_size_and_invoices,
        frozenset({"witness_mismatch"}),
    ),
    Tamper(
        "delete an invoice row", delete_an_invoice_row, frozenset({"entry_without_invoice", "number_gap"})
    ),
    Tamper("change an invoice amount", change_an_invoice_amount, frozenset({"invoice_mismatch"})),
    Tamper("change an invoice line amount", change_an_invoice_line_amount, frozenset({"invoice_mismatch"})),
    Tamper(
        "undo a red letter in the state",
        undo_a_red_letter_in_the_state,
        frozenset({"invoice_state_mismatch"}),
    ),
    Tamper(
        "replace a head", replace_a_head, frozenset({"head_root_mismatch", "unknown_key", "witness_mismatch"})
    ),
    Tamper(
        "rewrite the whole log and re-sign it with the key",
        rewrite_the_whole_log_and_resign_it,
        frozenset({"witness_mismatch"}),
    ),
]


@pytest.fixture
def log(demo: dict[str, Any], witness_file: Any) -> BuiltLog:
    return build_log(demo["clerk"])


@pytest.fixture
def witness_file(settings: Any, tmp_path: Any) -> Any:
    path = tmp_path / "witness" / "heads.jsonl"
    settings.FAPIAO_WITNESS_FILE = path
    return path


def test_the_untampered_log_is_clean(log):
    report = verify_ledger()
    assert report.ok and report.codes(None) == set(), report.to_json()
    assert run_command()[0] == 0


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t.name.replace(" ", "-") for t in TAMPERS])
def test_every_tamper_is_found_named_and_fails_verify(log, tamper):
    where = tamper.apply(log)
    report = verify_ledger()
    assert report.codes() == tamper.expected, report.to_json("en")
    assert not report.ok
    findings = list(report.all_findings())
    for code, place in where.items():
        assert any(
            f.code == code and all(getattr(f, key) == value for key, value in place.items()) for f in findings
        ), (code, place, [f.to_json() for f in findings if f.code == code])
    status, out, _err = run_command("--json")
    assert status == 1
    assert {
        f["code"] for log in json.loads(out)["logs"] for f in log["findings"] if f["severity"] == "error"
    } | {f["code"] for f in json.loads(out)["findings"] if f["severity"] == "error"} == tamper.expected
