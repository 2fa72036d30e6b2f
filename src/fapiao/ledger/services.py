"""Ledger writes: append entries, sign one head per commit, hand out receipts, witness heads.

Called only from inside a unit of work (``fapiao.platform.uow``), i.e. in the same
transaction as the invoice row the entry describes.
"""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from fapiao.accounts.models import Merchant
from fapiao.core import merkle
from fapiao.core.canonical import entry_bytes, utc_stamp
from fapiao.core.receipt import build_receipt
from fapiao.core.signing import make_head, sign_head
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead
from fapiao.platform import keys, metrics, rows
from fapiao.platform.uow import PendingEntry, UnitOfWork


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


def _log_base(merchant: Merchant) -> int:
    """Lock ``merchant``'s log row (created on its first append) and return its stored size.

    PostgreSQL: ``FOR UPDATE`` makes the writers of other processes wait for this commit;
    SQLite: the transaction already holds the database's write lock.
    """
    table = connection.ops.quote_name(Log._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    select = f"SELECT size FROM {table} WHERE merchant_id = %s{lock}"  # noqa: S608  our names
    with connection.cursor() as cursor:
        cursor.execute(select, [merchant.pk])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                f"INSERT INTO {table} (merchant_id, size) VALUES (%s, 0) "  # noqa: S608  our names
                "ON CONFLICT (merchant_id) DO NOTHING",
                [merchant.pk],
            )
            cursor.execute(select, [merchant.pk])
            row = cursor.fetchone()
    return int(row[0])


def _next_seq(unit: UnitOfWork, merchant: Merchant) -> int:
    """The index the next entry of ``merchant``'s log gets in this unit.

    After the unit's last pending entry of this log, if it has one; else the stored size, read
    under the log's lock.  Pending entries are the truth because a failed caller's savepoint
    removes its entries from the unit, and with them, on PostgreSQL, a lock it took first.
    """
    for entry in reversed(unit.entries):
        if entry.merchant_id == merchant.pk:
            return entry.seq + 1
    return _log_base(merchant)


def append_entry(
    unit: UnitOfWork,
    *,
    merchant: Merchant,
    kind: str,
    invoice: dict[str, Any],
    ref: str | None = None,
    at: datetime | None = None,
) -> PendingEntry:
    """Append one entry to ``merchant``'s log; its row, nodes and head are written with the unit's.

    The index follows the unit's pending entries of the same log.  The entry row is deferred
    (:meth:`UnitOfWork.defer`: one INSERT for the unit's entries); :func:`seal_unit` writes the
    nodes of all of them, the log's new size and the signed head, just before the commit.
    """
    seq = _next_seq(unit, merchant)
    moment = at or timezone.now()
    body = entry_bytes(log=merchant.uscc, seq=seq, kind=kind, at=moment, invoice=invoice, ref=ref)
    leaf = merkle.leaf_hash(body)
    unit.defer(
        LogEntry(
            merchant_id=merchant.pk,
            seq=seq,
            kind=kind,
            invoice_number=str(invoice["number"]),
            ref=ref or "",
            body=body,
            leaf_hash=leaf,
            created_at=moment,
        )
    )
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


def _grow(merchant_id: int, mine: list[PendingEntry]) -> tuple[int, dict[merkle.NodeKey, bytes]]:
    """Write the Merkle nodes of ``mine`` (consecutive entries of one log) and the log's new size.

    Returns the size and every node the unit's head and receipts need: the frontier read before
    (one query), the nodes just created, and (one more query, rarely) any other proof node.
    """
    base = mine[0].seq
    if [entry.seq for entry in mine] != list(range(base, base + len(mine))):
        raise DatabaseError(f"ledger entries of merchant {merchant_id} are not consecutive")
    size = base + len(mine)
    known = fetch_nodes(merchant_id, merkle.root_needs(base))
    created: list[tuple[int, int, int, bytes]] = []
    for entry in mine:
        for (level, index), digest in merkle.append_nodes(entry.seq, entry.leaf, known.__getitem__):
            known[(level, index)] = digest
            created.append((merchant_id, level, index, digest))
    rows.insert_values(LogNode, ("merchant_id", "level", "index", "hash"), created)
    table = connection.ops.quote_name(Log._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET size = %s WHERE merchant_id = %s", [size, merchant_id])  # noqa: S608
    wanted = set(merkle.root_needs(size))
    for entry in mine:
        wanted.update(merkle.inclusion_needs(entry.seq, size))
    missing = sorted(wanted.difference(known))
    if missing:
        known.update(fetch_nodes(merchant_id, missing))
    return size, known


def seal_unit(unit: UnitOfWork) -> None:
    """Write the unit's Merkle nodes, sign one head per touched log, build every entry's receipt."""
    started = time.perf_counter()
    key = keys.signing_key()
    now = timezone.now()
    stamp = utc_stamp(now)
    by_log: dict[int, list[PendingEntry]] = {}
    for entry in unit.entries:
        by_log.setdefault(entry.merchant_id, []).append(entry)
    heads: list[TreeHead] = []
    for merchant_id, mine in by_log.items():
        log_name = mine[0].log
        size, nodes = _grow(merchant_id, mine)
        root = merkle.root_from(size, nodes)
        head = make_head(log=log_name, size=size, root=root, at=stamp, key_id=key.key_id)
        signature = sign_head(head, key)
        heads.append(
            TreeHead(
                merchant_id=merchant_id,
                size=size,
                root=root,
                at=head["at"],
                key_id=key.key_id,
                signature=signature,
                created_at=now,
            )
        )
        for entry in mine:
            proof = merkle.inclusion_proof(entry.seq, size, nodes)
            entry.receipt = build_receipt(
                log=log_name, index=entry.seq, entry=entry.body, head=head, signature=signature, proof=proof
            )
        unit.heads.append({"head": head, "signature": signature})
    rows.insert(heads, returning=False)
    witnessed = list(unit.heads)
    unit.after_commit.append(lambda: witness(witnessed))
    metrics.LEDGER_ENTRIES.inc(len(unit.entries))
    metrics.LEDGER_APPEND.observe(time.perf_counter() - started)


def witness(heads: list[dict[str, Any]]) -> None:
    """Append heads to the witness file outside the database (one JSON line each, fsynced)."""
    if not heads:
        return
    path = settings.FAPIAO_WITNESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n" for item in heads).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
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
