"""``fapiao drill bad-migration``: an upgrade's migration damages invoice rows; the ledger verify
catches it, an incident opens, and the pre-upgrade backup brings the rows back (应急预案, scenario 4).

On the scratch copy (:mod:`fapiao.ops.drills.scratch`): invoices, then the plan's prevention step
(``fapiao backup create`` and ``fapiao backup verify``: the way back), ``fapiao migrate --check``,
then a lossy "migration" — in one transaction, as a migration runs, it cuts every buyer name to
eight characters (a column narrowed without looking).  ``fapiao ledger verify`` must fail and open
an integrity incident; ``fapiao backup restore <pre-upgrade id> --force`` puts the database back
(the damaged one kept aside).  Recovery is proven by the plan's checks: ``fapiao migrate --check``,
``fapiao ledger verify`` exit 0, every buyer name as issued, and ``fapiao audit verify`` clean but
for the audit records written after the backup (the restore loses them; the witness remembers).
RTO: from the detection until the ledger verifies clean.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from fapiao.invoices.models import Invoice
from fapiao.ops.drills import Scenario, register, scratch

NAME = "bad-migration"
WIDTH = 8


def add_arguments(parser: Any) -> None:
    scratch.add_arguments(parser, invoices=3)


def run(options: dict[str, Any]) -> dict[str, Any]:
    return scratch.run_drill(NAME, options, inside, markdown, default_invoices=3)


def _names() -> dict[str, str]:
    return dict(Invoice.objects.values_list("number", "buyer_name"))


def inside(work: Path, count: int) -> dict[str, Any]:
    record = scratch.Record(work=work)
    already = set(scratch.open_incidents())
    began = time.monotonic()
    scratch.issue_invoices(work / "receipts", count)
    names = _names()
    record.step("invoices", began, bool(names), invoices=len(names))
    backup_id = scratch.backup_and_verify(record, when="before the upgrade")
    record.check(scratch.command("migrate", "--check"), when="before the upgrade")

    began = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE invoices_invoice SET buyer_name = substr(buyer_name, 1, {WIDTH})")  # noqa: S608
        damaged = cursor.rowcount
    record.step("lossy_migration", began, damaged > 0, rows=damaged)

    began = time.monotonic()
    failed = scratch.ledger_verify()
    record.check(failed, expect=1, when="after the migration")
    findings = scratch.verify_findings(failed)
    opened = [pk for pk in scratch.open_incidents() if pk not in already]
    detected = time.monotonic()
    record.step("detected", began, bool(opened), findings=findings, incidents=opened)

    began = time.monotonic()
    connection.close()
    record.check(scratch.command("backup", "restore", backup_id, "--force"))
    connection.close()
    record.check(scratch.ledger_verify())
    rto = time.monotonic() - detected
    restored = _names()
    record.step(
        "restored",
        began,
        restored == names,
        names_as_issued=sum(restored.get(n) == v for n, v in names.items()),
    )
    record.check(scratch.command("migrate", "--check"))
    audit = scratch.audit_after_restore(record)
    return record.result(
        ok=True,
        rto_seconds=rto,
        backup_id=backup_id,
        findings_after_migration=findings,
        incidents=opened,
        audit_after_restore=audit,
    )


def markdown(report: dict[str, Any]) -> str:
    return scratch.markdown(report)


register(
    Scenario(
        NAME,
        "a migration cuts buyer names: ledger verify fails, incident opened; the pre-upgrade backup restores",
        run,
        add_arguments,
        markdown,
    )
)
