"""Group commit: writes queued together share one transaction and one head, and a duplicate
Idempotency-Key inside one batch yields one invoice."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from fapiao.invoices.models import Invoice
from fapiao.invoices.services import issue_invoice
from fapiao.ledger.models import TreeHead
from tests.integration.group_commit_helpers import batching, hold_writer

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["batching"]  # the fixture, used by name


def issue_in_thread(user: Any, payload: Any, key: str | None) -> Any:
    try:
        return issue_invoice(user=user, payload=payload, idempotency_key=key)
    finally:
        connection.close()


def test_one_batch_one_head_and_one_invoice_per_key(demo, valid_invoice, batching):
    release, blocker = hold_writer(batching)
    clerk = demo["clerk"]
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [
            pool.submit(issue_in_thread, clerk, valid_invoice, key)
            for key in ["a", "a", "b", None, None, "a"]
        ]
        while batching.jobs.qsize() < 6:
            threading.Event().wait(0.01)
        release.set()
        results = [future.result(timeout=30) for future in futures]
    blocker.join(10)
    numbers = [result.body["number"] for result in results]
    assert numbers[0] == numbers[1] == numbers[5]
    assert len(set(numbers)) == 4
    assert Invoice.objects.count() == 4
    assert TreeHead.objects.count() == 1
    assert sum(result.replayed for result in results) == 2
    receipts = [result.body["receipt"] for result in results]
    assert all(receipt["head"]["size"] == 4 for receipt in receipts)


def test_a_failing_write_in_a_batch_undoes_only_itself(demo, valid_invoice, batching):
    release, blocker = hold_writer(batching)
    clerk = demo["clerk"]
    bad = dict(valid_invoice, kind="ordinary")
    calls = {"n": 0}

    def explode(unit: Any) -> None:
        calls["n"] += 1
        Invoice.objects.filter(pk=-1).update(remark="x")
        raise RuntimeError("boom")

    with ThreadPoolExecutor(max_workers=3) as pool:
        good = pool.submit(issue_in_thread, clerk, valid_invoice, None)
        failing = pool.submit(batching.submit, explode)
        other = pool.submit(issue_in_thread, clerk, bad, None)
        while batching.jobs.qsize() < 3:
            threading.Event().wait(0.01)
        release.set()
        assert good.result(timeout=30).status == 201
        assert other.result(timeout=30).status == 201
        with pytest.raises(RuntimeError, match="boom"):
            failing.result(timeout=30)
    blocker.join(10)
    serials = sorted(int(n[5:]) for n in Invoice.objects.values_list("number", flat=True))
    assert serials == [serials[0], serials[0] + 1]
