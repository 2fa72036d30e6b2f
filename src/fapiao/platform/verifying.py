"""What every verifier reads through: one consistent read-only snapshot, and the witness file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from fapiao.core.ledger_findings import Finding
from fapiao.core.ledger_witness import WitnessLog, parse_witness
from fapiao.core.signing import KeyRegistry


@contextlib.contextmanager
def read_snapshot(alias: str = DEFAULT_DB_ALIAS) -> Iterator[bool]:
    """One consistent, read-only view of the database that never blocks writers.

    PostgreSQL: a REPEATABLE READ, READ ONLY transaction.  SQLite (WAL): a deferred read
    transaction (Django's own ``atomic`` would take the write lock with BEGIN IMMEDIATE).
    Inside an existing transaction (tests) the caller's view is used as it is.  Yields whether
    the view is this one's own: only then are its rows committed, so other connections (the
    helper processes of :mod:`fapiao.ledger.verify_pool`) can read them too.
    """
    connection = connections[alias]
    if connection.in_atomic_block:
        yield False
    elif connection.vendor == "postgresql":
        with transaction.atomic(using=alias):
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield True
    elif connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("BEGIN DEFERRED")
        try:
            yield True
        finally:
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")
    else:
        yield False


def read_witness(path: Path, *, keys: KeyRegistry | None) -> tuple[dict[str, WitnessLog], list[Finding]]:
    try:
        with path.open("rb") as handle:
            return parse_witness(handle, keys=keys)
    except FileNotFoundError:
        return {}, []
