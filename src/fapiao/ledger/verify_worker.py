"""A helper process of ``fapiao ledger verify``: reads chunks of one log and hashes them.

:mod:`fapiao.ledger.verify_pool` starts it as ``python -m fapiao.ledger.verify_worker FD``,
``FD`` being its end of a socket pair.  It receives one setup message (the database, the SQL
that reads a chunk's ``body`` and ``leaf_hash`` in seq order, the merchant, the log), then
``(start, stop, points)`` tasks, each answered with ``(start, ChunkDigest | None)`` or
``(start, "error: ...")``; ``None`` ends it.  Reading and hashing in another process is what
lets verify use a second core: both are CPU-bound and hold the GIL.

No Django, so it starts in a few tens of milliseconds; it reads through its own connection:

* PostgreSQL: a REPEATABLE READ, READ ONLY transaction on the snapshot the parent exported,
  so it sees exactly what the parent sees; ``bytea`` travels in binary.
* SQLite: a read transaction of its own, opened after the parent's.  The parent hands it only
  positions below the log's size in its own snapshot, which appends never rewrite, and
  re-reads in its own snapshot any chunk that is not clean here.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql as pgsql

from fapiao.core.ledger_chunk import EntryTails, digest_chunk

Read = Callable[[int, int], list[tuple[Any, ...]]]
Reader = tuple[Read, Callable[[], None]]  # read(start, stop) -> rows, and close()


def sqlite_reader(setup: Mapping[str, Any]) -> Reader:
    name = str(setup["path"])  # as Django opens it: a path, or a "file:" URI
    if not name.startswith("file:"):  # read-only: never create a database that is not there
        name = f"file:{quote(os.path.abspath(name))}?mode=ro"
    timeout = setup.get("timeout", 5.0)
    connection = sqlite3.connect(name, uri=True, timeout=timeout, isolation_level=None)
    connection.execute("PRAGMA query_only = ON")
    connection.execute("BEGIN DEFERRED")
    sql, merchant = setup["sql"], setup["merchant"]

    def read(start: int, stop: int) -> list[tuple[Any, ...]]:
        return connection.execute(sql, (merchant, start, stop)).fetchall()

    return read, connection.close


def postgresql_reader(setup: Mapping[str, Any]) -> Reader:

    connection = psycopg.connect(**setup["params"], autocommit=False)
    connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    if setup.get("snapshot"):
        connection.execute(pgsql.SQL("SET TRANSACTION SNAPSHOT {}").format(pgsql.Literal(setup["snapshot"])))
    cursor = connection.cursor(binary=True)
    query, merchant = setup["sql"], setup["merchant"]

    def read(start: int, stop: int) -> list[tuple[Any, ...]]:
        return cursor.execute(query, (merchant, start, stop)).fetchall()

    return read, connection.close


READERS: dict[str, Callable[[Mapping[str, Any]], Reader]] = {
    "sqlite": sqlite_reader,
    "postgresql": postgresql_reader,
}


def serve(channel: Connection) -> None:
    setup = channel.recv()
    try:
        read, close = READERS[setup["vendor"]](setup)
    except Exception as error:  # told to the parent, which then reads the chunks itself
        channel.send(("failed", f"{type(error).__name__}: {error}"))
        return
    tails = EntryTails(setup["log"])
    try:
        while (task := channel.recv()) is not None:
            start, stop, points = task
            try:
                rows = read(start, stop)
                bodies, stored = [row[0] for row in rows], [row[1] for row in rows]
                digest = digest_chunk(tails, start, stop, bodies, stored, points=points)
            except Exception as error:  # the parent checks this chunk itself
                channel.send((start, f"error: {type(error).__name__}: {error}"))
                continue
            channel.send((start, digest))
    finally:
        close()


def main(argv: list[str]) -> int:
    channel = Connection(int(argv[1]))
    os.dup2(2, 1)  # stray output must not reach the parent's stdout
    try:
        serve(channel)
    except (EOFError, BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        pass  # the parent went away or stopped us
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    status = main(sys.argv)
    sys.stderr.flush()
    os._exit(status)  # everything is closed: skip the interpreter's teardown, the parent waits for it
