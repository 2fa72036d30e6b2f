"""``fapiao drill disk-full``: the database cannot grow; the write is refused whole, and the next
one after the room comes back succeeds (应急预案, scenario 2).

On the scratch copy (:mod:`fapiao.ops.drills.scratch`) the child process lowers its own file-size
limit (``RLIMIT_FSIZE``, which needs no root and no mount; ``SIGXFSZ`` ignored, so a write that
would grow a file fails with ``EFBIG`` as it would with ``ENOSPC``) after SQLite's write-ahead log
was checkpointed to nothing: every commit must grow it and cannot.  An invoice sent to the API must
be refused with 503 and ``Retry-After``, the database must pass ``PRAGMA integrity_check`` and the
counts must be unchanged (nothing half-written).  The limit is lifted (the volume grown); the drill
proves what the plan names: ``fapiao ledger verify`` exit 0, and the same request retried with its
``Idempotency-Key`` issues the invoice once.  RTO: from the limit lifted until the retry is issued.
"""

from __future__ import annotations

import json
import resource
import signal
import time
from pathlib import Path
from typing import Any

from django.db import connection

from fapiao.ops.drills import Scenario, register, scratch

NAME = "disk-full"


def add_arguments(parser: Any) -> None:
    scratch.add_arguments(parser, invoices=2)


def run(options: dict[str, Any]) -> dict[str, Any]:
    return scratch.run_drill(NAME, options, inside, markdown, default_invoices=2)


def _integrity() -> str:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA integrity_check")
        return str(cursor.fetchone()[0])


def inside(work: Path, count: int) -> dict[str, Any]:
    record = scratch.Record(work=work)
    began = time.monotonic()
    issued = scratch.issue_invoices(work / "receipts", count)
    api = scratch.Api(scratch.issuers()[0])
    api.readyz()  # the connection open, its shared memory sized
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = scratch.counts()
    record.step("before", began, True, issued=len(issued))

    began = time.monotonic()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    payload = json.loads(json.dumps(scratch.DRILL_INVOICE))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
    try:
        refused = api.issue(payload, "drill-disk-full-1")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    lifted = time.monotonic()
    record.step(
        "write_while_full",
        began,
        refused.status == 503 and bool(refused.retry_after),
        status=refused.status,
        code=refused.body.get("code"),
    )

    began = time.monotonic()
    connection.close()
    integrity = _integrity()
    after = scratch.counts()
    record.step(
        "nothing_half_written", began, after == before and integrity == "ok", integrity=integrity, after=after
    )

    began = time.monotonic()
    retried = api.issue(payload, "drill-disk-full-1")
    rto = time.monotonic() - lifted
    final = scratch.counts()
    record.step(
        "retry_issues_once",
        began,
        retried.status == 201 and final["invoices"] == before["invoices"] + 1,
        status=retried.status,
        number=retried.body.get("number"),
    )
    record.check(scratch.ledger_verify())
    ready = api.readyz()
    record.step(
        "readyz", began, ready.status == 200, status=ready.status, checks=ready.body.get("checks", {})
    )
    return record.result(ok=True, rto_seconds=rto)


def markdown(report: dict[str, Any]) -> str:
    return scratch.markdown(report)


register(
    Scenario(
        NAME,
        "the database cannot grow: a write refused with 503, nothing half-written; room back, retried once",
        run,
        add_arguments,
        markdown,
    )
)
