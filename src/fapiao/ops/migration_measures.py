"""What a schema migration must not change: a per-merchant snapshot taken before and after it.

``fapiao migrate`` (:mod:`fapiao.ops.management.commands.migrate`) calls :func:`take_snapshot` just
before Django applies the pending migrations and again just after, and :mod:`fapiao.ops.migration_check`
compares the two.  Per merchant (and for the staff audit log) the snapshot holds:

- invoices: how many and their totals, per month × direction × colour × state;
- invoice lines: how many and their amount and tax, per month × tax rate (the 月度汇总 figures);
- the ledger: the log's size, its entry and node counts, and the newest signed head (size and root);
- the audit log: its size and sealed size, and its newest signed head (size and root).

Each group is one aggregate query over every merchant at once, so the cost does not grow with the
number of merchants (about ten queries whatever the data).  The queries name only the columns they
read, so a pending migration that adds columns does not disturb the "before" snapshot.  A group whose
tables do not exist yet is left out, and a database with no merchant table (a new installation, the
test database) has no snapshot at all: there is nothing to lose.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from django.db import connections
from django.db.models import Count, Model, OuterRef, Subquery, Sum
from django.db.models.functions import TruncMonth

from fapiao.accounts.models import Merchant
from fapiao.audit.models import AuditHead, AuditLog
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead

#: The snapshot: owner key (a merchant's USCC, or ``staff``) → measure name → value (JSON-able).
Snapshot = dict[str, dict[str, Any]]
STAFF = "staff"


def take_snapshot(using: str = "default") -> Snapshot | None:
    """Every measure of every merchant, or None when the database holds no merchant table yet."""
    tables = set(connections[using].introspection.table_names())
    if Merchant._meta.db_table not in tables:
        return None
    owners = dict(Merchant.objects.using(using).values_list("pk", "uscc"))
    snapshot: Snapshot = defaultdict(dict)
    for group in (_invoices, _lines, _ledger, _audit):
        group(using, tables, owners, snapshot)
    return dict(snapshot)


def merchant_names(using: str, usccs: list[str]) -> dict[str, str]:
    return dict(Merchant.objects.using(using).filter(uscc__in=usccs).values_list("uscc", "name"))


def _present(tables: set[str], *models: type[Model]) -> bool:
    return all(model._meta.db_table in tables for model in models)


def _month(value: date | None) -> str:
    return value.strftime("%Y-%m") if value is not None else "none"


def _invoices(using: str, tables: set[str], owners: dict[int, str], snapshot: Snapshot) -> None:
    if not _present(tables, Invoice):
        return
    rows = (
        Invoice.objects.using(using)
        .annotate(month=TruncMonth("issued_on"))
        .values("merchant_id", "month", "direction", "colour", "state")
        .annotate(
            count=Count("pk"), amount=Sum("total_amount"), tax=Sum("total_tax"), total=Sum("total_with_tax")
        )
        .order_by()
    )
    for row in rows:
        key = f"发票 {_month(row['month'])} {row['direction']} {row['colour']} {row['state']}"
        figures = snapshot[owners.get(row["merchant_id"], str(row["merchant_id"]))]
        figures[f"{key} 张数"] = row["count"]
        figures[f"{key} 金额"] = row["amount"] or 0
        figures[f"{key} 税额"] = row["tax"] or 0
        figures[f"{key} 价税合计"] = row["total"] or 0


def _lines(using: str, tables: set[str], owners: dict[int, str], snapshot: Snapshot) -> None:
    if not _present(tables, Invoice, InvoiceLine):
        return
    rows = (
        InvoiceLine.objects.using(using)
        .annotate(month=TruncMonth("invoice__issued_on"))
        .values("merchant_id", "month", "tax_rate")
        .annotate(count=Count("pk"), amount=Sum("amount"), tax=Sum("tax"))
        .order_by()
    )
    for row in rows:
        key = f"明细 {_month(row['month'])} 税率 {row['tax_rate']}"
        figures = snapshot[owners.get(row["merchant_id"], str(row["merchant_id"]))]
        figures[f"{key} 行数"] = row["count"]
        figures[f"{key} 金额"] = row["amount"] or 0
        figures[f"{key} 税额"] = row["tax"] or 0


def _ledger(using: str, tables: set[str], owners: dict[int, str], snapshot: Snapshot) -> None:
    if not _present(tables, Log, LogEntry, LogNode, TreeHead):
        return
    for merchant_id, size in Log.objects.using(using).values_list("merchant_id", "size"):
        snapshot[owners.get(merchant_id, str(merchant_id))]["账本 长度"] = size
    for model, name in ((LogEntry, "账本 条目数"), (LogNode, "账本 节点数")):
        counts = model.objects.using(using).values("merchant_id").annotate(count=Count("pk")).order_by()
        for row in counts:
            snapshot[owners.get(row["merchant_id"], str(row["merchant_id"]))][name] = row["count"]
    newest = TreeHead.objects.using(using).filter(merchant_id=OuterRef("merchant_id")).order_by("-size")
    heads = TreeHead.objects.using(using).filter(size=Subquery(newest.values("size")[:1]))
    for merchant_id, size, root in heads.values_list("merchant_id", "size", "root"):
        snapshot[owners.get(merchant_id, str(merchant_id))]["账本 最新签名树头"] = (
            f"{size}:{bytes(root).hex()}"
        )


def _audit(using: str, tables: set[str], owners: dict[int, str], snapshot: Snapshot) -> None:
    if not _present(tables, AuditLog, AuditHead):
        return
    logs = AuditLog.objects.using(using).values_list("pk", "merchant_id", "size", "sealed_size")
    owner_of_log: dict[int, str] = {}
    for log_id, merchant_id, size, sealed in logs:
        owner = STAFF if merchant_id is None else owners.get(merchant_id, str(merchant_id))
        owner_of_log[log_id] = owner
        snapshot[owner]["审计日志 长度"] = size
        snapshot[owner]["审计日志 已封存长度"] = sealed
    newest = AuditHead.objects.using(using).filter(log_id=OuterRef("log_id")).order_by("-size")
    heads = AuditHead.objects.using(using).filter(size=Subquery(newest.values("size")[:1]))
    for log_id, size, root in heads.values_list("log_id", "size", "root"):
        owner = owner_of_log.get(log_id, f"log {log_id}")
        snapshot[owner]["审计日志 最新签名树头"] = f"{size}:{bytes(root).hex()}"
