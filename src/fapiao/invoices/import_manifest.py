"""The signed manifest of an import run (``fapiao-import/1``) and its verification.

The manifest (docs/formats.md) names every file with its SHA-256; counts the records read,
accepted, rejected and duplicates (in all and per file); gives the merchant's totals per month ×
rate × kind in the run's direction before and after the run, and what the run's own invoices add;
the SHA-256 of every accepted record; and the SHA-256 of the rejected records' reasons file
(:func:`reasons_lines`).  It is signed like the backup manifest (:mod:`fapiao.core.signed_document`)
with the ledger's key.  Only ``run``, ``started_at`` and ``committed_at`` name the run: two runs
of the same files into the same records give manifests equal in everything else.

:func:`verify_run` recomputes it from the database and the files and names every difference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncMonth

from fapiao.accounts.models import Merchant
from fapiao.core.canonical import canonical_bytes, utc_stamp
from fapiao.core.choices import Direction, EntryKind, InvoiceState, RecordStatus
from fapiao.core.money import format_money
from fapiao.core.signed_document import check_signed, sign_document
from fapiao.formats.mapping import ColumnMapping
from fapiao.formats.readers import read_invoice_file
from fapiao.invoices.import_plan import count_statuses
from fapiao.invoices.import_records import record_sha256
from fapiao.invoices.models import ImportedRecord, ImportRun, Invoice, InvoiceLine
from fapiao.invoices.rows import document_for
from fapiao.ledger.models import LogEntry
from fapiao.platform import keys

FORMAT = "fapiao-import/1"
RUN_FIELDS = ("run", "started_at", "committed_at")  # the fields that name the run


def totals(invoices: QuerySet[Invoice]) -> list[dict[str, Any]]:
    """Counts and sums per month × rate × kind of ``invoices`` (voided and reverted left out)."""
    rows = (
        InvoiceLine.objects.filter(
            invoice__in=invoices.exclude(state__in=[InvoiceState.VOIDED, InvoiceState.REVERTED]).values("pk")
        )
        .annotate(month=TruncMonth("invoice__issued_on"))
        .values("month", "tax_rate", "invoice__kind")
        .annotate(amount=Sum("amount"), tax=Sum("tax"), invoices=Count("invoice", distinct=True))
        .order_by("month", "tax_rate", "invoice__kind")
    )
    return [
        {
            "month": row["month"].strftime("%Y-%m"),
            "tax_rate": row["tax_rate"],
            "kind": row["invoice__kind"],
            "invoices": row["invoices"],
            "amount": format_money(row["amount"] or 0),
            "tax": format_money(row["tax"] or 0),
        }
        for row in rows
    ]


def merchant_totals(merchant: Merchant, direction: str) -> list[dict[str, Any]]:
    return totals(Invoice.objects.filter(merchant=merchant, direction=direction))


def _records(run: ImportRun) -> QuerySet[ImportedRecord]:
    return ImportedRecord.objects.filter(merchant_id=run.merchant_id, run=run)


def reasons_lines(run: ImportRun) -> list[bytes]:
    """The reasons file: one RFC 8785 line per rejected record, in file and record order."""
    order = {item["sha256"]: index for index, item in enumerate(run.files)}
    rejected = list(
        _records(run)
        .filter(status=RecordStatus.REJECTED)
        .values_list("file_sha256", "position", "number", "reasons")
    )
    rejected.sort(key=lambda row: (order.get(row[0], len(order)), row[1]))
    return [
        canonical_bytes({"file": sha, "position": position, "number": number, "reasons": reasons}) + b"\n"
        for sha, position, number, reasons in rejected
    ]


def build_manifest(run: ImportRun, *, after: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The manifest of ``run`` from its rows (``after``: the totals after it, else as recorded)."""
    order = {item["sha256"]: index for index, item in enumerate(run.files)}
    rows = list(
        _records(run).values_list(
            "file_sha256", "position", "number", "record_sha256", "status", "invoice_id"
        )
    )
    rows.sort(key=lambda row: (order.get(row[0], len(order)), row[1]))
    by_file: dict[str, list[str]] = {}
    for sha, _position, _number, _hash, status, _invoice in rows:
        by_file.setdefault(sha, []).append(status)
    files = [
        {
            "name": item["name"],
            "sha256": item["sha256"],
            "size": item["size"],
            "format": item["format"],
            "problems": item["problems"],
            **count_statuses(by_file.get(item["sha256"], [])),
        }
        for item in run.files
    ]
    imported = Invoice.objects.filter(
        pk__in=[row[5] for row in rows if row[4] == RecordStatus.ACCEPTED and row[5] is not None]
    )
    reasons = b"".join(reasons_lines(run))
    manifest = run.manifest["manifest"] if run.manifest else {}
    return {
        "format": FORMAT,
        "run": run.run_id,
        "merchant": run.merchant.uscc,
        "direction": run.direction,
        "mapping": run.mapping_name or None,
        "started_at": utc_stamp(run.created_at),
        "committed_at": manifest.get("committed_at") or utc_stamp(run.committed_at or run.created_at),
        "files": files,
        "counts": count_statuses(row[4] for row in rows),
        "totals": {
            "before": run.before,
            "after": after if after is not None else manifest.get("totals", {}).get("after", []),
            "imported": totals(imported)
            if run.reverted_at is None
            else manifest.get("totals", {}).get("imported", []),
        },
        "records": [
            {"file": sha, "position": position, "number": number, "sha256": digest}
            for sha, position, number, digest, status, _invoice in rows
            if status == RecordStatus.ACCEPTED
        ],
        "rejected": {
            "count": sum(1 for row in rows if row[4] == RecordStatus.REJECTED),
            "sha256": hashlib.sha256(reasons).hexdigest(),
        },
    }


def sign_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return sign_document(manifest, keys.signing_key(), format_name=FORMAT)


def write_report(run: ImportRun, directory: Path) -> list[Path]:
    """``manifest.json`` (the signed document) and ``rejected.jsonl`` (the reasons) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / f"{run.run_id}-manifest.json"
    reasons_path = directory / f"{run.run_id}-rejected.jsonl"
    manifest_path.write_bytes(canonical_bytes(run.manifest) + b"\n")
    reasons_path.write_bytes(b"".join(reasons_lines(run)))
    return [manifest_path, reasons_path]


def _differences(where: str, want: Any, have: Any) -> list[str]:
    if isinstance(want, Mapping) and isinstance(have, Mapping):
        found: list[str] = []
        for key in sorted(set(want) | set(have)):
            found += _differences(f"{where}.{key}" if where else str(key), want.get(key), have.get(key))
        return found
    if isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        found = []
        for index, (left, right) in enumerate(zip(want, have, strict=True)):
            found += _differences(f"{where}[{index}]", left, right)
        return found
    return [] if want == have else [f"{where}: 清单为 {want!r}，现为 {have!r}"]


def verify_run(run: ImportRun, *, paths: Sequence[str] = ()) -> list[str]:
    """Every difference between ``run``'s signed manifest and what the database and files say now."""
    checked = check_signed(run.manifest, keys.registry(), format_name=FORMAT)
    if checked.manifest is None:
        return [f"清单签名无效（{checked.refusal}）"]
    signed = checked.manifest
    problems = _differences(
        "",
        {k: v for k, v in signed.items() if k != "totals"},
        {k: v for k, v in build_manifest(run).items() if k != "totals"},
    )
    if run.reverted_at is None:
        imported = signed.get("totals", {}).get("imported")
        problems += _differences("totals.imported", imported, build_manifest(run)["totals"]["imported"])
    problems += _check_files(run, signed, paths)
    if run.reverted_at is None:
        problems += _check_invoices(run)
    return problems


def _check_files(run: ImportRun, signed: Mapping[str, Any], paths: Sequence[str]) -> list[str]:
    problems: list[str] = []
    located = list(paths) or [item.get("path", "") for item in run.files]
    accepted: dict[str, dict[int, str]] = {}
    for record in signed.get("records", []):
        accepted.setdefault(record["file"], {})[record["position"]] = record["sha256"]
    by_hash: dict[str, bytes] = {}
    for path in located:
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            problems.append(f"文件 {path} 无法读取：{error.strerror}")
            continue
        by_hash[hashlib.sha256(data).hexdigest()] = data
    for item in signed.get("files", []):
        found = by_hash.get(item["sha256"])
        if found is None:
            problems.append(f"文件 {item['name']}：找不到 SHA-256 为 {item['sha256']} 的文件（已改动或缺失）")
            continue
        result = read_invoice_file(found, mapping=_mapping_of(run))
        for position, digest in accepted.get(item["sha256"], {}).items():
            if position >= len(result.records) or record_sha256(result.records[position]) != digest:
                problems.append(f"文件 {item['name']} 第 {position + 1} 条记录的 SHA-256 与清单不符")
    return problems


def _mapping_of(run: ImportRun) -> ColumnMapping | None:
    from_files = [item.get("mapping") for item in run.files if item.get("mapping")]
    if not from_files:
        return None
    mapping, _problems = ColumnMapping.from_dict(from_files[0])
    return mapping


def _check_invoices(run: ImportRun) -> list[str]:
    """Each accepted record's invoice row against its ``import`` ledger entry."""
    problems: list[str] = []
    rows = _records(run).filter(status=RecordStatus.ACCEPTED)
    for record in rows.select_related("invoice", "invoice__original").iterator(chunk_size=500):
        invoice = record.invoice
        if invoice is None:
            problems.append(f"发票 {record.number}：导入记录没有对应的发票行")
            continue
        entry = LogEntry.objects.filter(
            merchant_id=run.merchant_id, seq=-1 if invoice.ledger_seq is None else invoice.ledger_seq
        ).first()
        if entry is None or entry.kind != EntryKind.IMPORT or entry.ref != record.file_sha256:
            problems.append(f"发票 {invoice.number}：账本中没有它的导入记录（import 条目）")
            continue
        document = document_for(invoice, list(invoice.lines.all()))
        if json.loads(bytes(entry.body))["invoice"] != document:
            problems.append(f"发票 {invoice.number}：发票行与账本中的导入记录不符（已被改动）")
    return problems


def direction_label(direction: str) -> str:
    return "销项" if direction == Direction.OUT else "进项"
