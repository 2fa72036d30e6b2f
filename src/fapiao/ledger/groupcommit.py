"""Group commit: concurrent requests share one transaction and one fsync.

A durable commit on SQLite (WAL, synchronous=FULL) costs an fsync of a few milliseconds;
one commit per request caps a server at a few hundred writes a second.  Here request
threads queue their work; one writer thread per process takes everything queued, runs each
item in its own savepoint (a failing item undoes only itself), signs one head per touched
log, commits once, then wakes the callers.  Nothing is acknowledged before that commit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction

from fapiao.core.errors import UnavailableError
from fapiao.ledger.uow import UnitOfWork

T = TypeVar("T")
log = logging.getLogger(__name__)

Job = tuple[Callable[[UnitOfWork], Any], "Future[Any]"]
STOP: Any = object()


class GroupCommitWriter:
    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="fapiao-group-commit", daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[[UnitOfWork], T]) -> T:
        future: Future[T] = Future()
        self.jobs.put((fn, future))
        return future.result()

    def stop(self) -> None:
        """Finish what is queued, close the database connection and end the thread."""
        self.jobs.put(STOP)
        self.thread.join(30)

    def _take_batch(self) -> list[Job]:
        batch = [self.jobs.get()]
        while len(batch) < self.max_batch and batch[-1] is not STOP:
            try:
                batch.append(self.jobs.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            stopping = batch[-1] is STOP
            if stopping:
                batch.pop()
            if batch:
                self._commit_safely(batch)
            if stopping:
                connection.close()
                return

    def _commit_safely(self, batch: list[Job]) -> None:
        try:
            self._commit(batch)
        except BaseException as error:  # the writer thread must survive anything
            log.exception("group commit failed")
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)

    def _commit(self, batch: list[Job]) -> None:
        close_old_connections()
        unit = UnitOfWork()
        outcomes: list[tuple[Future[Any], bool, Any]] = []
        try:
            with transaction.atomic():
                for fn, future in batch:
                    try:
                        with unit.savepoint():
                            outcomes.append((future, True, fn(unit)))
                    except DatabaseError as error:
                        if connection.needs_rollback or not connection.is_usable():
                            raise
                        outcomes.append((future, False, error))
                    except Exception as error:
                        outcomes.append((future, False, error))
                unit.finish()
        except DatabaseError as error:
            log.warning("group commit of %d writes rolled back: %s", len(batch), error)
            connection.close()
            unavailable = UnavailableError()
            unavailable.__cause__ = error
            for _, future in batch:
                future.set_exception(unavailable)
            return
        for callback in unit.after_commit:
            callback()
        for future, ok, value in outcomes:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


_writer: GroupCommitWriter | None = None
_writer_lock = threading.Lock()


def writer() -> GroupCommitWriter:
    """The process's writer, started on first use (after gunicorn forks)."""
    global _writer  # noqa: PLW0603
    with _writer_lock:
        if _writer is None or not _writer.thread.is_alive():
            _writer = GroupCommitWriter(settings.FAPIAO_WRITE_BATCH_MAX)
        return _writer


def shutdown() -> None:
    """Stop the process's writer (tests, and a clean exit); the next write starts a new one."""
    global _writer  # noqa: PLW0603
    with _writer_lock:
        if _writer is not None:
            _writer.stop()
            _writer = None
