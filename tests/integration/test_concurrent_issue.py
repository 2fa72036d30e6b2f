"""Concurrent issuers of one merchant: no duplicate number, no gap, no orphan, no lost entry.

8 threads × 25 calls of ``issue_invoice`` for the same clerk, some of which fail on purpose
in the middle of their transaction (after the number was taken and the invoice rows written,
before or after the ledger entry).  Every failed call must give its number back and leave
nothing behind; the acknowledged ones must hold a gap-free run of serials from the segment's
first, a gap-free ledger 0..n-1 and a valid receipt each.

Runs on PostgreSQL (row locks), on SQLite (a file database: IMMEDIATE transactions serialise
the writers) and through the group-commit writer (many calls per transaction, each in its
own savepoint; one signed head per commit).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

import fapiao.invoices.rows
from fapiao.accounts.models import NumberSegment
from fapiao.core.receipt import verify_receipt
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.invoices.services import issue_invoice
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead
from fapiao.platform import keys
from fapiao.platform.models import IdempotencyRecord
from tests.integration.pg_cluster import file_backed_sqlite, private_group_commit_writer

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
PER_THREAD = 25
FAIL_BEFORE_LEDGER = "fail-before-ledger"  # invoice and lines written, no ledger entry yet
FAIL_AFTER_LEDGER = "fail-after-ledger"  # ledger entry, nodes and log size written too


class DeliberateFailure(Exception):
    pass


def planned_failure(thread: int, call: int) -> str | None:
    if call % 8 == 3:
        return FAIL_BEFORE_LEDGER
    if call % 8 == 7:
        return FAIL_AFTER_LEDGER
    return None


EXPECTED_FAILURES = sum(planned_failure(0, call) is not None for call in range(PER_THREAD)) * THREADS
EXPECTED_SUCCESSES = THREADS * PER_THREAD - EXPECTED_FAILURES


@pytest.fixture
def database(transactional_db: None, tmp_path: Path) -> Iterator[None]:
    """SQLite: a file database (the in-memory test database cannot be shared by writers)."""
    if connection.vendor == "sqlite":
        with file_backed_sqlite(tmp_path / "fapiao.sqlite3"):
            yield
    else:
        yield


@pytest.fixture
def flaky_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    """``append_entry`` fails for invoices whose remark asks for it, before or after its writes.

    The decision rides on the invoice itself, so it holds in whatever thread runs the work
    (the caller's, or the group-commit writer's)."""
    real = fapiao.invoices.rows.append_entry

    def append_entry(unit: Any, *, invoice: dict[str, Any], **kwargs: Any) -> Any:
        remark = invoice["remark"]
        if remark.startswith(FAIL_BEFORE_LEDGER):
            raise DeliberateFailure(remark)
        pending = real(unit, invoice=invoice, **kwargs)
        if remark.startswith(FAIL_AFTER_LEDGER):
            raise DeliberateFailure(remark)
        return pending

    monkeypatch.setattr(fapiao.invoices.rows, "append_entry", append_entry)


@dataclass
class Outcome:
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # number -> answer body
    failed: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the Idempotency-Keys of acknowledged calls


def issue_concurrently(clerk: Any, invoice: dict[str, Any]) -> Outcome:
    outcome = Outcome()
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def worker(thread: int) -> None:
        try:
            start.wait(timeout=30)
            for call in range(PER_THREAD):
                payload = copy.deepcopy(invoice)
                payload["remark"] = f"{planned_failure(thread, call) or 'ok'}:{thread}:{call}"
                try:
                    # Every third call carries its own Idempotency-Key: a claim to keep or undo.
                    key = f"key-{thread}-{call}" if call % 3 == 0 else None
                    result = issue_invoice(user=clerk, payload=payload, idempotency_key=key)
                except DeliberateFailure:
                    with lock:
                        outcome.failed.append(payload["remark"])
                except Exception as error:
                    with lock:
                        outcome.unexpected.append(f"{payload['remark']}: {error!r}")
                else:
                    with lock:
                        if (
                            result.status != 201
                            or result.replayed
                            or result.body["remark"] != payload["remark"]
                        ):
                            outcome.unexpected.append(f"{payload['remark']}: answered {result}")
                        elif result.body["number"] in outcome.acknowledged:
                            outcome.unexpected.append(
                                f"{payload['remark']}: duplicate {result.body['number']}"
                            )
                        else:
                            outcome.acknowledged[result.body["number"]] = result.body
                            if key:
                                outcome.keys.append(key)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,), name=f"issuer-{n}") for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads), "an issuer hung"
    return outcome


def assert_consistent(clerk: Any, outcome: Outcome, lines_per_invoice: int) -> int:
    """The database holds exactly the acknowledged invoices, gap-free; returns their count."""
    assert outcome.unexpected == []
    assert len(outcome.failed) == EXPECTED_FAILURES
    n = len(outcome.acknowledged)
    assert n == EXPECTED_SUCCESSES
    merchant = clerk.merchant

    # Numbers: no duplicate (a dict would have hidden one: check the serials too), gap-free
    # from the segment's first serial, and the segment advanced by exactly the successes.
    segment = NumberSegment.objects.get(merchant=merchant, year=timezone.localdate().year % 100)
    serials = sorted(int(number[5:]) for number in outcome.acknowledged)
    assert serials == list(range(segment.first_serial, segment.first_serial + n))
    assert segment.next_serial == segment.first_serial + n
    others = NumberSegment.objects.exclude(pk=segment.pk)
    assert all(other.next_serial == other.first_serial for other in others)

    # Rows: exactly the acknowledged invoices, each with all its lines; nothing of a failure.
    stored = dict(Invoice.objects.filter(merchant=merchant).values_list("number", "ledger_seq"))
    assert set(stored) == set(outcome.acknowledged)
    assert Invoice.objects.count() == n
    assert not Invoice.objects.filter(remark__startswith="fail-").exists()
    assert InvoiceLine.objects.count() == n * lines_per_invoice
    # A failed call's key claim is rolled back with it; an acknowledged call's answer is kept.
    records = dict(IdempotencyRecord.objects.values_list("key", "status"))
    assert records == dict.fromkeys(outcome.keys, 201)

    # Ledger: size n, seqs 0..n-1, one entry per acknowledged invoice, as each invoice says.
    assert Log.objects.get(merchant=merchant).size == n
    entries = list(
        LogEntry.objects.filter(merchant=merchant).order_by("seq").values_list("seq", "invoice_number")
    )
    assert [seq for seq, _ in entries] == list(range(n))
    assert {number: seq for seq, number in entries} == stored
    assert LogEntry.objects.count() == n
    assert LogNode.objects.filter(merchant=merchant, level=0).count() == n

    # Heads: strictly growing, the last covers everything; every receipt handed out verifies.
    sizes = list(TreeHead.objects.filter(merchant=merchant).order_by("id").values_list("size", flat=True))
    assert sizes == sorted(set(sizes)) and sizes[-1] == n
    registry = keys.registry()
    for number, body in outcome.acknowledged.items():
        verdict = verify_receipt(body["receipt"], registry)
        assert verdict.ok, (number, verdict)
        assert verdict.entry is not None and verdict.entry["invoice"]["number"] == number
    return n


def run_and_check(demo: dict[str, Any], invoice: dict[str, Any]) -> int:
    outcome = issue_concurrently(demo["clerk"], invoice)
    n = assert_consistent(demo["clerk"], outcome, len(invoice["lines"]))
    # One transaction per call: one head per acknowledged invoice.
    assert TreeHead.objects.count() == n
    return n


@pytest.mark.postgres
def test_concurrent_issue_on_postgres(database, demo, valid_invoice, flaky_ledger):
    run_and_check(demo, valid_invoice)


def test_concurrent_issue_on_sqlite(database, demo, valid_invoice, flaky_ledger):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite variant; the PostgreSQL pass runs test_concurrent_issue_on_postgres")
    run_and_check(demo, valid_invoice)


@pytest.fixture
def group_commit(settings: Any, database: None) -> Iterator[list[int]]:
    """Batching on, with a private writer; yields the size of every batch it commits."""
    settings.FAPIAO_WRITE_BATCHING = True
    batches: list[int] = []
    with private_group_commit_writer() as writer:
        real_commit: Callable[[list[Any]], None] = writer._commit

        def counting_commit(batch: list[Any]) -> None:
            batches.append(len(batch))
            real_commit(batch)

        writer._commit = counting_commit
        yield batches


def test_concurrent_issue_through_the_group_commit_writer(group_commit, demo, valid_invoice, flaky_ledger):
    outcome = issue_concurrently(demo["clerk"], valid_invoice)
    n = assert_consistent(demo["clerk"], outcome, len(valid_invoice["lines"]))
    batches = group_commit
    assert sum(batches) == THREADS * PER_THREAD  # every call went through the writer
    heads = TreeHead.objects.count()
    # One head per commit (a batch of only failures signs none), and batching really happened.
    assert heads <= len(batches)
    assert heads < n, f"{n} invoices in {len(batches)} batches of sizes {sorted(set(batches))}"
    assert max(batches) > 1
