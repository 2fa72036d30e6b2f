"""``fapiao drill database-down``: the database stops answering; clients get 503, nothing is
half-written, and everything comes back by itself (应急预案, scenario 1).

On the scratch copy (:mod:`fapiao.ops.drills.scratch`): the SQLite file is made unreachable (moved
aside, a folder in its place: no process, root included, can open it), then ``/readyz`` must answer
503 with ``"database": "unavailable"`` and ``Retry-After``, and an invoice sent to the API must be
refused with 503.  The file is put back; the drill proves what the plan tells the person on call to
check: ``/readyz`` 200 with ``"database": "ok"``, ``fapiao ledger verify`` exit 0, the counts as
before (the refused write left nothing), and the same request, retried with its
``Idempotency-Key``, issues the invoice once.  RTO: from the file's return until ``/readyz`` says
the database is ok.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from django.db import connection, connections

from fapiao.ops.backup.service import database_path
from fapiao.ops.drills import Scenario, register, scratch

NAME = "database-down"


def add_arguments(parser: Any) -> None:
    scratch.add_arguments(parser, invoices=2)


def run(options: dict[str, Any]) -> dict[str, Any]:
    return scratch.run_drill(NAME, options, inside, markdown, default_invoices=2)


def inside(work: Path, count: int) -> dict[str, Any]:
    record = scratch.Record(work=work)
    began = time.monotonic()
    issued = scratch.issue_invoices(work / "receipts", count)
    user = scratch.issuers()[0]
    api = scratch.Api(user)
    healthy = api.readyz()
    record.step("before", began, healthy.body.get("checks", {}).get("database") == "ok", issued=len(issued))
    before = scratch.counts()

    began = time.monotonic()
    live = database_path()
    aside = work / "down"
    aside.mkdir(mode=0o700)
    connections.close_all()
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{live}{suffix}")
        if source.exists():
            shutil.move(source, aside / source.name)
    live.mkdir()  # a folder where the file was: nothing can open it
    record.step("database_unreachable", began, not live.is_file())

    began = time.monotonic()
    down = api.readyz()
    record.step(
        "readyz_while_down",
        began,
        down.status == 503
        and down.body.get("checks", {}).get("database") == "unavailable"
        and bool(down.retry_after),
        status=down.status,
        retry_after=down.retry_after,
    )
    began = time.monotonic()
    payload = json.loads(json.dumps(scratch.DRILL_INVOICE))
    refused = api.issue(payload, "drill-database-down-1")
    record.step(
        "write_while_down", began, refused.status == 503 and bool(refused.retry_after), status=refused.status
    )

    began = time.monotonic()
    connections.close_all()
    live.rmdir()
    for item in sorted(aside.iterdir()):
        shutil.move(item, live.with_name(item.name))
    back = time.monotonic()
    up = api.readyz()
    while up.body.get("checks", {}).get("database") != "ok" and time.monotonic() - back < 30:
        time.sleep(0.2)
        up = api.readyz()
    rto = time.monotonic() - back
    record.step("database_back", began, up.status == 200, status=up.status)

    after = scratch.counts()
    record.step("nothing_half_written", began, after == before, before=before, after=after)
    record.check(scratch.ledger_verify())
    began = time.monotonic()
    retried = api.issue(payload, "drill-database-down-1")
    again = api.issue(payload, "drill-database-down-1")
    final = scratch.counts()
    record.step(
        "retry_issues_once",
        began,
        retried.status == 201 and again.status in {200, 201} and final["invoices"] == before["invoices"] + 1,
        status=retried.status,
        number=retried.body.get("number"),
    )
    record.check(scratch.ledger_verify())
    connection.close()
    return record.result(
        ok=True,
        rto_seconds=rto,
        readyz_down={"status": down.status, "checks": down.body.get("checks", {})},
        readyz_up={"status": up.status, "checks": up.body.get("checks", {})},
    )


def markdown(report: dict[str, Any]) -> str:
    return scratch.markdown(report)


register(
    Scenario(
        NAME,
        "the database made unreachable: readyz and writes answer 503, nothing half-written; it comes back",
        run,
        add_arguments,
        markdown,
    )
)
