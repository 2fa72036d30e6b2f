"""Durable writes: :func:`write` runs a function in one transaction and returns once it is committed.

The unit of work itself is :mod:`fapiao.platform.unit`; with ``FAPIAO_WRITE_BATCHING`` on, the
function goes through the process's group-commit writer (:mod:`fapiao.platform.groupcommit`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from fapiao.platform import context as request_context
from fapiao.platform.groupcommit import writer
from fapiao.platform.unit import PendingEntry, UnitOfWork, current_unit, in_unit, register_sealer, run_unit

__all__ = ["PendingEntry", "UnitOfWork", "current_unit", "register_sealer", "run_unit", "write"]

T = TypeVar("T")


def write(fn: Callable[[UnitOfWork], T], *, deferrable: bool = False) -> T:
    """Run ``fn`` in a durable transaction and return its result once committed.

    ``deferrable``: ``fn`` reads nothing that another write in the same unit may have deferred
    (:meth:`UnitOfWork.defer`), so the group-commit writer need not flush before it.
    """
    if getattr(settings, "FAPIAO_WRITE_BATCHING", False):
        caller = request_context.snapshot()

        def job(unit: UnitOfWork) -> T:
            with request_context.bound(caller):
                return in_unit(fn, unit)

        job.deferrable = deferrable  # type: ignore[attr-defined]
        return writer().submit(job)
    return run_unit(fn)
