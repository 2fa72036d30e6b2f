"""What every verifier reads through: one consistent read-only snapshot, and the witness file."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
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


def read_witnesses(
    paths: Sequence[Path], *, keys: KeyRegistry | None
) -> tuple[dict[str, WitnessLog], list[Finding]]:
    """Several hosts' witness files as one: every root any of them saw, per log and size.

    Each application host appends the heads it signed to its own file, so each file sees a part
    of every log; the database must agree with all of them.  Two files that saw different roots
    for the same log and size are a fork, as within one file.  With more than one file, a finding
    about a file's own lines names the file (``file`` in its params).
    """
    if len(paths) == 1:
        return read_witness(paths[0], keys=keys)
    merged: dict[str, WitnessLog] = {}
    findings: list[Finding] = []
    for path in paths:
        logs, loose = read_witness(path, keys=keys)
        findings += [dataclasses.replace(f, params={**f.params, "file": str(path)}) for f in loose]
        for name, seen in logs.items():
            into = merged.setdefault(name, WitnessLog(name))
            into.forks |= seen.forks
            for size, root in seen.roots.items():
                if into.roots.setdefault(size, root) != root:
                    into.forks.add(size)
    return merged, findings
