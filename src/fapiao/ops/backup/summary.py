"""What a backup's manifest says the database holds, computed with plain SQL on any DB-API cursor.

The same function runs on the snapshot when the backup is made and on the scratch copy when it is
verified (SQLite's own ``sqlite3`` cursor, or a Django cursor on PostgreSQL), so the two can only
differ where the data does.  Money is integer fen, written as strings (never JSON numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from django.apps import apps

from fapiao.accounts.models import Merchant
from fapiao.audit.models import AuditHead, AuditLog
from fapiao.core.signing import b64encode
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.ledger.models import Log, LogEntry, TreeHead
from fapiao.recovery.models import Evidence


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def fetchall(self) -> list[Any]: ...


def _rows(cursor: Cursor, sql: str) -> list[tuple[Any, ...]]:
    cursor.execute(sql)
    return [tuple(row) for row in cursor.fetchall()]


def _t(model: Any) -> str:
    return str(model._meta.db_table)


def summarise(cursor: Cursor) -> dict[str, Any]:
    """Per merchant: invoices, their totals per month × rate; per log: size and latest head; per
    audit log: its latest head; the key versions the data needs; the evidence it references."""
    merchant, invoice, line = _t(Merchant), _t(Invoice), _t(InvoiceLine)
    merchants: dict[str, Any] = {}
    for uscc, count, total in _rows(
        cursor,
        f"SELECT m.uscc, COUNT(*), SUM(i.total_with_tax) FROM {invoice} i "  # noqa: S608  names from models
        f"JOIN {merchant} m ON m.id = i.merchant_id GROUP BY m.uscc",
    ):
        merchants[uscc] = {"invoices": int(count), "total_with_tax": str(int(total or 0)), "months": {}}
    for uscc, month, rate, lines, amount, tax in _rows(
        cursor,
        f"SELECT m.uscc, SUBSTR(CAST(i.issued_on AS TEXT), 1, 7), l.tax_rate, COUNT(*), SUM(l.amount), "  # noqa: S608
        f"SUM(l.tax) FROM {line} l JOIN {invoice} i ON i.id = l.invoice_id "
        f"JOIN {merchant} m ON m.id = i.merchant_id GROUP BY 1, 2, 3",
    ):
        months = merchants.setdefault(uscc, {"invoices": 0, "total_with_tax": "0", "months": {}})["months"]
        months.setdefault(month, {})[rate] = {
            "lines": int(lines),
            "amount": str(int(amount)),
            "tax": str(int(tax)),
        }
    return {
        "merchants": merchants,
        "ledger": _ledger(cursor, merchant),
        "audit": _audit(cursor),
        "keys": _keys(cursor),
        "evidence": sorted(
            row[0]
            for row in _rows(cursor, f"SELECT DISTINCT sha256 FROM {_t(Evidence)}")  # noqa: S608
        ),
    }


def _ledger(cursor: Cursor, merchant: str) -> dict[str, Any]:
    head, log, entry = _t(TreeHead), _t(Log), _t(LogEntry)
    logs: dict[str, Any] = {}
    sizes = f"SELECT m.uscc, l.size FROM {log} l JOIN {merchant} m ON m.id = l.merchant_id"  # noqa: S608
    for uscc, size in _rows(cursor, sizes):
        logs[uscc] = {"size": int(size), "entries": 0, "head_size": 0, "head_root": ""}
    for uscc, count in _rows(
        cursor,
        f"SELECT m.uscc, COUNT(*) FROM {entry} e JOIN {merchant} m ON m.id = e.merchant_id GROUP BY m.uscc",  # noqa: S608
    ):
        logs.setdefault(uscc, {"size": 0, "entries": 0, "head_size": 0, "head_root": ""})["entries"] = int(
            count
        )
    for uscc, size, root in _rows(
        cursor,
        f"SELECT m.uscc, h.size, h.root FROM {head} h JOIN {merchant} m ON m.id = h.merchant_id "  # noqa: S608
        f"WHERE h.size = (SELECT MAX(h2.size) FROM {head} h2 WHERE h2.merchant_id = h.merchant_id)",
    ):
        found = logs.setdefault(uscc, {"size": 0, "entries": 0, "head_size": 0, "head_root": ""})
        found.update(head_size=int(size), head_root=b64encode(bytes(root)))
    return logs


def _audit(cursor: Cursor) -> dict[str, Any]:
    head, log = _t(AuditHead), _t(AuditLog)
    found: dict[str, Any] = {}
    for name, size, root in _rows(
        cursor,
        f"SELECT l.name, h.size, h.root FROM {head} h JOIN {log} l ON l.id = h.log_id "  # noqa: S608
        f"WHERE h.size = (SELECT MAX(h2.size) FROM {head} h2 WHERE h2.log_id = h.log_id)",
    ):
        found[name] = {"head_size": int(size), "head_root": b64encode(bytes(root))}
    return found


def _keys(cursor: Cursor) -> dict[str, list[Any]]:
    """The signing keys of the stored heads and the data-key versions of the stored ciphertexts: a
    restore needs every one of them (they are backed up apart, never in a backup)."""
    signing = {
        row[0]
        for model in (TreeHead, AuditHead)
        for row in _rows(cursor, f"SELECT DISTINCT key_id FROM {_t(model)}")  # noqa: S608
    }
    data: set[int] = set()
    for model in apps.get_models():
        if any(field.name == "data_key_version" for field in model._meta.concrete_fields):
            sql = f"SELECT DISTINCT data_key_version FROM {_t(model)} WHERE data_key_version IS NOT NULL"  # noqa: S608
            data.update(int(row[0]) for row in _rows(cursor, sql))
    return {"signing": sorted(signing), "data": sorted(data)}
