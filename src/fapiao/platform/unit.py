"""A unit of work: one database transaction that may carry many writes (see :mod:`fapiao.platform.uow`).

Services never open transactions for ledger-bearing writes themselves; they ask
:func:`write` to run a function inside one.  The function receives the
:class:`UnitOfWork`, appends ledger entries through it, and returns its result.  Before the
transaction commits, the unit signs one new head per touched log and builds each entry's
receipt; with ``FAPIAO_REQUIRE_SYNC_STANDBY`` it then checks that a synchronous standby is
attached (:mod:`fapiao.platform.replication`).  After it commits, the heads go to the witness
file.  Only then does the caller get its result, so an acknowledgement always follows a durable
commit.

With ``FAPIAO_WRITE_BATCHING`` on (the server), :func:`write` hands the function to the
process's group-commit writer (``fapiao.platform.groupcommit``), which runs many callers'
functions in one transaction, each in its own savepoint.  The function runs with the calling
request's id and client address (:mod:`fapiao.platform.context`) and with :func:`current_unit`
returning its unit, so code deep inside it (the audit trail) can join the same commit.

A write may *defer* rows it only adds (:meth:`UnitOfWork.defer`): they are inserted in one
statement per table for the whole unit, before the heads are signed.  A deferred row is not
visible to queries until then, so the writer flushes them before any function that was not
submitted with ``deferrable=True`` (one that promises not to read what others defer).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import Model

from fapiao.platform import replication, rows

T = TypeVar("T")


@dataclass
class PendingEntry:
    """An entry appended in this unit; ``receipt`` is filled in just before commit."""

    merchant_id: int
    log: str
    seq: int
    body: bytes
    leaf: bytes
    receipt: dict[str, Any] | None = None


@dataclass
class UnitOfWork:
    entries: list[PendingEntry] = field(default_factory=list)
    heads: list[dict[str, Any]] = field(default_factory=list)
    # Run inside the transaction once receipts exist (e.g. to store them with an idempotency record).
    before_commit: list[Callable[[], None]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # Idempotency keys claimed in this unit: (user id, key) → (fingerprint, result).
    claims: dict[Any, Any] = field(default_factory=dict)
    # State other modules keep for the length of the unit (e.g. the audit trail's pending records).
    extras: dict[str, Any] = field(default_factory=dict)
    # Rows inserted in bulk by flush(), per model, in the order they were deferred.
    deferred: dict[type[Model], list[Model]] = field(default_factory=dict)
    # Statements run in bulk by flush(): SQL -> parameter rows (executemany).
    deferred_sql: dict[str, list[Sequence[Any]]] = field(default_factory=dict)

    # How many savepoints deep the unit's own work runs; deeper, a caller's own savepoint could
    # roll back without the unit knowing, so nothing is deferred there.
    depth: int = 0

    def _nested(self) -> bool:
        return len(connection.savepoint_ids) > self.depth

    def defer(self, *objs: Model) -> None:
        """Insert ``objs`` when the unit is flushed (their primary keys are set then)."""
        if self._nested():
            rows.insert(objs)
            return
        for obj in objs:
            self.deferred.setdefault(type(obj), []).append(obj)

    def defer_sql(self, sql: str, params: Sequence[Any]) -> None:
        """Run ``sql`` with ``params`` when the unit is flushed (one executemany per statement)."""
        if self._nested():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
            return
        self.deferred_sql.setdefault(sql, []).append(params)

    def flush(self) -> None:
        """Insert the deferred rows and run the deferred statements, in the order they were first deferred."""
        deferred, self.deferred = self.deferred, {}
        for objs in deferred.values():
            rows.insert(objs)
        statements, self.deferred_sql = self.deferred_sql, {}
        if statements:
            with connection.cursor() as cursor:
                for sql, params in statements.items():
                    cursor.executemany(sql, params)

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Run one caller's work so that its failure undoes only its own writes (deferred ones too)."""
        mark = len(self.entries), len(self.before_commit), len(self.after_commit)
        claims = dict(self.claims)
        deferred = {model: len(objs) for model, objs in self.deferred.items()}
        deferred_sql = {sql: len(params) for sql, params in self.deferred_sql.items()}
        depth = self.depth
        try:
            with transaction.atomic():
                self.depth = len(connection.savepoint_ids)
                try:
                    yield
                finally:
                    self.depth = depth
        except BaseException:
            del self.entries[mark[0] :]
            del self.before_commit[mark[1] :]
            del self.after_commit[mark[2] :]
            self.claims = claims
            for model, objs in self.deferred.items():
                del objs[deferred.get(model, 0) :]
            for sql, params in self.deferred_sql.items():
                del params[deferred_sql.get(sql, 0) :]
            raise

    def finish(self) -> None:
        """Store deferred rows, sign heads and build receipts; runs inside the transaction, before commit."""
        self.flush()
        if self.entries:
            for seal in _SEALERS:
                seal(self)
        for callback in self.before_commit:
            callback()
        self.flush()  # what the callbacks deferred (e.g. idempotency answers, which need receipts)
        # Last, right before COMMIT: no acknowledgement without a synchronous standby (when required).
        replication.require_sync_standby()


# What turns a unit's entries into signed heads and receipts before commit: the ledger registers
# its sealer from ``LedgerConfig.ready`` (the platform knows no ledger).
_SEALERS: list[Callable[[UnitOfWork], None]] = []


def register_sealer(seal: Callable[[UnitOfWork], None]) -> None:
    """Run ``seal`` on every unit that appended entries, inside its transaction, before commit."""
    if seal not in _SEALERS:
        _SEALERS.append(seal)


_current: ContextVar[UnitOfWork | None] = ContextVar("fapiao_unit_of_work", default=None)


def current_unit() -> UnitOfWork | None:
    """The unit of work whose function is running in this thread, if any."""
    return _current.get()


def in_unit(fn: Callable[[UnitOfWork], T], unit: UnitOfWork) -> T:
    token = _current.set(unit)
    try:
        return fn(unit)
    finally:
        _current.reset(token)


def run_unit(fn: Callable[[UnitOfWork], T]) -> T:
    """Run ``fn`` in its own transaction, now, in this thread."""
    unit = UnitOfWork()
    with transaction.atomic():
        unit.depth = len(connection.savepoint_ids)
        result = in_unit(fn, unit)
        unit.finish()
    for callback in unit.after_commit:
        callback()
    return result
