"""The ledger half of ``fapiao ledger replay``: put entries a restore lost back into a log.

The entries come from receipts the caller has verified (signature, key, inclusion proof, the
witness): each goes back at its original index with its original bytes, the Merkle nodes are
rebuilt, and the log's roots at every size the witness or a receipt's signed head knows in the
replayed range must come out as they were — otherwise nothing is written.  The receipts' own
signed heads are stored again; when none is at the new size, a head is signed for it now (and
witnessed), as at every commit.  The invoice rows are the caller's (:mod:`fapiao.recovery.replay`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from fapiao.accounts.models import Merchant
from fapiao.core import merkle
from fapiao.core.canonical import parse_stamp, utc_stamp
from fapiao.core.errors import ConflictError
from fapiao.core.signing import make_head, sign_head
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead
from fapiao.ledger.services import fetch_nodes, witness
from fapiao.platform import keys, rows
from fapiao.platform.uow import UnitOfWork


class LogMovedError(ConflictError):
    """Log {log} has {found} entries now, not the {expected} the replay was planned for: run it again."""

    code = "replay_log_moved"


class ReplayRootMismatchError(ConflictError):
    """With the replayed entries, log {log} at size {size} does not have the root the witness file or a receipt's signed head gives: the restored log is not a prefix of the one the receipts prove. Nothing was appended."""  # noqa: E501

    code = "replay_root_mismatch"


@dataclass(frozen=True)
class KnownEntry:
    """An entry to put back: its index, its exact bytes and its parsed form."""

    seq: int
    body: bytes
    entry: Mapping[str, Any]


@dataclass(frozen=True)
class SignedHead:
    head: Mapping[str, Any]  # log, size, root (base64), at, key_id
    signature: str


def locked_size(merchant: Merchant) -> int:
    """The log's stored size, its row locked for this transaction (PostgreSQL: FOR UPDATE)."""
    table = connection.ops.quote_name(Log._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT size FROM {table} WHERE merchant_id = %s{lock}", [merchant.pk])  # noqa: S608
        row = cursor.fetchone()
    if row is None:
        Log.objects.create(merchant=merchant, size=0)
        return 0
    return int(row[0])


def append_known(
    unit: UnitOfWork,
    *,
    merchant: Merchant,
    base: int,
    entries: Sequence[KnownEntry],
    heads: Sequence[SignedHead],
    witnessed: Mapping[int, bytes],
) -> int:
    """Append ``entries`` (consecutive from ``base``) to ``merchant``'s log; returns the new size.

    ``witnessed``: the witness's root at each size it saw for this log.  Raises (and the unit
    rolls back) when the log moved since the plan or a root disagrees."""
    log = merchant.uscc
    found = locked_size(merchant)
    if found != base:
        raise LogMovedError(log=log, found=found, expected=base)
    if [e.seq for e in entries] != list(range(base, base + len(entries))):
        raise LogMovedError(log=log, found=base, expected=entries[0].seq if entries else base)
    size = base + len(entries)
    known = fetch_nodes(merchant.pk, merkle.root_needs(base))
    created: list[tuple[int, int, int, bytes]] = []
    now = timezone.now()
    rows.insert(
        [
            LogEntry(
                merchant_id=merchant.pk,
                seq=item.seq,
                kind=str(item.entry["kind"]),
                invoice_number=str(item.entry["invoice"]["number"]),
                ref=str(item.entry.get("ref") or ""),
                body=item.body,
                leaf_hash=merkle.leaf_hash(item.body),
                created_at=parse_stamp(str(item.entry["at"])),
            )
            for item in entries
        ],
        returning=False,
    )
    for item in entries:
        for (level, index), digest in merkle.append_nodes(
            item.seq, merkle.leaf_hash(item.body), known.__getitem__
        ):
            known[(level, index)] = digest
            created.append((merchant.pk, level, index, digest))
    rows.insert_values(LogNode, ("merchant_id", "level", "index", "hash"), created)
    Log.objects.filter(merchant=merchant).update(size=size)

    def root(at_size: int) -> bytes:
        missing = [key for key in merkle.root_needs(at_size) if key not in known]
        if missing:
            known.update(fetch_nodes(merchant.pk, missing))
        return merkle.root_from(at_size, known)

    for at_size, expected in sorted(witnessed.items()):
        if base < at_size <= size and root(at_size) != expected:
            raise ReplayRootMismatchError(log=log, size=at_size)
    stored = set(TreeHead.objects.filter(merchant=merchant, size__gt=base).values_list("size", flat=True))
    new_heads: dict[int, TreeHead] = {}
    for signed in heads:
        at_size = int(signed.head["size"])
        if not base < at_size <= size or at_size in stored or at_size in new_heads:
            continue
        head_root = base64.b64decode(str(signed.head["root"]))
        if root(at_size) != head_root:
            raise ReplayRootMismatchError(log=log, size=at_size)
        new_heads[at_size] = TreeHead(
            merchant_id=merchant.pk,
            size=at_size,
            root=head_root,
            at=str(signed.head["at"]),
            key_id=str(signed.head["key_id"]),
            signature=signed.signature,
            created_at=now,
        )
    if size not in stored and size not in new_heads and entries:
        key = keys.signing_key()
        head = make_head(log=log, size=size, root=root(size), at=utc_stamp(now), key_id=key.key_id)
        signature = sign_head(head, key)
        new_heads[size] = TreeHead(
            merchant_id=merchant.pk,
            size=size,
            root=root(size),
            at=head["at"],
            key_id=key.key_id,
            signature=signature,
            created_at=now,
        )
        fresh = [{"head": head, "signature": signature}]
        unit.after_commit.append(lambda: witness(fresh))
    rows.insert([new_heads[s] for s in sorted(new_heads)], returning=False)
    return size
