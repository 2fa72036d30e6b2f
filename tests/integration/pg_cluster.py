"""Throwaway databases and servers for the durability and outage tests.

* :func:`throwaway_cluster` — a private PostgreSQL cluster (initdb + pg_ctl) on a free port,
  which a test may stop with ``-m immediate`` (an outage) and start again.  It is always
  stopped and removed on exit.  The shared test server on 5432 is never touched.
* :func:`fapiao_command` and :func:`gunicorn_server` — the real ``fapiao`` CLI and a real
  gunicorn server (``python:fapiao.gunicorn_conf``, so group commit is on) in subprocesses.
* :func:`file_backed_sqlite` — points Django's ``default`` alias at a copy of the test
  database in a file for one test, because pytest-django's SQLite test database lives in
  memory (shared cache: no WAL, table locks, no busy timeout across threads).
* :func:`private_group_commit_writer` — a group-commit writer owned by one test, whose
  database connection is closed when the test ends.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PG_USER = "postgres"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin_dir() -> Path:
    """The newest installed server binaries (initdb, pg_ctl)."""
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")]
    candidates.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if candidates:
        return candidates[-1]
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) installed")


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the postgres OS user instead."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", PG_USER, "--", *argv]


@dataclass
class PgCluster:
    root: Path
    port: int
    bin_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        command = _as_postgres([str(self.bin_dir / argv[0]), *argv[1:]])
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            output = f"{result.stdout}\n{result.stderr}\n{self.log_tail()}"
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{output}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data_dir), "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``mode="immediate"`` is a crash: no checkpoint, clients are cut off mid-conversation."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        command = _as_postgres([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"])
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[PgCluster]:
    """A started private cluster; stopped (immediately) and deleted whatever happens."""
    bin_dir = postgres_bin_dir()
    # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="fapiao-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=PG_USER, group=PG_USER)
    cluster = PgCluster(root=root, port=free_port(), bin_dir=bin_dir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        try:
            if cluster.running():
                cluster.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)


# --- The application in subprocesses -------------------------------------------------------


def server_env(*, var_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a real deployment: its own var dir and database, nothing from the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAPIAO_", "PYTEST_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="fapiao.settings",
        FAPIAO_VAR_DIR=str(var_dir),
        FAPIAO_DATABASE_URL=database_url,
        FAPIAO_WORKERS="1",
        FAPIAO_THREADS="4",
        FAPIAO_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def fapiao_command(env: Mapping[str, str], *args: str, timeout: float = 120) -> str:
    """Run ``fapiao ARGS`` (the installed CLI) and return its standard output."""
    result = subprocess.run(
        [sys.executable, "-m", "fapiao.cli", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"fapiao {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str, url: str, body: object = None, headers: Mapping[str, str] | None = None, timeout: float = 30
) -> Answer:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (our own local server)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return Answer(response.status, response.headers, response.read(), time.monotonic() - started)
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read(), time.monotonic() - started)


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log_file: Path
    requests: list[Answer] = field(default_factory=list)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def gunicorn_server(env: Mapping[str, str], log_file: Path, start_timeout: float = 30) -> Iterator[Server]:
    """gunicorn with the production config on a free port; terminated (by its pid) on exit."""
    bind = f"127.0.0.1:{free_port()}"
    full_env = {**env, "FAPIAO_BIND": bind}
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            # No control socket: gunicorn would otherwise take over ~/.gunicorn/gunicorn.ctl.
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "python:fapiao.gunicorn_conf",
                "--no-control-socket",
                "fapiao.wsgi",
            ],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(base=f"http://{bind}", process=process, log_file=log_file)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if http("GET", server.base + "/healthz", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within {start_timeout}s:\n{server.log_tail()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


# --- In-process helpers ------------------------------------------------------------------------


@contextlib.contextmanager
def file_backed_sqlite(path: Path) -> Iterator[Path]:
    """Run Django's ``default`` SQLite alias on a file copy of the test database.

    Every thread's connection is built from the one settings dict, so changing its NAME moves
    the whole process.  The in-memory test database is kept alive by a spare connection and
    put back afterwards (pytest-django then flushes it as usual).
    """
    from django.db import connection, connections

    settings_dict = connections.settings["default"]
    original = settings_dict["NAME"]
    connection.ensure_connection()
    target = sqlite3.connect(path)
    try:
        connection.connection.backup(target)
    finally:
        target.close()
    keep_alive = sqlite3.connect(original, uri=True) if connection.is_in_memory_db() else None
    settings_dict["NAME"] = str(path)
    connection.close()  # now a real close: the next query opens the file, with the init_command
    try:
        yield path
    finally:
        connection.close()
        settings_dict["NAME"] = original
        connection.ensure_connection()
        if keep_alive is not None:
            keep_alive.close()


@contextlib.contextmanager
def private_group_commit_writer() -> Iterator[Any]:
    """A fresh group-commit writer for one test, so no connection of an earlier test's writer
    (to another database) is reused; stopped at the end, which closes its connection (an open
    one would block the flush and the drop of the test database)."""
    from django.conf import settings

    from fapiao.platform import groupcommit

    writer = groupcommit.GroupCommitWriter(settings.FAPIAO_WRITE_BATCH_MAX)
    with groupcommit._writer_lock:
        saved, groupcommit._writer = groupcommit._writer, writer
    try:
        yield writer
    finally:
        try:
            writer.stop()
            assert not writer.thread.is_alive(), "the group-commit writer did not stop"
        finally:
            with groupcommit._writer_lock:
                groupcommit._writer = saved
