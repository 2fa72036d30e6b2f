"""Read one merchant's log, chunk by chunk, into a :class:`~fapiao.core.ledger_check.LogChecker`.

Every log is streamed in ``seq`` order, :data:`CHUNK` entries at a time (a power of two, so a
whole chunk is a run of perfect subtrees), and memory stays flat however long the log is.  A
clean chunk needs only its entry bytes and leaf hashes: they are re-hashed, checked against
their canonical tails and folded into the tree, and every head and witness root inside the
chunk is compared before anything is kept.  Long logs have their chunks hashed by helper
processes as well as here (:mod:`fapiao.ledger.verify_pool`).  A chunk in which anything
disagrees — and every chunk with ``--deep`` — is read again in full in this process's snapshot
and checked entry by entry, which names what is wrong; ``--deep`` then checks every stored
Merkle node above the leaves.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, Max, Min, QuerySet

from fapiao.accounts.models import Merchant
from fapiao.core.ledger_check import ChunkDigest, HeadRow, LogChecker, WitnessLog, digest_chunk
from fapiao.core.signing import KeyRegistry
from fapiao.ledger.models import Log, LogEntry, LogNode, TreeHead
from fapiao.ledger.verify_pool import MAX_WORKERS, Chunk, WorkerPool, default_workers, hashed_chunks

CHUNK = 2048  # entries (and nodes) per query: a power of two, so whole chunks are perfect subtrees
MIN_PARALLEL_CHUNKS = 32  # below this, starting helper processes costs more than they save
HEAD_BATCH = 64  # chunks whose heads are read in one query


def rows(queryset: QuerySet[Any, Any]) -> list[tuple[Any, ...]]:
    """The rows of a ``values_list`` queryset as plain tuples, skipping per-row ORM conversion."""
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def check_log(
    merchant: Merchant,
    *,
    registry: KeyRegistry,
    witness: WitnessLog | None,
    deep: bool,
    progress: Callable[[str, int, int], None] | None,
    workers: int | None = None,
    own_snapshot: bool = False,
) -> tuple[LogChecker, int]:
    """Check the merchant's whole log; returns the checker and how many chunks helpers hashed.

    ``workers`` helper processes (default: one per further core) hash chunks too, but only
    inside a snapshot this verify opened (``own_snapshot``) and never with ``deep``.
    """
    log_size = Log.objects.filter(merchant=merchant).values_list("size", flat=True).first() or 0
    entries = LogEntry.objects.filter(merchant=merchant)
    heads = TreeHead.objects.filter(merchant=merchant)
    bounds = entries.aggregate(lo=Min("seq"), hi=Max("seq"))
    head_size = heads.aggregate(top=Max("size"))["top"] or 0
    end = max(log_size, head_size, bounds["hi"] + 1 if bounds["hi"] is not None else 0)
    checker = LogChecker(
        merchant.uscc,
        end=end,
        log_size=log_size,
        head_size=head_size,
        keys=registry,
        witness=witness,
        deep=deep,
    )
    if bounds["lo"] is not None and bounds["lo"] < 0:
        checker.misplaced(rows(entries.filter(seq__lt=0).values_list("seq", "body")))
    count = default_workers() if workers is None else min(max(workers, 0), MAX_WORKERS)
    parallel = count and own_snapshot and not deep and log_size >= MIN_PARALLEL_CHUNKS * CHUNK
    setup = _worker_setup(merchant, checker) if parallel else None
    pool = WorkerPool(setup, count) if setup else None
    helped = 0
    try:
        chunks = _chunks(merchant, checker, remote=bool(pool and pool.workers))
        for chunk in hashed_chunks(chunks, hash_here=_hasher(merchant, checker), pool=pool):
            if chunk.digest is None or not checker.apply_chunk(chunk.digest, chunk.heads):
                _check_range(merchant, checker, chunk)
            else:
                helped += chunk.by_helper
            if progress:
                progress("entries", chunk.stop, end)
    finally:
        if pool is not None:
            pool.close()
    if deep:
        _check_nodes(merchant, checker, progress)
    checker.finish()
    return checker, helped


def _chunks(merchant: Merchant, checker: LogChecker, *, remote: bool) -> Iterator[Chunk]:
    """The log's chunks in order, each with its heads; ``remote`` for those a helper may hash."""
    heads = TreeHead.objects.filter(merchant=merchant).order_by("size")
    columns = ("size", "root", "at", "key_id", "signature")
    for base in range(0, checker.end, CHUNK * HEAD_BATCH):
        top = min(base + CHUNK * HEAD_BATCH, checker.end)
        batch = [
            HeadRow(*row) for row in rows(heads.filter(size__gt=base, size__lte=top).values_list(*columns))
        ]
        sizes = [head.size for head in batch]
        for start in range(base, top, CHUNK):
            stop = min(start + CHUNK, top)
            head_rows = batch[bisect.bisect_right(sizes, start) : bisect.bisect_right(sizes, stop)]
            points = checker.points(start, stop, head_rows)
            # Positions below the log's recorded size are only ever appended to, never rewritten,
            # so a helper's own read of them is this snapshot's (on SQLite it cannot share ours).
            yield Chunk(start, stop, head_rows, points, remote=remote and stop <= checker.log_size)


def _chunk_sql(alias: str) -> str:
    """``body, leaf_hash`` of one merchant's positions ``[%s, %s)`` in seq order."""
    quote, meta = connections[alias].ops.quote_name, LogEntry._meta

    def column(name: str) -> str:
        field = meta.get_field(name)
        assert isinstance(field, Field) and field.column
        return quote(field.column)

    seq = column("seq")
    return (
        f"SELECT {column('body')}, {column('leaf_hash')} FROM {quote(meta.db_table)}"  # noqa: S608
        f" WHERE {column('merchant')} = %s AND {seq} >= %s AND {seq} < %s ORDER BY {seq}"
    )


def _hasher(merchant: Merchant, checker: LogChecker) -> Callable[[Chunk], ChunkDigest | None]:
    """Hash a chunk here, from this process's snapshot (nothing to hash with ``deep``)."""
    connection = connections[DEFAULT_DB_ALIAS]
    sql = _chunk_sql(DEFAULT_DB_ALIAS)

    def fetch(start: int, stop: int) -> list[tuple[Any, ...]]:
        params = (merchant.pk, start, stop)
        if connection.vendor == "postgresql":  # bytea in binary: no hex to decode
            connection.ensure_connection()
            with psycopg.Cursor(connection.connection) as cursor:
                return list(cursor.execute(sql.encode(), params, binary=True).fetchall())
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def hash_here(chunk: Chunk) -> ChunkDigest | None:
        if checker.deep:
            return None
        fetched = fetch(chunk.start, chunk.stop)
        bodies, stored = [row[0] for row in fetched], [row[1] for row in fetched]
        return digest_chunk(checker.tails, chunk.start, chunk.stop, bodies, stored, points=chunk.points)

    return hash_here


def _worker_setup(merchant: Merchant, checker: LogChecker) -> dict[str, Any] | None:
    """What a helper needs to read this log as this process does; None where it cannot."""
    connection = connections[DEFAULT_DB_ALIAS]
    setup: dict[str, Any] = {
        "vendor": connection.vendor,
        "sql": _chunk_sql(DEFAULT_DB_ALIAS),
        "merchant": merchant.pk,
        "log": checker.log,
    }
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():  # type: ignore[attr-defined]
            return None
        setup["sql"] = setup["sql"].replace("%s", "?")
        setup["path"] = str(connection.settings_dict["NAME"])
        setup["timeout"] = float(connection.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        return setup
    if connection.vendor == "postgresql":
        params = connection.get_connection_params()
        setup["params"] = {k: v for k, v in params.items() if isinstance(v, str | int) and v != ""}
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            setup["snapshot"] = cursor.fetchone()[0]
        return setup
    return None


def _check_range(merchant: Merchant, checker: LogChecker, chunk: Chunk) -> None:
    """A chunk entry by entry: every column of its rows and its level-0 nodes."""
    entries = LogEntry.objects.filter(merchant=merchant, seq__gte=chunk.start, seq__lt=chunk.stop)
    nodes = LogNode.objects.filter(
        merchant=merchant, level=0, index__gte=chunk.start, index__lt=chunk.stop
    ).order_by("index")
    checker.check_range(
        chunk.start,
        chunk.stop,
        rows(entries.order_by("seq").values_list("seq", "body", "leaf_hash", "kind", "ref")),
        dict(rows(nodes.values_list("index", "hash"))),
        chunk.heads,
    )


def _check_nodes(
    merchant: Merchant, checker: LogChecker, progress: Callable[[str, int, int], None] | None
) -> None:
    """Every stored node above the leaves against its two stored children, level by level (the
    level-0 nodes were compared with the entries on the entry-by-entry path ``--deep`` takes)."""
    nodes = LogNode.objects.filter(merchant=merchant)
    level = 1
    while checker.head_size >> level:
        complete = checker.head_size >> level
        for start in range(0, complete, CHUNK):
            stop = min(start + CHUNK, complete)
            upper = nodes.filter(level=level, index__gte=start, index__lt=stop).values_list("index", "hash")
            lower = nodes.filter(level=level - 1, index__gte=2 * start, index__lt=2 * stop)
            children = dict(rows(lower.values_list("index", "hash")))
            checker.check_nodes(level, start, stop, dict(rows(upper)), children)
        if progress:
            progress("nodes", level, checker.head_size.bit_length() - 1)
        level += 1
