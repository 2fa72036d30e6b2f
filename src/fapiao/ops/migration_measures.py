"""What a schema migration must not change: a per-merchant snapshot taken before and after it.

``fapiao migrate`` (:mod:`fapiao.ops.management.commands.migrate`) calls :func:`take_snapshot` just
before Django applies the pending migrations and again just after, and :mod:`fapiao.ops.migration_check`
compares the two.  Per merchant (and for the staff audit log) the snapshot holds:

- invoices: how many and their totals, per month × direction × colour;
- invoice lines: how many and their amount and tax, per month × tax rate (the 月度汇总 figures);
- the ledger: the log's size, its entry and node counts, and the newest signed head (size and root);
- the audit log: its size and sealed size, and its newest signed head (size and root).

Only what existed before is compared, so that other servers still writing during a rolling upgrade do
not count as a change: the "before" snapshot records the highest id of each measured table (its
:class:`Bound`), and the "after" snapshot reads only rows up to those ids, and the log sizes capped at
their size before (a log may grow meanwhile; it must not shrink).  An invoice's state is left out for
the same reason — a clerk may void an invoice meanwhile; a state changed behind the ledger's back is
what the nightly ``ledger verify`` finds.

Each group is one aggregate query over every merchant at once (about ten queries whatever the data).
The queries name only the columns they read, so a pending migration that adds columns does not disturb
the "before" snapshot.  A group whose tables do not exist yet is left out, and a database with no
merchant table (a new installation, the test database) has no snapshot at all: nothing to lose.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import connections
from django.db.models import Count, Model, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import TruncMonth

from fapiao.accounts.models import Merchant
from fapiao.audit.models import AuditHead, AuditLog
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead

#: Owner key (a merchant's USCC, or ``staff``) → measure name → value (JSON-able).
Figures = dict[str, dict[str, Any]]
STAFF = "staff"
#: The tables whose rows are only ever added: the "after" snapshot reads them up to the "before" ids.
BOUNDED: tuple[type[Model], ...] = (Invoice, InvoiceLine, LogEntry, LogNode, TreeHead, AuditHead)


@dataclass(frozen=True)
class Bound:
    """Where the records stood before the migrations: the highest id per table, the log sizes."""

    ids: dict[str, int] = field(default_factory=dict)  # db_table → highest id (0: empty)
    sizes: dict[str, int] = field(default_factory=dict)  # "<owner> <measure>" → size before


@dataclass(frozen=True)
class Snapshot:
    figures: Figures
    bound: Bound


def take_snapshot(using: str = "default", *, bound: Bound | None = None) -> Snapshot | None:
    """Every measure of every merchant (up to ``bound``), or None when there is no merchant table."""
    tables = set(connections[using].introspection.table_names())
    if Merchant._meta.db_table not in tables:
        return None
    reading = _Reading(using, tables, bound or Bound(ids=_highest_ids(using, tables)))
    for group in (reading.invoices, reading.lines, reading.ledger, reading.audit):
        group()
    return Snapshot(dict(reading.figures), Bound(reading.bound.ids, reading.sizes))


def merchant_names(using: str, usccs: list[str]) -> dict[str, str]:
    return dict(Merchant.objects.using(using).filter(uscc__in=usccs).values_list("uscc", "name"))


def _highest_ids(using: str, tables: set[str]) -> dict[str, int]:
    """One query: ``SELECT (SELECT MAX(id) FROM t1), (SELECT MAX(id) FROM t2), …``."""
    present = [model._meta.db_table for model in BOUNDED if model._meta.db_table in tables]
    if not present:
        return {}
    quote = connections[using].ops.quote_name
    # Table names from our own models, quoted: nothing here comes from input.
    columns = ", ".join(f"(SELECT MAX({quote('id')}) FROM {quote(table)})" for table in present)  # noqa: S608
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT {columns}")
        row = cursor.fetchone()
    return {table: int(value or 0) for table, value in zip(present, row, strict=True)}


def _month(value: date | None) -> str:
    return value.strftime("%Y-%m") if value is not None else "none"


class _Reading:
    """One snapshot being taken: the aggregate queries, each adding its figures per owner."""

    def __init__(self, using: str, tables: set[str], bound: Bound) -> None:
        self.using, self.tables, self.bound = using, tables, bound
        self.owners = dict(Merchant.objects.using(using).values_list("pk", "uscc"))
        self.figures: Figures = defaultdict(dict)
        self.sizes: dict[str, int] = {}

    def present(self, *models: type[Model]) -> bool:
        return all(model._meta.db_table in self.tables for model in models)

    def rows(self, model: type[Model]) -> QuerySet[Any]:
        """The model's rows that existed before the migrations (all of them, for the "before")."""
        highest = self.bound.ids.get(model._meta.db_table, 0)
        rows: QuerySet[Any] = model._default_manager.using(self.using).filter(pk__lte=highest)
        return rows

    def owner(self, merchant_id: int | None) -> str:
        return STAFF if merchant_id is None else self.owners.get(merchant_id, f"merchant {merchant_id}")

    def size(self, owner: str, measure: str, value: int) -> None:
        """A log's size, capped at its size before: growing is not a change, shrinking is."""
        key = f"{owner} {measure}"
        before = self.bound.sizes.get(key)
        self.sizes[key] = value
        self.figures[owner][measure] = value if before is None else min(value, before)

    def invoices(self) -> None:
        if not self.present(Invoice):
            return
        rows = (
            self.rows(Invoice)
            .annotate(month=TruncMonth("issued_on"))
            .values("merchant_id", "month", "direction", "colour")
            .annotate(
                n=Count("pk"), amount=Sum("total_amount"), tax=Sum("total_tax"), total=Sum("total_with_tax")
            )
            .order_by()
        )
        for row in rows:
            key = f"发票 {_month(row['month'])} {row['direction']} {row['colour']}"
            figures = self.figures[self.owner(row["merchant_id"])]
            figures[f"{key} 张数"] = row["n"]
            figures[f"{key} 金额"] = row["amount"] or 0
            figures[f"{key} 税额"] = row["tax"] or 0
            figures[f"{key} 价税合计"] = row["total"] or 0

    def lines(self) -> None:
        if not self.present(Invoice, InvoiceLine):
            return
        rows = (
            self.rows(InvoiceLine)
            .annotate(month=TruncMonth("invoice__issued_on"))
            .values("merchant_id", "month", "tax_rate")
            .annotate(n=Count("pk"), amount=Sum("amount"), tax=Sum("tax"))
            .order_by()
        )
        for row in rows:
            key = f"明细 {_month(row['month'])} 税率 {row['tax_rate']}"
            figures = self.figures[self.owner(row["merchant_id"])]
            figures[f"{key} 行数"] = row["n"]
            figures[f"{key} 金额"] = row["amount"] or 0
            figures[f"{key} 税额"] = row["tax"] or 0

    def ledger(self) -> None:
        if not self.present(Log, LogEntry, LogNode, TreeHead):
            return
        for merchant_id, size in Log.objects.using(self.using).values_list("merchant_id", "size"):
            self.size(self.owner(merchant_id), "账本 长度", size)
        for model, name in ((LogEntry, "账本 条目数"), (LogNode, "账本 节点数")):
            for row in self.rows(model).values("merchant_id").annotate(n=Count("pk")).order_by():
                self.figures[self.owner(row["merchant_id"])][name] = row["n"]
        newest = self.rows(TreeHead).filter(merchant_id=OuterRef("merchant_id")).order_by("-size")
        heads = self.rows(TreeHead).filter(size=Subquery(newest.values("size")[:1]))
        for merchant_id, size, root in heads.values_list("merchant_id", "size", "root"):
            self.figures[self.owner(merchant_id)]["账本 最新签名树头"] = f"{size}:{bytes(root).hex()}"

    def audit(self) -> None:
        if not self.present(AuditLog, AuditHead):
            return
        owner_of_log: dict[int, str] = {}
        logs = AuditLog.objects.using(self.using).values_list("pk", "merchant_id", "size", "sealed_size")
        for log_id, merchant_id, size, sealed in logs:
            owner = owner_of_log[log_id] = self.owner(merchant_id)
            self.size(owner, "审计日志 长度", size)
            self.size(owner, "审计日志 已封存长度", sealed)
        newest = self.rows(AuditHead).filter(log_id=OuterRef("log_id")).order_by("-size")
        heads = self.rows(AuditHead).filter(size=Subquery(newest.values("size")[:1]))
        for log_id, size, root in heads.values_list("log_id", "size", "root"):
            owner = owner_of_log.get(log_id, f"log {log_id}")
            self.figures[owner]["审计日志 最新签名树头"] = f"{size}:{bytes(root).hex()}"
