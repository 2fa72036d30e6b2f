"""The batched write path (P2): deferred rows, indexes kept in memory, one-statement claims and numbers.

A group commit now writes most rows of its invoices in bulk just before it commits; these tests
make a batch fail in the middle and race what the bulk statements must keep apart.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from fapiao.accounts.models import NumberSegment
from fapiao.audit.models import AuditLog, AuditRecord
from fapiao.audit.services import record
from fapiao.core.choices import EntryKind
from fapiao.core.receipt import verify_receipt
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.invoices.numbering import NoNumberSegmentError, allocate_number
from fapiao.invoices.services import issue_invoice
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead
from fapiao.ledger.services import append_entry
from fapiao.platform import groupcommit, idempotency, keys
from fapiao.platform.models import IdempotencyRecord
from fapiao.platform.uow import UnitOfWork, run_unit
from tests.integration.group_commit_helpers import batching, hold_writer

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["batching"]  # the fixture, used by name


def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    finally:
        connection.close()


def wait_queued(writer: groupcommit.GroupCommitWriter, count: int) -> None:
    while writer.jobs.qsize() < count:
        threading.Event().wait(0.01)


def assert_ledger_whole(merchant_id: int) -> None:
    """Entries 0..n-1, the log's size n, every leaf node stored, and a head of size n."""
    seqs = list(
        LogEntry.objects.filter(merchant_id=merchant_id).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(len(seqs)))
    assert Log.objects.get(merchant_id=merchant_id).size == len(seqs)
    assert LogNode.objects.filter(merchant_id=merchant_id, level=0).count() == len(seqs)
    assert TreeHead.objects.filter(merchant_id=merchant_id).order_by("-size").first().size == len(seqs)


def test_a_write_that_fails_after_deferring_rows_leaves_none_of_them(demo, valid_invoice, batching):
    clerk = demo["clerk"]
    merchant = clerk.merchant
    release, blocker = hold_writer(batching)

    def fails_late(unit: UnitOfWork) -> None:
        append_entry(unit, merchant=merchant, kind=EntryKind.ISSUE, invoice={"number": "doomed"})
        record(actor=clerk, action="test.doomed", merchant=merchant)
        raise RuntimeError("after deferring")

    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(in_thread, issue_invoice, user=clerk, payload=valid_invoice, idempotency_key="a")
        wait_queued(batching, 1)
        doomed = pool.submit(batching.submit, fails_late)
        wait_queued(batching, 2)
        second = pool.submit(in_thread, issue_invoice, user=clerk, payload=valid_invoice, idempotency_key="b")
        wait_queued(batching, 3)
        release.set()
        results = [first.result(timeout=30), second.result(timeout=30)]
        with pytest.raises(RuntimeError, match="after deferring"):
            doomed.result(timeout=30)
    blocker.join(10)

    assert not LogEntry.objects.filter(invoice_number="doomed").exists()
    assert not AuditRecord.objects.filter(action="test.doomed").exists()
    assert [r.body["receipt"]["index"] for r in results] == [0, 1]
    assert_ledger_whole(merchant.pk)
    registry = keys.registry()
    for result in results:
        assert verify_receipt(result.body["receipt"], registry).ok
    log = AuditLog.objects.get(merchant=merchant)
    audit_seqs = list(AuditRecord.objects.filter(log=log).order_by("seq").values_list("seq", flat=True))
    assert audit_seqs == list(range(log.size))
    assert InvoiceLine.objects.count() == 2


def test_a_write_not_marked_deferrable_sees_the_rows_deferred_before_it(demo, valid_invoice, batching):
    clerk = demo["clerk"]
    release, blocker = hold_writer(batching)

    def count_rows(unit: UnitOfWork) -> tuple[int, int, int]:
        return LogEntry.objects.count(), InvoiceLine.objects.count(), AuditRecord.objects.count()

    audit_before = AuditRecord.objects.count()
    with ThreadPoolExecutor(max_workers=2) as pool:
        issued = pool.submit(in_thread, issue_invoice, user=clerk, payload=valid_invoice)
        wait_queued(batching, 1)
        counted = pool.submit(batching.submit, count_rows)
        wait_queued(batching, 2)
        release.set()
        assert issued.result(timeout=30).status == 201
        entries, lines, audits = counted.result(timeout=30)
    blocker.join(10)
    assert (entries, lines) == (1, 1)
    assert audits == audit_before + 1
    assert TreeHead.objects.count() == 1  # still one batch, one head


def test_bookkeeping_queued_first_still_runs_after_the_batchs_writes(demo, valid_invoice, batching):
    """A token's last-use update queued before an invoice runs after it in the same batch: every
    batch locks the number segment before the token row, so two server processes' batches can't
    deadlock on PostgreSQL (seen in the P2 benchmark: "deadlock detected", 3 answers of 503)."""
    clerk = demo["clerk"]
    ran: list[str] = []
    release, blocker = hold_writer(batching)

    def bookkeeping(unit: UnitOfWork) -> None:
        ran.append("bookkeeping")

    def issue(unit: UnitOfWork) -> None:
        ran.append("issue")
        allocate_number(merchant=clerk.merchant, on=timezone.localdate())

    batching.enqueue(bookkeeping)
    with ThreadPoolExecutor(max_workers=1) as pool:
        wait_queued(batching, 1)
        issued = pool.submit(batching.submit, issue)
        wait_queued(batching, 2)
        release.set()
        issued.result(timeout=30)
    blocker.join(10)
    assert ran == ["issue", "bookkeeping"]


def test_appends_in_one_unit_take_consecutive_indexes_and_one_head(demo):
    merchant = demo["clerk"].merchant

    def three(unit: UnitOfWork) -> list[int]:
        return [
            append_entry(unit, merchant=merchant, kind=EntryKind.ISSUE, invoice={"number": f"n{i}"}).seq
            for i in range(3)
        ]

    assert run_unit(three) == [0, 1, 2]
    assert run_unit(three) == [3, 4, 5]
    assert_ledger_whole(merchant.pk)
    assert list(TreeHead.objects.order_by("size").values_list("size", flat=True)) == [3, 6]


def test_an_expired_idempotency_key_is_claimed_again(demo, valid_invoice):
    clerk = demo["clerk"]
    first = issue_invoice(user=clerk, payload=valid_invoice, idempotency_key="k")
    again = issue_invoice(user=clerk, payload=valid_invoice, idempotency_key="k")
    assert again.replayed and again.body["number"] == first.body["number"]
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    fresh = issue_invoice(user=clerk, payload=valid_invoice, idempotency_key="k")
    assert not fresh.replayed
    assert fresh.body["number"] != first.body["number"]
    stored = IdempotencyRecord.objects.get()
    assert stored.body["number"] == fresh.body["number"]
    assert stored.status == 201


def test_a_claim_of_a_live_key_replays_and_a_different_request_is_refused(demo, valid_invoice):
    clerk = demo["clerk"]
    issue_invoice(user=clerk, payload=valid_invoice, idempotency_key="k")
    fingerprint = idempotency.request_fingerprint("issue", valid_invoice)
    replay = idempotency.claim(user=clerk, key="k", fingerprint=fingerprint)
    assert isinstance(replay, idempotency.Replay) and replay.status == 201
    with pytest.raises(idempotency.IdempotencyMismatchError):
        idempotency.claim(user=clerk, key="k", fingerprint="another request")
    assert IdempotencyRecord.objects.count() == 1


def test_numbers_continue_in_the_next_segment_and_stop_when_none_is_left(demo):
    merchant = demo["clerk"].merchant
    today = timezone.localdate()
    year = today.year % 100
    segments = NumberSegment.objects.filter(merchant=merchant, year=year).order_by("first_serial")
    first = segments.first()
    assert first is not None
    first.next_serial = first.last_serial  # one number left in it
    first.save()
    extra = NumberSegment.objects.create(
        merchant=merchant,
        year=year,
        province=first.province,
        channel=first.channel,
        first_serial=first.last_serial + 1000,
        last_serial=first.last_serial + 1001,
        next_serial=first.last_serial + 1000,
    )
    NumberSegment.objects.filter(merchant=merchant, year=year).exclude(pk__in=[first.pk, extra.pk]).delete()
    numbers = [allocate_number(merchant=merchant, on=today) for _ in range(3)]
    assert [int(n[5:]) for n in numbers] == [first.last_serial, extra.first_serial, extra.last_serial]
    with pytest.raises(NoNumberSegmentError):
        allocate_number(merchant=merchant, on=today)
    first.refresh_from_db()
    extra.refresh_from_db()
    assert first.next_serial == first.last_serial + 1
    assert extra.next_serial == extra.last_serial + 1


def test_issue_stores_the_invoice_once_with_its_ledger_index(demo, valid_invoice):
    result = issue_invoice(user=demo["clerk"], payload=valid_invoice)
    invoice = Invoice.objects.get(number=result.body["number"])
    entry = LogEntry.objects.get(merchant=invoice.merchant, invoice_number=invoice.number)
    assert invoice.ledger_seq == entry.seq == result.body["receipt"]["index"]
    assert [line.no for line in invoice.lines.all()] == [1]


def test_a_record_undone_by_the_callers_own_savepoint_is_not_stored_later(demo):
    """A function in a unit may roll back part of its own work and carry on: what it recorded in
    that part must go with it, not come back at the flush under an index that is reused."""
    clerk = demo["clerk"]
    merchant = clerk.merchant

    def job(unit: UnitOfWork) -> None:
        try:
            with transaction.atomic():
                record(actor=clerk, action="test.undone", merchant=merchant)
                raise RuntimeError("undo")
        except RuntimeError:
            pass
        record(actor=clerk, action="test.kept", merchant=merchant)

    run_unit(job)
    assert not AuditRecord.objects.filter(action="test.undone").exists()
    assert AuditRecord.objects.filter(action="test.kept").count() == 1
    log = AuditLog.objects.get(merchant=merchant)
    assert list(AuditRecord.objects.filter(log=log).order_by("seq").values_list("seq", flat=True)) == list(
        range(log.size)
    )
