"""Ledger writes: append entries, sign one head per commit, hand out receipts, witness heads.

Called only from inside a unit of work (``fapiao.ledger.uow``), i.e. in the same
transaction as the invoice row the entry describes.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from fapiao.accounts.models import Merchant
from fapiao.core import merkle
from fapiao.core.canonical import entry_bytes, utc_stamp
from fapiao.core.receipt import build_receipt
from fapiao.core.signing import make_head, sign_head
from fapiao.ledger import keys
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead
from fapiao.ledger.uow import PendingEntry, UnitOfWork


def fetch_nodes(merchant_id: int, wanted: list[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
    """The stored node hashes for ``wanted``, in one query that reads exactly those rows.

    Raw SQL on purpose (a ledger hot path): one ``UNION ALL`` branch per level, each an exact
    lookup on the (merchant, level, index) unique index.  At 1M entries a proof needs about 20
    nodes; a cross product of all levels and indexes reads hundreds, and an ORM ``OR`` of the
    levels is planned as a scan on SQLite.
    """
    if not wanted:
        return {}
    by_level: dict[int, set[int]] = {}
    for level, index in wanted:
        by_level.setdefault(level, set()).add(index)
    table = connection.ops.quote_name(LogNode._meta.db_table)
    index_column = connection.ops.quote_name("index")
    branches: list[str] = []
    params: list[int] = []
    for level, indexes in sorted(by_level.items()):
        placeholders = ", ".join(["%s"] * len(indexes))
        branches.append(
            f"SELECT level, {index_column}, hash FROM {table} "  # noqa: S608  names are ours, values are parameters
            f"WHERE merchant_id = %s AND level = %s AND {index_column} IN ({placeholders})"
        )
        params += [merchant_id, level, *sorted(indexes)]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(branches), params)
        found = {(level, index): bytes(digest) for level, index, digest in cursor.fetchall()}
    return {key: found[key] for key in wanted if key in found}


def append_entry(
    unit: UnitOfWork,
    *,
    merchant: Merchant,
    kind: str,
    invoice: dict[str, Any],
    ref: str | None = None,
    at: datetime | None = None,
) -> PendingEntry:
    """Append one entry to ``merchant``'s log: O(log n) rows read and written."""
    log, _ = Log.objects.select_for_update().get_or_create(merchant=merchant)
    seq = log.size
    moment = at or timezone.now()
    body = entry_bytes(log=merchant.uscc, seq=seq, kind=kind, at=moment, invoice=invoice, ref=ref)
    leaf = merkle.leaf_hash(body)
    known = fetch_nodes(merchant.pk, merkle.append_needs(seq))
    new_nodes = merkle.append_nodes(seq, leaf, known.__getitem__)
    LogNode.objects.bulk_create(
        [
            LogNode(merchant=merchant, level=level, index=index, hash=digest)
            for (level, index), digest in new_nodes
        ]
    )
    LogEntry.objects.create(
        merchant=merchant,
        seq=seq,
        kind=kind,
        invoice_number=str(invoice["number"]),
        ref=ref or "",
        body=body,
        leaf_hash=leaf,
        created_at=moment,
    )
    Log.objects.filter(pk=log.pk).update(size=seq + 1)
    pending = PendingEntry(merchant_id=merchant.pk, log=merchant.uscc, seq=seq, body=body, leaf=leaf)
    unit.entries.append(pending)
    return pending


def head_document(head: TreeHead, log: str) -> dict[str, Any]:
    return {
        "log": log,
        "size": head.size,
        "root": base64.b64encode(bytes(head.root)).decode(),
        "at": head.at,
        "key_id": head.key_id,
    }


def seal_unit(unit: UnitOfWork) -> None:
    """Sign one head per touched log and build every pending entry's receipt."""
    key = keys.signing_key()
    now = timezone.now()
    logs: dict[int, str] = {entry.merchant_id: entry.log for entry in unit.entries}
    for merchant_id, log_name in logs.items():
        size = Log.objects.values_list("size", flat=True).get(merchant_id=merchant_id)
        mine = [entry for entry in unit.entries if entry.merchant_id == merchant_id]
        wanted = set(merkle.root_needs(size))
        for entry in mine:
            wanted.update(merkle.inclusion_needs(entry.seq, size))
        nodes = fetch_nodes(merchant_id, sorted(wanted))
        root = merkle.root_from(size, nodes)
        head = make_head(log=log_name, size=size, root=root, at=utc_stamp(now), key_id=key.key_id)
        signature = sign_head(head, key)
        TreeHead.objects.create(
            merchant_id=merchant_id,
            size=size,
            root=root,
            at=head["at"],
            key_id=key.key_id,
            signature=signature,
            created_at=now,
        )
        for entry in mine:
            proof = merkle.inclusion_proof(entry.seq, size, nodes)
            entry.receipt = build_receipt(
                log=log_name, index=entry.seq, entry=entry.body, head=head, signature=signature, proof=proof
            )
        unit.heads.append({"head": head, "signature": signature})
    witnessed = list(unit.heads)
    unit.after_commit.append(lambda: witness(witnessed))


def witness(heads: list[dict[str, Any]]) -> None:
    """Append heads to the witness file outside the database (one JSON line each, fsynced)."""
    if not heads:
        return
    path = settings.FAPIAO_WITNESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n" for item in heads).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def latest_head(merchant: Merchant) -> TreeHead | None:
    return TreeHead.objects.filter(merchant=merchant).order_by("-size").first()


def receipt_for(merchant: Merchant, seq: int) -> dict[str, Any]:
    """A fresh receipt for entry ``seq`` against the merchant's latest head."""
    head = latest_head(merchant)
    entry = LogEntry.objects.get(merchant=merchant, seq=seq)
    if head is None or head.size <= seq:
        raise LookupError("no head covers this entry")
    nodes = fetch_nodes(merchant.pk, merkle.inclusion_needs(seq, head.size))
    proof = merkle.inclusion_proof(seq, head.size, nodes)
    return build_receipt(
        log=merchant.uscc,
        index=seq,
        entry=bytes(entry.body),
        head=head_document(head, merchant.uscc),
        signature=head.signature,
        proof=proof,
    )
