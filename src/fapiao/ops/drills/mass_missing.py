"""``fapiao drill mass-missing``: many merchants' latest invoices vanish at once, behind the server's
back; the ledger verify names every one, and the receipts the merchants kept bring them back
(应急预案, scenario 7).

On the scratch copy (:mod:`fapiao.ops.drills.scratch`): a raw snapshot of the database is put
aside (a standby that falls behind), invoices are issued for every merchant that can issue, then
the database is swapped for the stale snapshot without any command — what a failover to a lagging
standby, or a hand-made restore, does.  Nothing in the application knows.  Then the plan's
commands: ``fapiao ledger verify`` fails and names, per log, the entries that are gone (the
witness saw them) and opens an incident for each; ``fapiao ledger check-receipt`` on each
merchant's receipt answers 3 (valid but no longer proven); ``fapiao ledger replay`` with the
receipts brings back every entry and invoice row; then ``fapiao ledger verify`` exit 0, every
receipt ``check-receipt`` exit 0, each incident acknowledged and resolved, ``fapiao incidents
list`` empty.  RPO: per log, the entries lost; the replay must bring back every one.  RTO: from
the verify that found the loss until the ledger verifies clean.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.db import connections

from fapiao.ops.backup.service import database_path, snapshot_sqlite
from fapiao.ops.drills import Scenario, register, scratch

NAME = "mass-missing"


def add_arguments(parser: Any) -> None:
    scratch.add_arguments(parser, invoices=6)


def run(options: dict[str, Any]) -> dict[str, Any]:
    return scratch.run_drill(NAME, options, inside, markdown, default_invoices=6)


def inside(work: Path, count: int) -> dict[str, Any]:
    record = scratch.Record(work=work)
    already = set(scratch.open_incidents())
    live = database_path()
    stale = work / "standby.sqlite3"
    began = time.monotonic()
    connections.close_all()
    snapshot_sqlite(live, stale)
    receipts = work / "receipts"
    issued = scratch.issue_invoices(receipts, count)
    before = scratch.counts()
    record.step("invoices", began, bool(issued), issued=len(issued))

    began = time.monotonic()
    connections.close_all()
    for suffix in ("-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    os.replace(stale, live)
    gone = scratch.counts()
    record.step(
        "vanished", began, gone["invoices"] == before["invoices"] - len(issued), invoices=gone["invoices"]
    )

    began = time.monotonic()
    failed = scratch.ledger_verify()
    record.check(failed, expect=1, when="after the loss")
    found = time.monotonic()
    findings = scratch.verify_findings(failed)
    opened = [pk for pk in scratch.open_incidents() if pk not in already]
    lost = {log: size - gone["log_sizes"].get(log, 0) for log, size in before["log_sizes"].items()}
    lost = {log: entries for log, entries in lost.items() if entries}
    record.step(
        "found", began, bool(opened) and len(opened) >= len(lost), findings=findings, incidents=opened
    )
    one_each = {item["log"]: item["receipt"] for item in issued}
    for path in one_each.values():
        record.check(scratch.command("ledger", "check-receipt", path), expect=3, when="after the loss")
    opened = [pk for pk in scratch.open_incidents() if pk not in already]  # check-receipt's too

    began = time.monotonic()
    replayed = scratch.command("ledger", "replay", str(receipts), "--json")
    record.check(replayed)
    report = replayed.json() or {}
    brought_back = {log["log"]: log["appended_count"] for log in report.get("logs", [])}
    record.step("replay", began, brought_back == lost, brought_back=brought_back)
    record.check(scratch.ledger_verify())
    rto = time.monotonic() - found
    for item in issued:
        record.check(scratch.command("ledger", "check-receipt", item["receipt"]))
    scratch.resolve_incidents(
        record, opened, "drill mass-missing: the lost entries replayed from the receipts"
    )
    left = [pk for pk in scratch.open_incidents() if pk not in already]
    record.step("incidents_resolved", began, not left, open=left)
    after = scratch.counts()
    record.step("counts_back", began, after == before, invoices=after["invoices"])
    return record.result(ok=True, rto_seconds=rto, rpo=lost, findings=findings, incidents=opened)


def markdown(report: dict[str, Any]) -> str:
    return scratch.markdown(report)


register(
    Scenario(
        NAME,
        "many merchants' invoices vanish behind the server's back: verify names them, receipts replay them",
        run,
        add_arguments,
        markdown,
    )
)
