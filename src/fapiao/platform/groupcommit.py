"""Group commit: concurrent requests share one transaction and one fsync.

A durable commit on SQLite (WAL, synchronous=FULL) costs an fsync of a few milliseconds;
one commit per request caps a server at a few hundred writes a second.  Here request
threads queue their work; one writer thread per process takes everything queued, runs each
item in its own savepoint (a failing item undoes only itself), signs one head per touched
log, commits once, then wakes the callers.  Nothing is acknowledged before that commit.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, OperationalError, close_old_connections, connection, transaction

from fapiao.core.errors import UnavailableError
from fapiao.platform import metrics
from fapiao.platform.unit import UnitOfWork

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

    def enqueue(self, fn: Callable[[UnitOfWork], Any]) -> None:
        """Queue ``fn`` for the next batch without waiting for it (best-effort bookkeeping only:
        its result and any failure are dropped).  It runs after the batch's waited-for writes."""
        future: Future[Any] = Future()
        future.background = True  # type: ignore[attr-defined]
        self.jobs.put((fn, future))

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
        # Bookkeeping (a token's last use) goes last.  Every batch then takes its row locks in
        # the same order — number segment, log, audit log, then the token — so two server
        # processes' batches can't deadlock on PostgreSQL (one holding the token row while it
        # waits for the segment the other holds).
        batch = sorted(batch, key=lambda job: getattr(job[1], "background", False))
        metrics.GROUP_COMMIT_BATCH.observe(len(batch))
        started = time.perf_counter()
        _refresh_connection()
        unit = UnitOfWork()
        outcomes: list[tuple[Future[Any], bool, Any]] = []
        try:
            with _sqlite_write_lock(), transaction.atomic():
                for fn, future in batch:
                    if not getattr(fn, "deferrable", False):
                        unit.flush()  # it may read rows the jobs before it deferred
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
        except (DatabaseError, UnavailableError) as error:
            metrics.GROUP_COMMIT_DURATION.observe(time.perf_counter() - started)
            _fail(batch, error)
            return
        metrics.GROUP_COMMIT_DURATION.observe(time.perf_counter() - started)
        for callback in unit.after_commit:
            callback()
        for future, ok, value in outcomes:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


def _fail(batch: list[Job], error: DatabaseError | UnavailableError) -> None:
    """The batch was rolled back: every caller gets 503 (nothing of theirs was saved)."""
    if isinstance(error, UnavailableError):  # refused before COMMIT, e.g. no synchronous standby
        log.warning("group commit of %d writes refused: %s", len(batch), error.code)
        unavailable = error
    else:  # the database failed (or went away, e.g. a failover): reconnect for the next batch
        log.warning("group commit of %d writes rolled back: %s", len(batch), error)
        connection.close()
        unavailable = UnavailableError()
        unavailable.__cause__ = error
    for _, future in batch:
        future.set_exception(unavailable)


def _refresh_connection() -> None:
    """Keep the writer's connection from batch to batch unless it is broken or too old.

    ``close_old_connections()`` reads ``CONN_MAX_AGE=0`` (SQLite's setting) as "close after
    every request"; for the writer, which is no request, that meant reconnecting for every
    batch: the init_command PRAGMAs again, and often a WAL checkpoint when the last
    connection closed.  A failed commit closes the connection itself (see ``_commit``).
    """
    if connection.connection is not None and connection.settings_dict.get("CONN_MAX_AGE") == 0:
        if connection.errors_occurred and not connection.is_usable():
            connection.close()
        return
    close_old_connections()


@contextlib.contextmanager
def _sqlite_write_lock() -> Iterator[None]:
    """On a SQLite file, the writers of all server processes take turns by a blocking flock.

    Without it the writer that loses the race for SQLite's write lock sleeps in SQLite's busy
    handler (1, 2, 5 … 100 ms steps) and often wakes long after the other committed: p99 of
    seconds with two gunicorn workers.  With it the waiting writer wakes as soon as the other
    commits.  A second lock, the turnstile, makes the turns fair: a writer waiting for the lock
    holds the turnstile, so the writer that just committed cannot take the lock straight back
    (which left one process's requests waiting through several of the other's batches).  The
    kernel releases both locks when its process dies, SIGKILL included.
    """
    if connection.vendor != "sqlite" or connection.is_in_memory_db():  # type: ignore[attr-defined]
        yield
        return
    name = connection.settings_dict["NAME"]
    turnstile, lock = _lock_file(f"{name}.writer-turn"), _lock_file(f"{name}.writer-lock")
    deadline = time.monotonic() + settings.SQLITE_BUSY_TIMEOUT_MS / 1000
    _flock_until(turnstile, deadline)
    try:
        _flock_until(lock, deadline)
    finally:
        fcntl.flock(turnstile, fcntl.LOCK_UN)
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)


_lock_files: dict[str, int] = {}  # path -> descriptor; only the writer thread uses them


def _lock_file(path: str) -> int:
    """The lock file's descriptor, kept open (opening it for every batch cost more than its flock)."""
    fd = _lock_files.get(path)
    if fd is None:
        fd = _lock_files[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return fd


def _flock_until(fd: int, deadline: float) -> None:
    """Take the lock, waiting until ``deadline`` at most (like SQLite's busy timeout), polling every 1 ms.

    A writer stuck in another process must not hang this one forever: past the deadline the
    batch fails as "database is locked" and its callers get 503 + Retry-After.
    """
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise OperationalError("database is locked (another writer holds the writer lock)") from None
            time.sleep(0.001)


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
