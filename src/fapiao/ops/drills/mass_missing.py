"""``fapiao drill mass-missing``: many merchants' latest invoices vanish at once, behind the server's
back; the ledger verify names every one, and the receipts the merchants kept bring them back
(应急预案, scenario 7).

On the scratch copy (:mod:`fapiao.ops.drills.scratch`): one invoice per merchant, then a raw
snapshot of the database put aside (a standby that falls behind), more invoices for every merchant
that can issue, then the database swapped for the stale snapshot and the early invoices' rows
deleted with SQL (their ledger entries kept) — no command, nothing in the application knows. Then
the plan's commands: ``fapiao ledger verify`` fails, names per log the entries that are gone (the
witness saw them) and each row without its entry, and opens incidents; each missing row becomes a
finding every user of its merchant is notified of; ``fapiao ledger check-receipt`` on each
merchant's receipt answers 3 (valid but no longer proven); ``fapiao ledger replay`` with the
receipts brings back every lost entry and its row; each missing row comes back through the
merchant's one-click case (申请恢复), reviewed and restored from the ledger; then ``fapiao ledger
verify`` exit 0, every receipt ``check-receipt`` exit 0, each incident acknowledged and resolved.
RPO: per log, the entries lost; the replay must bring back every one. RTO: from the verify that
found the loss until the ledger verifies clean.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from django.db import connection, connections, transaction

from fapiao.accounts.choices import Role
from fapiao.accounts.models import User
from fapiao.core.cases import CaseState
from fapiao.invoices.findings import MISSING
from fapiao.invoices.models import InvoiceFinding
from fapiao.ops.backup.service import database_path, snapshot_sqlite
from fapiao.ops.drills import Scenario, register, scratch
from fapiao.recovery.loss import open_case_for_finding
from fapiao.recovery.models import Notification
from fapiao.recovery.remedies import resolve_case
from fapiao.recovery.review import approve_case, claim_case
from fapiao.recovery.services import submit_case

NAME = "mass-missing"


def add_arguments(parser: Any) -> None:
    scratch.add_arguments(parser, invoices=6)


def run(options: dict[str, Any]) -> dict[str, Any]:
    return scratch.run_drill(NAME, options, inside, markdown, default_invoices=6)


def _swap(live: Path, stale: Path) -> None:
    """The database replaced by the stale snapshot, as a failover to a lagging standby does."""
    connections.close_all()
    for suffix in ("-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    os.replace(stale, live)


def _lose_rows(numbers: list[str]) -> None:
    """Invoice rows deleted with SQL, their ledger entries kept (a crash mid-upload, a hand-made fix)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for number in numbers:
            cursor.execute(
                "DELETE FROM invoices_invoiceline WHERE invoice_id IN "
                "(SELECT id FROM invoices_invoice WHERE number = %s)",
                [number],
            )
            cursor.execute("DELETE FROM invoices_invoice WHERE number = %s", [number])


def _merchants_told(numbers: list[str]) -> dict[str, int]:
    """What reached the merchants: a finding per lost row, and each of the merchant's users notified."""
    found = InvoiceFinding.objects.filter(number__in=numbers, cleared_at=None, kind=MISSING)
    return {
        "findings": found.exclude(notified_at=None).count(),
        "people": Notification.objects.filter(params__number__in=numbers).values("user").distinct().count(),
    }


def _staff(username: str, role: Role) -> User:
    user, _made = User.objects.get_or_create(
        username=username, defaults={"role": role, "email": f"{username}@drill.invalid"}
    )
    return user


def _restore_by_cases(numbers: list[str]) -> list[str]:
    """Each finding's one-click case (the merchant's 申请恢复), reviewed and restored from the ledger."""
    reviewers = [_staff("drill-reviewer", Role.REVIEWER), _staff("drill-reviewer2", Role.REVIEWER)]
    restored = []
    for finding in InvoiceFinding.objects.filter(number__in=numbers, cleared_at=None).order_by("number"):
        clerk = User.objects.filter(merchant_id=finding.merchant_id, is_active=True).order_by("pk").first()
        if clerk is None:
            continue
        case, _created = open_case_for_finding(user=clerk, finding=finding)
        case = submit_case(user=clerk, case=case, version=case.version)
        for reviewer in reviewers:
            case = claim_case(user=reviewer, case=case, version=case.version)
            case = approve_case(user=reviewer, case=case, version=case.version, template="receipt_verified")
            if case.state != CaseState.AWAITING_SECOND:
                break
        case, invoice, _receipt = resolve_case(
            user=reviewer, case=case, version=case.version, remedy="restore"
        )
        restored.append(invoice.number)
    return restored


def _counts_back(
    record: scratch.Record,
    began: float,
    before: dict[str, Any],
    early: list[dict[str, Any]],
    restored: list[str],
) -> None:
    """Every invoice back; each log longer by the restore entry of each row a case restored."""
    after = scratch.counts()
    grown = dict(before["log_sizes"])
    for item in early:
        grown[item["log"]] += item["number"] in restored
    back = after["invoices"] == before["invoices"] and after["log_sizes"] == grown
    record.step("counts_back", began, back, before=before, after=after)


def inside(work: Path, count: int) -> dict[str, Any]:
    record = scratch.Record(work=work)
    already = set(scratch.open_incidents())
    live = database_path()
    stale = work / "standby.sqlite3"
    began = time.monotonic()
    receipts = work / "receipts"
    early = scratch.issue_invoices(work / "early-receipts", 2, sealed_every=0)  # one per merchant
    connections.close_all()
    snapshot_sqlite(live, stale)
    issued = scratch.issue_invoices(receipts, count)
    before = scratch.counts()
    record.step("invoices", began, bool(issued), issued=len(issued) + len(early))

    began = time.monotonic()
    rows_lost = sorted(item["number"] for item in early)
    _swap(live, stale)
    _lose_rows(rows_lost)
    gone = scratch.counts()
    expected = before["invoices"] - len(issued) - len(rows_lost)
    record.step("vanished", began, gone["invoices"] == expected, invoices=gone["invoices"])

    began = time.monotonic()
    failed = scratch.ledger_verify()
    record.check(failed, expect=1, when="after the loss")
    found = time.monotonic()
    findings = scratch.verify_findings(failed)
    opened = [pk for pk in scratch.open_incidents() if pk not in already]
    told = _merchants_told(rows_lost)
    record.step("merchants_told", began, told["findings"] == len(rows_lost) and told["people"] > 0, **told)
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
    began = time.monotonic()
    restored = _restore_by_cases(rows_lost)
    record.step("cases_restore_rows", began, restored == rows_lost, restored=restored)
    record.check(scratch.ledger_verify())
    rto = time.monotonic() - found
    for item in issued:
        record.check(scratch.command("ledger", "check-receipt", item["receipt"]))
    scratch.resolve_incidents(
        record, opened, "drill mass-missing: the lost entries replayed from the receipts"
    )
    left = [pk for pk in scratch.open_incidents() if pk not in already]
    record.step("incidents_resolved", began, not left, open=left)
    _counts_back(record, began, before, early, restored)
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
