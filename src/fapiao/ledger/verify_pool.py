"""Spread the hashing of a log's chunks over helper processes (``fapiao ledger verify``, P5).

Reading a chunk's rows and hashing them are both CPU-bound Python holding the GIL, so a second
core helps only as a second process.  :class:`WorkerPool` starts ``python -m
fapiao.ledger.verify_worker`` helpers (a clean interpreter: no fork of a process holding open
database connections, no re-import of the caller's ``__main__``), each with its own read-only
connection.  :func:`hashed_chunks` hands chunks to them and hashes chunks here too while it
waits, and yields every chunk in seq order, so the checker folds them exactly as if one process
had read them all.

What a worker returns is only ever a *clean* digest, checked again here against this process's
heads and witness; any chunk a worker cannot vouch for (an error, a dead worker, anything
irregular) is read again here, in this process's snapshot, and checked entry by entry.  Workers
get only positions below the log's recorded size, which appends never touch; on PostgreSQL they
also share this process's exported snapshot.  Helpers are an optimisation: if none can start,
everything runs here, with the same result.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from typing import Any

from fapiao.core.ledger_check import ChunkDigest, HeadRow

MAX_WORKERS = 8  # helpers at most, however many are asked for
DEPTH = 2  # chunks queued per worker, so it never waits for the next one
STOP_TIMEOUT = 5.0  # seconds a worker gets to exit before it is killed


@dataclass(eq=False)
class Chunk:
    """Positions ``[start, stop)`` of a log with the heads inside them; ``digest`` once hashed clean."""

    start: int
    stop: int
    heads: list[HeadRow]
    points: list[int]
    remote: bool = False  # may a worker hash it?
    digest: ChunkDigest | None = None
    hashed: bool = False
    by_helper: bool = False
    worker: _Worker | None = None


@dataclass(eq=False)
class _Worker:
    channel: Connection
    process: subprocess.Popen[bytes]
    pending: deque[Chunk] = field(default_factory=deque)
    alive: bool = True


def default_workers() -> int:
    """One helper per further core this process may run on (none on a single core)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(0, min(cores - 1, MAX_WORKERS))


class WorkerPool:
    """Helper processes, each sent ``setup`` (see :mod:`fapiao.ledger.verify_worker`) first."""

    def __init__(self, setup: dict[str, Any], count: int) -> None:
        self.workers: list[_Worker] = []
        if "python" not in os.path.basename(sys.executable or "").lower():
            return  # embedded (uWSGI, mod_wsgi): no interpreter to start, everything runs here
        command = [sys.executable, "-m", "fapiao.ledger.verify_worker"]
        paths = [path for path in sys.path if path and os.path.isdir(path)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
        try:
            for _ in range(count):
                mine, theirs = Pipe()
                try:
                    process = subprocess.Popen(  # our own interpreter and module
                        [*command, str(theirs.fileno())],
                        pass_fds=(theirs.fileno(),),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        env=env,
                    )
                finally:
                    theirs.close()
                self.workers.append(_Worker(mine, process))
                mine.send(setup)
        except (OSError, ValueError):
            self.close()
            self.workers = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> list[_Worker]:
        return [worker for worker in self.workers if worker.alive]

    def submit(self, worker: _Worker, chunk: Chunk) -> None:
        try:
            worker.channel.send((chunk.start, chunk.stop, chunk.points))
        except OSError:
            self._lost(worker)
            return
        chunk.worker = worker
        worker.pending.append(chunk)

    def receive(self, worker: _Worker) -> None:
        """Wait for ``worker``'s next answer and record it on its chunk."""
        try:
            start, answer = worker.channel.recv()
        except (EOFError, OSError):
            self._lost(worker)
            return
        if start == "failed":  # it could not open the database: its chunks come back here
            self._lost(worker)
            return
        chunk = worker.pending.popleft()
        if chunk.start != start:  # cannot happen with an honest worker; trust nothing it said
            worker.pending.appendleft(chunk)
            self._lost(worker)
            return
        chunk.worker = None
        if not chunk.hashed:  # else this process took it back and hashed it first
            chunk.digest = answer if isinstance(answer, ChunkDigest) else None
            chunk.hashed, chunk.by_helper = True, True

    def ready(self, worker: _Worker) -> bool:
        try:
            return worker.channel.poll()
        except OSError:
            self._lost(worker)
            return True

    def queued(self) -> Chunk | None:
        """A chunk queued behind another at some worker and not hashed yet: this process, idle
        at the end of the log, hashes it too rather than wait (whichever finishes first counts)."""
        for worker in self.alive:
            for chunk in reversed(list(worker.pending)[1:]):
                if not chunk.hashed:
                    return chunk
        return None

    def wait_any(self) -> None:
        """Block until some worker with pending chunks has an answer (or is gone)."""
        busy = {worker.channel: worker for worker in self.alive if worker.pending}
        if not busy:
            return
        for channel in wait(list(busy)):
            self.receive(busy[channel])  # type: ignore[index]

    def _lost(self, worker: _Worker) -> None:
        worker.alive = False
        for chunk in worker.pending:
            chunk.worker = None
            chunk.remote = False
        worker.pending.clear()
        with contextlib.suppress(OSError):
            worker.channel.close()

    def close(self) -> None:
        for worker in self.workers:
            if worker.alive:
                with contextlib.suppress(OSError):
                    worker.channel.send(None)
                self._lost(worker)
        for worker in self.workers:
            try:
                worker.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()


def hashed_chunks(
    chunks: Iterable[Chunk], *, hash_here: Callable[[Chunk], ChunkDigest | None], pool: WorkerPool | None
) -> Iterator[Chunk]:
    """Every chunk, in order, once hashed (``digest`` None: not clean, or not to be hashed).

    Chunks marked ``remote`` go to idle workers, :data:`DEPTH` each; while the next chunk is still
    with a worker, this process hashes the next chunk nobody has taken, and at the end of the log
    the chunks still queued at a worker.
    """
    source = iter(chunks)
    ahead: deque[Chunk] = deque()  # taken from the source, not yet yielded

    def unassigned() -> Iterator[Chunk]:
        """Chunks nobody hashes yet, in order, taking more from the source as needed."""
        for chunk in list(ahead):
            if not chunk.hashed and chunk.worker is None:
                yield chunk
        for chunk in source:
            ahead.append(chunk)
            yield chunk

    def hash_locally(chunk: Chunk) -> None:
        chunk.digest, chunk.hashed = hash_here(chunk), True

    while True:
        if pool is not None:
            _top_up(pool, unassigned())
        if not ahead:
            chunk = next(source, None)
            if chunk is None:
                return
            ahead.append(chunk)
        first = ahead[0]
        if first.hashed:
            yield ahead.popleft()
        elif first.worker is None:
            hash_locally(first)
        elif pool is not None and pool.ready(first.worker):
            if first.worker is not None:
                pool.receive(first.worker)
        else:
            spare = next(unassigned(), None)  # the next chunk nobody hashes: do it while waiting
            if spare is None and pool is not None:
                spare = pool.queued()
            if spare is not None:
                hash_locally(spare)
            elif pool is not None:
                pool.wait_any()


def _top_up(pool: WorkerPool, candidates: Iterator[Chunk]) -> None:
    """Give each live worker chunks until it has :data:`DEPTH` queued."""
    for worker in pool.alive:
        while worker.alive and len(worker.pending) < DEPTH:
            chunk = next(candidates, None)
            if chunk is None or not chunk.remote:
                return
            pool.submit(worker, chunk)
