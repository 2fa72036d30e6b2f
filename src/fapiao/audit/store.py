"""Where the audit trail is kept: record bytes, the logs' Merkle nodes, signed heads, the witness file.

The audit write path runs inside every invoice write, so the statements here are plain SQL built
once per database vendor (names from the models; values adapted as the ORM would), not querysets.
:func:`seal_logs` writes the nodes of every record appended since the last seal and one signed
head per log; :class:`Pending` does it once per unit of work, just before the commit.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.models import Model
from django.utils import timezone

from fapiao.audit.models import AuditHead, AuditLog, AuditNode, AuditRecord
from fapiao.core import merkle
from fapiao.core.audit_chain import audit_stamp, record_bytes, record_document
from fapiao.core.canonical import utc_stamp
from fapiao.core.errors import FapiaoError
from fapiao.core.signing import make_head, sign_head
from fapiao.platform import keys

log = logging.getLogger("fapiao.audit")


def _document(log_name: str, row: AuditRecord) -> dict[str, Any]:
    return record_document(
        log=log_name,
        at=audit_stamp(row.at),
        actor=(
            {
                "id": row.actor_id,
                "username": row.actor_username,
                "name": row.actor_name,
                "role": row.actor_role,
            }
            if row.actor_id is not None or row.actor_username
            else None
        ),
        action=row.action,
        target={"type": row.target_type, "id": row.target_id, "repr": row.target_repr},
        request_id=row.request_id,
        client=row.client_address,
        before=row.before,
        after=row.after,
        note=row.note,
    )


def record_leaf(log_name: str, row: AuditRecord) -> bytes:
    """The Merkle leaf hash of a stored (or about to be stored) record."""
    return merkle.leaf_hash(record_bytes(_document(log_name, row)))


def record_bytes_of(row: AuditRecord) -> bytes:
    """The leaf bytes of a stored record (what its inclusion proof proves)."""
    return record_bytes(_document(row.log.name, row))


# --- Plain SQL -----------------------------------------------------------------------------------

_HEAD_FIELDS = ("log", "size", "root", "at", "key_id", "signature", "created_at", "previous_signatures")
_RECORD_FIELDS = (
    "log",
    "seq",
    "at",
    "actor",
    "actor_username",
    "actor_name",
    "actor_role",
    "request_id",
    "client_address",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "before",
    "after",
    "note",
)


def _q(name: str) -> str:
    return str(connection.ops.quote_name(name))


@functools.cache
def _fields(model: type[Model], names: tuple[str, ...]) -> list[Any]:
    return [model._meta.get_field(name) for name in names]


@functools.cache
def _statements(vendor: str) -> dict[str, str]:
    """This module's SQL with quoted names, built once per database vendor (quoting differs)."""
    del vendor  # only the cache key
    log, node, head, record = (_q(m._meta.db_table) for m in (AuditLog, AuditNode, AuditHead, AuditRecord))
    record_fields = _fields(AuditRecord, _RECORD_FIELDS)
    head_fields = _fields(AuditHead, _HEAD_FIELDS)
    size, pk, level, index = _q("size"), _q("id"), _q("level"), _q("index")
    return {  # names come from the models, never from input
        "insert_record": "INSERT INTO {} ({}) VALUES ({}) RETURNING {}".format(  # noqa: S608
            record, ", ".join(_q(f.column) for f in record_fields), ", ".join(["%s"] * len(record_fields)), pk
        ),
        "insert_head": "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
            head, ", ".join(_q(f.column) for f in head_fields), ", ".join(["%s"] * len(head_fields))
        ),
        "insert_node": f"INSERT INTO {node} ({_q('log_id')}, {level}, {index}, {_q('hash')}) "  # noqa: S608
        "VALUES (%s, %s, %s, %s)",
        "next_seq": f"UPDATE {log} SET {size} = {size} + 1 WHERE {pk} = %s RETURNING {size}",  # noqa: S608
        "set_sealed": f"UPDATE {log} SET {_q('sealed_size')} = %s WHERE {pk} = %s",  # noqa: S608
        "sizes": f"SELECT {pk}, {size}, {_q('sealed_size')} FROM {log} WHERE {pk} IN ({{}})",  # noqa: S608
        "nodes": f"SELECT {level}, {index}, {_q('hash')} FROM {node} "  # noqa: S608
        f"WHERE {_q('log_id')} = %s AND {level} IN ({{}}) AND {index} IN ({{}})",
    }


def _db() -> Any:
    """The connection itself: every attribute read through the ``connection`` proxy costs a
    thread-local look-up, and this runs once per record inside the group-commit writer."""
    return connections[DEFAULT_DB_ALIAS]


def _sql(name: str) -> str:
    return _statements(_db().vendor)[name]


def _execute(statement: str, params: Any) -> list[tuple[Any, ...]]:
    db = _db()
    with db.cursor() as cursor:
        cursor.execute(_statements(db.vendor)[statement], params)
        return list(cursor.fetchall()) if cursor.description else []


def insert_record(row: AuditRecord) -> int:
    """INSERT one record; its id.  Values are adapted as the ORM would (text and integers as they are)."""
    ops = connection.ops
    values: list[Any] = []
    for name in _RECORD_FIELDS:
        value = getattr(row, "log_id" if name == "log" else "actor_id" if name == "actor" else name)
        if name == "at":
            value = ops.adapt_datetimefield_value(value)
        elif name in ("before", "after") and value is not None:
            value = ops.adapt_json_value(value, None)
        values.append(value)
    return int(_execute("insert_record", values)[0][0])


def _log_sizes(log_ids: list[int]) -> list[tuple[int, int, int]]:
    sql = _sql("sizes").format(", ".join(["%s"] * len(log_ids)))
    with connection.cursor() as cursor:
        cursor.execute(sql, log_ids)
        return [(int(a), int(b), int(c)) for a, b, c in cursor.fetchall()]


def _set_sealed(log_id: int, size: int) -> None:
    _execute("set_sealed", [size, log_id])


def _insert_nodes(rows: list[tuple[int, int, int, bytes]]) -> None:
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(_sql("insert_node"), rows)


def _insert_head(head: AuditHead) -> None:
    fields = _fields(AuditHead, _HEAD_FIELDS)
    _execute(
        "insert_head", [field.get_db_prep_save(getattr(head, field.attname), connection) for field in fields]
    )


# --- Sealing: nodes and signed heads -------------------------------------------------------------


@dataclass(eq=False)
class Pending:
    """What a unit of work appended but has not sealed: (log id, index) -> leaf hash, and log names.

    Sealed once, just before the unit commits; the signed heads are witnessed after it commits.
    """

    unit: Any
    leaves: dict[tuple[int, int], bytes] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)

    def seal(self) -> None:
        self.unit.flush()  # the unit's deferred records, before anything reads them back
        heads = seal_logs(self.names, self.leaves)
        self.leaves.clear()
        self.names.clear()
        if heads:
            self.unit.after_commit.append(lambda: witness(heads))


def fetch_nodes(log_id: int, wanted: Iterable[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
    """The stored node hashes for ``wanted``, in one query."""
    keys = list(wanted)
    if not keys:
        return {}
    levels = sorted({level for level, _ in keys})
    indexes = sorted({index for _, index in keys})
    sql = _sql("nodes").format(", ".join(["%s"] * len(levels)), ", ".join(["%s"] * len(indexes)))
    with connection.cursor() as cursor:
        cursor.execute(sql, [log_id, *levels, *indexes])
        rows = cursor.fetchall()
    found = {(int(level), int(index)): bytes(digest) for level, index, digest in rows}
    return {key: found[key] for key in keys if key in found}


def _leaves_from_rows(log_id: int, name: str, start: int, end: int) -> dict[int, bytes]:
    rows = AuditRecord.objects.filter(log_id=log_id, seq__gte=start, seq__lt=end)
    return {row.seq: record_leaf(name, row) for row in rows}


def seal_logs(names: dict[int, str], leaves: dict[tuple[int, int], bytes]) -> list[dict[str, Any]]:
    """Write the Merkle nodes of every unsealed record of these logs and one signed head each.

    Reads the logs' sizes from the database, so records undone by a savepoint are not sealed.
    Returns the signed heads, for the witness file.
    """

    if not names:
        return []
    sizes = _log_sizes(list(names))
    nodes: list[tuple[int, int, int, bytes]] = []
    heads: list[AuditHead] = []
    documents: list[dict[str, Any]] = []
    key = None
    now = timezone.now()
    for log_id, size, sealed in sizes:
        if size <= sealed:
            continue
        name = names[log_id]
        got = {seq: leaves.get((log_id, seq)) for seq in range(sealed, size)}
        if any(leaf is None for leaf in got.values()):
            got.update(_leaves_from_rows(log_id, name, sealed, size))
        known = fetch_nodes(log_id, merkle.root_needs(sealed))
        for seq in range(sealed, size):
            leaf = got.get(seq)
            if leaf is None:
                raise DatabaseError(f"audit record {name}/{seq} vanished before it was sealed")
            created = merkle.append_nodes(seq, leaf, known.__getitem__)
            known.update(created)
            nodes.extend((log_id, level, index, digest) for (level, index), digest in created)
        root = merkle.root_from(size, known)
        _set_sealed(log_id, size)
        if key is None:
            try:
                key = keys.signing_key()
            except FapiaoError as error:  # the chain still holds; the next signed head covers these
                log.error("audit head of %s not signed: %s", name, error)
                continue
        head = make_head(log=name, size=size, root=root, at=utc_stamp(now), key_id=key.key_id)
        signature = sign_head(head, key)
        heads.append(
            AuditHead(
                log_id=log_id,
                size=size,
                root=root,
                at=head["at"],
                key_id=key.key_id,
                signature=signature,
                created_at=now,
            )
        )
        documents.append({"head": head, "signature": signature})
    _insert_nodes(nodes)
    for head_row in heads:
        _insert_head(head_row)
    return documents


def witness_path() -> Path:
    """Signed audit heads go beside the ledger's witness file, in ``audit-heads.jsonl``."""
    return Path(settings.FAPIAO_WITNESS_FILE).with_name("audit-heads.jsonl")


def witness(heads: list[dict[str, Any]]) -> None:
    """Append signed audit heads to the audit witness file (one JSON line each).

    Not fsynced: a head lost in a crash only makes the witness lag, which verify reports as a note.
    """
    if not heads:
        return
    try:
        path = witness_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(h, ensure_ascii=False, sort_keys=True) + "\n" for h in heads).encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as error:  # the commit stands; verify will report the lag
        log.warning("cannot append to the audit witness file: %s", error)


def next_seq(log_id: int) -> int | None:
    """Take the next index of a log, locking its row until commit; None when the row is gone."""
    found = _execute("next_seq", [log_id])
    return int(found[0][0]) - 1 if found else None


# --- After a restore: the witness re-based at the restored heads ---------------------------------


@dataclass(frozen=True)
class WitnessCut:
    """An audit log the witness saw longer than the restored database: records ``first``..``last`` lost."""

    log: str
    first: int
    last: int  # inclusive


def rebase_witness(*, suffix: str) -> tuple[list[WitnessCut], Path | None]:
    """Re-base the audit witness at the restored heads, after a restore; the cuts and the old file.

    The audit records written after a backup cannot be brought back (no merchant keeps a receipt
    of them), so the witness would report them (``witness_truncated``, then ``witness_mismatch``)
    at every later verification.  Each log the witness saw longer than the database keeps only the
    witness lines at sizes the database still has (so a rewritten record there is still reported),
    and the newest restored head is added.  The old file is renamed ``audit-heads.jsonl.<suffix>``,
    never overwritten; nothing changes when no log was cut.  Run with the servers stopped.  When the
    file cannot be rewritten, the cuts are still returned, with no file aside (nothing re-based).
    """
    path = witness_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], None
    sizes = dict(AuditLog.objects.values_list("name", "size"))
    seen: dict[str, int] = {}
    kept: list[bytes] = []
    for line in raw.splitlines():
        try:
            head = json.loads(line)["head"]
            name, size = str(head["log"]), int(head["size"])
        except (ValueError, KeyError, TypeError):
            kept.append(line)  # a malformed line stays: it is verify's to report
            continue
        seen[name] = max(seen.get(name, 0), size)
        if size <= sizes.get(name, 0):
            kept.append(line)
    cuts = [
        WitnessCut(name, sizes.get(name, 0), top - 1)
        for name, top in sorted(seen.items())
        if top > sizes.get(name, 0)
    ]
    if not cuts:
        return [], None
    for cut in cuts:
        row = AuditHead.objects.filter(log__name=cut.log).order_by("-size").first()
        if row is None:
            continue
        document = make_head(log=cut.log, size=row.size, root=bytes(row.root), at=row.at, key_id=row.key_id)
        kept.append(json.dumps({"head": document, "signature": row.signature}, sort_keys=True).encode())
    aside = path.with_name(f"{path.name}.{suffix}")
    number = 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.{suffix}.{number}")
    fresh = path.with_name(f"{path.name}.rebasing")
    try:
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"".join(line + b"\n" for line in kept))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(path, aside)
        os.rename(fresh, path)
    except OSError as error:  # the loss is still named; verify keeps reporting it until re-based
        log.error("cannot re-base the audit witness %s: %s", path, error)
        fresh.unlink(missing_ok=True)
        return cuts, None
    return cuts, aside


# --- A signing key compromised: its audit heads re-signed ----------------------------------------


@dataclass
class AuditResign:
    """The audit heads ``fapiao keys compromised`` re-signed, and those it would not."""

    resigned: int = 0
    logs: set[str] = field(default_factory=set)
    skipped: list[tuple[str, int, str]] = field(default_factory=list)  # (log, size, at)


def heads_signed_since(key_id: str, since: str) -> list[tuple[str, int, str]]:
    """The audit heads signed with ``key_id`` at or after ``since``: (log, size, at), in order."""
    rows = AuditHead.objects.filter(key_id=key_id, at__gte=since).order_by("log__name", "size")
    return [(name, int(size), at) for name, size, at in rows.values_list("log__name", "size", "at")]


def _root_matches(head: AuditHead) -> bool:
    """Whether the stored nodes still give this head's root (O(log n) nodes, one query)."""
    try:
        nodes = fetch_nodes(head.log_id, merkle.root_needs(head.size))
        return merkle.root_from(head.size, nodes) == bytes(head.root)
    except (FapiaoError, KeyError):
        return False


def resign_heads(key_id: str, since: str, signer: Any, *, batch: int = 500) -> AuditResign:
    """Re-sign with ``signer`` every audit head signed with ``key_id`` at or after ``since``, as the
    ledger's heads are: same log, size, root and time, the old signature kept in
    ``previous_signatures``, the re-signed heads appended to the witness; a head whose root the
    stored log no longer gives is not re-signed (that would vouch for a forgery) but reported."""
    report = AuditResign()
    skipped: list[int] = []
    while True:
        witnessed: list[dict[str, Any]] = []
        with transaction.atomic():
            rows = list(
                AuditHead.objects.filter(key_id=key_id, at__gte=since)
                .exclude(pk__in=skipped)
                .select_for_update()
                .order_by("pk")[:batch]
            )
            if not rows:
                break
            names = dict(AuditLog.objects.filter(pk__in={h.log_id for h in rows}).values_list("pk", "name"))
            for head in rows:
                name = names[head.log_id]
                if not _root_matches(head):
                    skipped.append(head.pk)
                    report.skipped.append((name, head.size, head.at))
                    continue
                document = make_head(
                    log=name, size=head.size, root=bytes(head.root), at=head.at, key_id=signer.key_id
                )
                signature = sign_head(document, signer)
                head.resign(signer.key_id, signature)
                witnessed.append({"head": document, "signature": signature})
                report.resigned += 1
                report.logs.add(name)
        witness(witnessed)  # after the batch committed
    return report
