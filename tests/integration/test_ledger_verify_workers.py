"""The helper processes of `fapiao ledger verify` (benchmarks/README.md (P5)), on a real SQLite file.

A standalone database (one table shaped like ``ledger_logentry``) is read by real
``python -m fapiao.ledger.verify_worker`` processes and by this one; every chunk must come
back in order with exactly the digest this process computes, whatever the helpers do: finish,
die, fail to open the database, or meet a damaged row.  Verify itself with helpers, on the
project's database, is in ``test_ledger_verify_parallel.py``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

import pytest

from fapiao.core import merkle
from fapiao.core.canonical import entry_bytes
from fapiao.core.ledger_chunk import ChunkDigest, EntryTails, digest_chunk
from fapiao.ledger import verify_pool
from fapiao.ledger.verify_pool import Chunk, WorkerPool, hashed_chunks

LOG = "91110108MA01ABCD84"
SIZE, WIDTH = 200, 16
SQL = "SELECT body, leaf_hash FROM entries WHERE merchant_id = ? AND seq >= ? AND seq < ? ORDER BY seq"


def body(seq: int) -> bytes:
    kind = "red_letter" if seq % 7 == 6 else "issue"
    invoice = {"number": f"26110100{seq:012d}", "lines": [{"amount": f"{seq}.00"}]}
    return entry_bytes(log=LOG, seq=seq, kind=kind, at="2026-11-27T01:00:00Z", invoice=invoice, ref=None)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE entries (merchant_id INTEGER, seq INTEGER, body BLOB, leaf_hash BLOB)"
        )
        connection.execute("CREATE UNIQUE INDEX entries_seq ON entries (merchant_id, seq)")
        rows = [(1, seq, body(seq), merkle.leaf_hash(body(seq))) for seq in range(SIZE)]
        rows += [(2, seq, b"other", b"x") for seq in range(SIZE)]  # another merchant's log
        connection.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", rows)
    return path


def setup(path: Path, **changes: Any) -> dict[str, Any]:
    return {"vendor": "sqlite", "sql": SQL, "path": str(path), "merchant": 1, "log": LOG, **changes}


def chunks() -> list[Chunk]:
    return [
        Chunk(start, min(start + WIDTH, SIZE), [], [min(start + WIDTH, SIZE)], remote=True)
        for start in range(0, SIZE, WIDTH)
    ]


class Here:
    """This process's hashing of a chunk, counted."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path)
        self.tails = EntryTails(LOG)
        self.hashed: list[int] = []

    def __call__(self, chunk: Chunk) -> ChunkDigest | None:
        self.hashed.append(chunk.start)
        rows = self.connection.execute(SQL, (1, chunk.start, chunk.stop)).fetchall()
        bodies, stored = [row[0] for row in rows], [row[1] for row in rows]
        return digest_chunk(self.tails, chunk.start, chunk.stop, bodies, stored, points=chunk.points)


def expected(path: Path) -> list[tuple[int, ChunkDigest | None]]:
    here = Here(path)
    return [(chunk.start, here(chunk)) for chunk in chunks()]


def run(path: Path, pool: WorkerPool | None) -> tuple[list[tuple[int, ChunkDigest | None]], Here]:
    here = Here(path)
    got = [(chunk.start, chunk.digest) for chunk in hashed_chunks(chunks(), hash_here=here, pool=pool)]
    return got, here


def test_helpers_and_this_process_share_the_chunks_and_agree_on_every_digest(database):
    with WorkerPool(setup(database), 2) as pool:
        got, here = run(database, pool)
    assert got == expected(database)
    assert all(digest is not None for _start, digest in got)
    assert 0 < len(here.hashed) < len(got)  # the rest came from the helpers
    assert all(worker.process.returncode == 0 for worker in pool.workers)


def test_without_helpers_every_chunk_is_hashed_here(database):
    got, here = run(database, None)
    assert got == expected(database) and here.hashed == [chunk.start for chunk in chunks()]


def test_a_damaged_row_comes_back_unclean_from_a_helper(database):
    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE entries SET body = CAST(body || x'20' AS BLOB) WHERE merchant_id = 1 AND seq = 150"
        )
    with WorkerPool(setup(database), 1) as pool:
        got, _here = run(database, pool)
    assert got == expected(database)
    assert [start for start, digest in got if digest is None] == [144]


def test_a_helper_that_cannot_open_the_database_hands_its_chunks_back(database, tmp_path):
    with WorkerPool(setup(tmp_path / "nowhere" / "x.sqlite3"), 1) as pool:
        got, here = run(database, pool)
    assert got == expected(database) and len(here.hashed) == len(got)


def test_a_helper_that_dies_mid_way_hands_its_chunks_back(database, monkeypatch):
    with WorkerPool(setup(database), 1) as pool:
        (worker,) = pool.workers
        received = 0
        receive = WorkerPool.receive

        def kill_after_two(self: WorkerPool, which: Any) -> None:
            nonlocal received
            received += 1
            if received == 2:
                which.process.kill()
                which.process.wait()
            receive(self, which)

        monkeypatch.setattr(WorkerPool, "receive", kill_after_two)
        got, here = run(database, pool)
    assert got == expected(database)
    assert not worker.alive and len(here.hashed) >= len(got) - 2


def test_helpers_are_stopped_when_the_caller_stops_early(database):
    pool = WorkerPool(setup(database), 2)
    for chunk in hashed_chunks(chunks(), hash_here=Here(database), pool=pool):
        if chunk.start >= 2 * WIDTH:
            break
    pool.close()
    assert all(worker.process.returncode is not None for worker in pool.workers)


def test_one_helper_per_further_core():
    assert verify_pool.default_workers() == max(0, min(verify_pool.MAX_WORKERS, _cores() - 1))


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class SlowHelper(threading.Thread):
    """A helper played by this test: answers each chunk correctly, but only after a pause."""

    def __init__(self, path: Path, channel: Any) -> None:
        super().__init__(daemon=True)
        self.path, self.channel, self.tasks = path, channel, []

    def run(self) -> None:
        here = Here(self.path)
        with contextlib.suppress(EOFError, OSError):  # as a real one: the parent may stop it at any time
            while (task := self.channel.recv()) is not None:
                start, stop, points = task
                self.tasks.append(start)
                time.sleep(0.05)
                self.channel.send((start, here(Chunk(start, stop, [], points))))


class Finished:
    returncode = 0

    def wait(self, timeout: float | None = None) -> int:
        return 0


def test_at_the_end_this_process_takes_back_chunks_still_queued_at_a_slow_helper(database):
    pool = WorkerPool(setup(database), 0)
    mine, theirs = Pipe()
    helper = SlowHelper(database, theirs)
    helper.start()
    pool.workers.append(verify_pool._Worker(mine, Finished()))  # type: ignore[arg-type]
    got, here = run(database, pool)
    pool.close()
    helper.join(timeout=5)
    assert got == expected(database)
    assert set(here.hashed) & set(helper.tasks), "no queued chunk was taken back"
    assert not any(chunk in here.hashed for chunk in helper.tasks[:1])  # the first one it had started


def test_no_helper_where_the_executable_is_no_python_interpreter(database, monkeypatch):
    monkeypatch.setattr(verify_pool.sys, "executable", "/usr/bin/uwsgi")
    with WorkerPool(setup(database), 2) as pool:
        assert pool.workers == []
        got, here = run(database, pool)
    assert got == expected(database) and len(here.hashed) == len(got)


def test_a_helper_never_creates_a_database_that_is_not_there(database, tmp_path):
    missing = tmp_path / "missing.sqlite3"
    with WorkerPool(setup(missing), 1) as pool:
        got, here = run(database, pool)
    assert got == expected(database) and len(here.hashed) == len(got)
    assert not missing.exists()
