"""A unit of work: one database transaction that may carry many writes.

Services never open transactions for ledger-bearing writes themselves; they ask
:func:`write` to run a function inside one.  The function receives the
:class:`UnitOfWork`, appends ledger entries through it, and returns its result.  Before the
transaction commits, the unit signs one new head per touched log and builds each entry's
receipt; after it commits, the heads go to the witness file.  Only then does the caller get
its result, so an acknowledgement always follows a durable commit.

With ``FAPIAO_WRITE_BATCHING`` on (the server), :func:`write` hands the function to the
process's group-commit writer (``fapiao.ledger.groupcommit``), which runs many callers'
functions in one transaction, each in its own savepoint.  The function runs with the calling
request's id and client address (:mod:`fapiao.ops.context`) and with :func:`current_unit`
returning its unit, so code deep inside it (the audit trail) can join the same commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction

from fapiao.ops import context as request_context

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

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Run one caller's work so that its failure undoes only its own writes."""
        mark = len(self.entries), len(self.before_commit), len(self.after_commit)
        claims = dict(self.claims)
        try:
            with transaction.atomic():
                yield
        except BaseException:
            del self.entries[mark[0] :]
            del self.before_commit[mark[1] :]
            del self.after_commit[mark[2] :]
            self.claims = claims
            raise

    def finish(self) -> None:
        """Sign heads and build receipts; runs inside the transaction, before commit."""
        if self.entries:
            from fapiao.ledger.services import seal_unit

            seal_unit(self)
        for callback in self.before_commit:
            callback()


_current: ContextVar[UnitOfWork | None] = ContextVar("fapiao_unit_of_work", default=None)


def current_unit() -> UnitOfWork | None:
    """The unit of work whose function is running in this thread, if any."""
    return _current.get()


def _in_unit(fn: Callable[[UnitOfWork], T], unit: UnitOfWork) -> T:
    token = _current.set(unit)
    try:
        return fn(unit)
    finally:
        _current.reset(token)


def run_unit(fn: Callable[[UnitOfWork], T]) -> T:
    """Run ``fn`` in its own transaction, now, in this thread."""
    unit = UnitOfWork()
    with transaction.atomic():
        result = _in_unit(fn, unit)
        unit.finish()
    for callback in unit.after_commit:
        callback()
    return result


def write(fn: Callable[[UnitOfWork], T]) -> T:
    """Run ``fn`` in a durable transaction and return its result once committed."""
    if getattr(settings, "FAPIAO_WRITE_BATCHING", False):
        from fapiao.ledger.groupcommit import writer

        caller = request_context.snapshot()

        def job(unit: UnitOfWork) -> T:
            with request_context.bound(caller):
                return _in_unit(fn, unit)

        return writer().submit(job)
    return run_unit(fn)
